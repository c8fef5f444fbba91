"""Where each format writes a scan, bucket by bucket, in memory that does not grow with the count.

The scan hands every finding to ``add`` as it is evaluated and then calls ``finish`` once. The
formats other tools read (json, jsonl, csv, json-asff, json-ocsf) are written as they go: a bucket
is a document on the output and nothing in memory. The formats for people (the terminal table and
the HTML page) sort what they print, so they keep it, as the few strings of a row each, never the
findings themselves.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TextIO

import click
from rich.console import Console
from rich.table import Table

from functions.drift_monitor.domain.alerts import SCHEMA_VERSION, alert_document
from functions.drift_monitor.domain.asff import asff_finding
from functions.drift_monitor.domain.models import BucketKind, Finding, Severity, Status
from functions.drift_monitor.domain.policy import Policy
from functions.drift_monitor.sweep.digest import summary
from functions.drift_monitor.sweep.report import CSV_COLUMNS, csv_row

from .exports import CHART_STATUSES, html_page, html_row, ocsf_event
from .formats import AccountScan, totals

FORMATS = ("table", "json", "jsonl", "csv", "json-asff", "json-ocsf", "html")


class Output(Protocol):
    def add(self, finding: Finding) -> None:
        """One bucket's finding, as soon as it is evaluated."""

    def finish(self, scans: list[AccountScan]) -> None:
        """After the last bucket: what depends on every one (counts, sorted rows)."""


def output_for(
    output_format: str,
    out: TextIO,
    *,
    policy: Policy,
    policy_file: Path | None,
    caller: str,
    region: str,
    now: str,
    now_ms: int,
) -> Output:
    def document(finding: Finding) -> dict[str, Any]:
        return alert_document(finding, policy)

    if output_format == "json":
        return JsonDocument(out, document, caller)
    if output_format == "jsonl":
        return Lines(out, lambda f: json.dumps(document(f), separators=(",", ":")))
    if output_format == "csv":
        return CsvRows(out, document)
    if output_format == "json-asff":
        return JsonArray(
            out,
            lambda f: asff_finding(
                document(f), importer_account=caller, importer_region=region, now=now, created=True
            ),
            opening='{"Findings": [',
            closing="]}",
        )
    if output_format == "json-ocsf":
        return JsonArray(out, lambda f: ocsf_event(document(f), now_ms), opening="[", closing="]")
    if output_format == "html":
        return HtmlPage(out, document, policy, caller=caller, generated_at=now)
    return TerminalTable(policy_file)


class Lines:
    """One line per bucket (``--format jsonl``)."""

    def __init__(self, out: TextIO, line: Callable[[Finding], str]) -> None:
        self._out = out
        self._line = line

    def add(self, finding: Finding) -> None:
        self._out.write(self._line(finding) + "\n")

    def finish(self, scans: list[AccountScan]) -> None:
        self._out.flush()


class JsonArray:
    """A JSON array written an element at a time, between ``opening`` and ``closing``."""

    def __init__(
        self,
        out: TextIO,
        element: Callable[[Finding], Any],
        *,
        opening: str,
        closing: str,
    ) -> None:
        self._out = out
        self._element = element
        self._closing = closing
        self._first = True
        out.write(opening + "\n")

    def add(self, finding: Finding) -> None:
        self._out.write(("  " if self._first else ",\n  ") + json.dumps(self._element(finding)))
        self._first = False

    def finish(self, scans: list[AccountScan]) -> None:
        self._out.write(("" if self._first else "\n") + self._closing + "\n")
        self._out.flush()


class JsonDocument(JsonArray):
    """SPEC §7's document, its buckets written as they are evaluated and its summary (per
    account too, with why an account could not be scanned) after the last one."""

    def __init__(
        self, out: TextIO, document: Callable[[Finding], dict[str, Any]], caller: str
    ) -> None:
        header = json.dumps({"schemaVersion": SCHEMA_VERSION, "account": caller})[:-1]
        super().__init__(out, document, opening=header + ', "buckets": [', closing="")

    def finish(self, scans: list[AccountScan]) -> None:
        counts = {
            **summary(totals(scans)),
            "accounts": {
                scanned.account: {**summary(scanned.statuses), "error": scanned.error}
                for scanned in scans
            },
        }
        self._out.write(("" if self._first else "\n") + '], "summary": ')
        self._out.write(json.dumps(counts) + "}\n")
        self._out.flush()


