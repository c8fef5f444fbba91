"""What the scanner prints: one JSON document for machines, a table for people."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from functions.drift_monitor.alerts import SCHEMA_VERSION, alert_document
from functions.drift_monitor.digest import most_severe_first, summary
from functions.drift_monitor.models import BucketKind, Finding, Status
from functions.drift_monitor.policy import Policy
from functions.drift_monitor.sweep import SweepResult

_STATUS_ORDER = {Status.DRIFT: 0, Status.UNVERIFIABLE: 1, Status.EXEMPT: 2, Status.COMPLIANT: 3}
_STATUS_STYLE = {
    Status.DRIFT: "bold red",
    Status.UNVERIFIABLE: "yellow",
    Status.EXEMPT: "cyan",
    Status.COMPLIANT: "green",
}


@dataclass(frozen=True)
class AccountScan:
    """One account's part of a scan: its findings, or why it could not be scanned."""

    account: str
    result: SweepResult | None
    error: str | None = None

    @property
    def statuses(self) -> Counter[Status]:
        return Counter() if self.result is None else self.result.tally.statuses

    @property
    def findings(self) -> list[Finding]:
        return [] if self.result is None else self.result.tally.kept


def totals(scans: list[AccountScan]) -> Counter[Status]:
    counted: Counter[Status] = Counter()
    for scanned in scans:
        counted.update(scanned.statuses)
    return counted


def scan_document(caller: str, scans: list[AccountScan], policy: Policy) -> dict[str, Any]:
    """SPEC §7's document; ``summary.accounts`` gives each account's counts and, for an account
    that could not be scanned, why."""
    findings = sorted(
        (finding for scanned in scans for finding in scanned.findings),
        key=lambda finding: (finding.bucket.account, finding.bucket.name),
    )
    return {
        "schemaVersion": SCHEMA_VERSION,
        "account": caller,
        "summary": {
            **summary(totals(scans)),
            "accounts": {
                scanned.account: {**summary(scanned.statuses), "error": scanned.error}
                for scanned in scans
            },
        },
        "buckets": [alert_document(finding, policy) for finding in findings],
    }


def print_table(scans: list[AccountScan], policy_file: Path | None) -> None:
    console = Console()
    many = len(scans) > 1
    title = "S3 default encryption, " + (
        f"{len(scans)} accounts" if many else f"account {scans[0].account}"
    )
    table = Table(title=title, title_justify="left")
    columns = ["Bucket", "Region", "Status", "Severity", "Violations / reason"]
    for column in ["Account", *columns] if many else columns:
        table.add_column(column, overflow="fold")
    findings = sorted(
        most_severe_first([finding for scanned in scans for finding in scanned.findings]),
        key=lambda finding: _STATUS_ORDER[finding.status],
    )
    for finding in findings:
        reason = ", ".join(violation.code.value for violation in finding.violations)
        kind = finding.bucket.kind
        row = [
            finding.bucket.name
            + ("" if kind is BucketKind.GENERAL_PURPOSE else f" ({kind.value})"),
            finding.bucket.region,
            f"[{_STATUS_STYLE[finding.status]}]{finding.status.value}[/]",
            finding.severity.value if finding.severity else "",
            finding.detail if finding.status is Status.EXEMPT else reason,
        ]
        table.add_row(*([finding.bucket.account, *row] if many else row))
    console.print(table)
    for scanned in scans:
        if scanned.error:
            what = "could not be scanned" if scanned.result is None else "was scanned only in part"
            click.echo(f"Account {scanned.account} {what}: {scanned.error}")
    counts = summary(totals(scans))
    unreachable = sum(1 for scanned in scans if scanned.result is None)
    click.echo(
        f"{counts['buckets']} buckets: {counts['compliant']} compliant, {counts['drift']} drift, "
        f"{counts['unverifiable']} unverifiable, {counts['exempt']} exempt"
        + (f", {counts['vanished']} deleted during the scan" if counts["vanished"] else "")
        + (f"; {unreachable} of {len(scans)} accounts not scanned" if unreachable else "")
        + f". Policy: {policy_file or 'built-in default'}."
    )
    if counts["drift"] or counts["unverifiable"]:
        click.echo("For each violation's explanation and the command that fixes it: --format json.")