class CsvRows:
    """The sweep report's CSV columns, a row per bucket."""

    def __init__(self, out: TextIO, document: Callable[[Finding], dict[str, Any]]) -> None:
        self._writer = csv.writer(out, lineterminator="\n")
        self._document = document
        self._out = out
        self._writer.writerow(CSV_COLUMNS)

    def add(self, finding: Finding) -> None:
        self._writer.writerow(csv_row(self._document(finding)))

    def finish(self, scans: list[AccountScan]) -> None:
        self._out.flush()


class HtmlPage:
    """One self-contained page: it keeps each bucket's table row (a string) and the chart's
    counts, and writes the page at the end."""

    def __init__(
        self,
        out: TextIO,
        document: Callable[[Finding], dict[str, Any]],
        policy: Policy,
        *,
        caller: str,
        generated_at: str,
    ) -> None:
        self._out = out
        self._document = document
        self._policy = policy
        self._caller = caller
        self._generated_at = generated_at
        self._rows: dict[str, list[tuple[tuple[str, str, str], str]]] = {
            status: [] for status in CHART_STATUSES
        }
        self._chart: dict[tuple[str, str], Counter[str]] = {}

    def add(self, finding: Finding) -> None:
        document = self._document(finding)
        status = document["status"]
        place = (document["account"], document["region"])
        self._chart.setdefault(place, Counter())[status] += 1
        if status in self._rows:
            order = (*place, document["bucket"])
            self._rows[status].append((order, html_row(document)))

    def finish(self, scans: list[AccountScan]) -> None:
        rows = {status: [row for _, row in sorted(kept)] for status, kept in self._rows.items()}
        self._out.write(
            html_page(
                rows,
                self._chart,
                scans,
                self._policy,
                caller=self._caller,
                generated_at=self._generated_at,
            )
        )
        self._out.flush()


_STATUS_ORDER = {Status.DRIFT: 0, Status.UNVERIFIABLE: 1, Status.EXEMPT: 2, Status.COMPLIANT: 3}
_SEVERITY_ORDER = {Severity.HIGH: 0, Severity.MEDIUM: 1, Severity.LOW: 2, None: 3}
_STATUS_STYLE = {
    Status.DRIFT: "bold red",
    Status.UNVERIFIABLE: "yellow",
    Status.EXEMPT: "cyan",
    Status.COMPLIANT: "green",
}


class TerminalTable:
    """A table for people: the most severe first, so it keeps each row's few strings."""

    def __init__(self, policy_file: Path | None) -> None:
        self._policy_file = policy_file
        self._rows: list[tuple[tuple[int, int, str], list[str]]] = []

    def add(self, finding: Finding) -> None:
        reason = ", ".join(violation.code.value for violation in finding.violations)
        kind = finding.bucket.kind
        shown = "" if kind is BucketKind.GENERAL_PURPOSE else f" ({kind.value})"
        row = [
            finding.bucket.account,
            finding.bucket.name + shown,
            finding.bucket.region,
            f"[{_STATUS_STYLE[finding.status]}]{finding.status.value}[/]",
            finding.severity.value if finding.severity else "",
            (finding.detail or "") if finding.status is Status.EXEMPT else reason,
        ]
        order = (
            _STATUS_ORDER[finding.status],
            _SEVERITY_ORDER[finding.severity],
            finding.bucket.name,
        )
        self._rows.append((order, row))

    def finish(self, scans: list[AccountScan]) -> None:
        many = len(scans) > 1
        title = "S3 default encryption, " + (
            f"{len(scans)} accounts" if many else f"account {scans[0].account}"
        )
        table = Table(title=title, title_justify="left")
        columns = ["Bucket", "Region", "Status", "Severity", "Violations / reason"]
        for column in ["Account", *columns] if many else columns:
            table.add_column(column, overflow="fold")
        for _, row in sorted(self._rows):
            table.add_row(*(row if many else row[1:]))
        Console().print(table)
        for scanned in scans:
            if scanned.error:
                what = "was scanned only in part" if scanned.result else "could not be scanned"
                click.echo(f"Account {scanned.account} {what}: {scanned.error}")
        counts = summary(totals(scans))
        unreachable = sum(1 for scanned in scans if scanned.result is None)
        click.echo(
            f"{counts['buckets']} buckets: {counts['compliant']} compliant, "
            f"{counts['drift']} drift, {counts['unverifiable']} unverifiable, "
            f"{counts['exempt']} exempt"
            + (f", {counts['vanished']} deleted during the scan" if counts["vanished"] else "")
            + (f"; {unreachable} of {len(scans)} accounts not scanned" if unreachable else "")
            + f". Policy: {self._policy_file or 'built-in default'}."
        )
        if counts["drift"] or counts["unverifiable"]:
            click.echo(
                "For each violation's explanation and the command that fixes it: --format json."
            )
