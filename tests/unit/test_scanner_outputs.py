"""The scanner's outputs write each bucket as it comes and what depends on all of them at the
end: a document is valid whatever the number of buckets, none included."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable

import pytest

from functions.drift_monitor.domain.models import BucketRef, Finding, Status, Trigger
from functions.drift_monitor.domain.policy import Policy
from functions.drift_monitor.sweep.engine import SweepResult, Tally
from functions.drift_monitor.sweep.report import CSV_COLUMNS
from scanner.formats import AccountScan
from scanner.outputs import FORMATS, Output, output_for

ACCOUNT = "123456789012"
STREAMED = ("json", "jsonl", "csv", "json-asff", "json-ocsf")


def finding(name: str, status: Status = Status.COMPLIANT) -> Finding:
    return Finding(BucketRef(name, ACCOUNT, "eu-west-1"), status, None, (), Trigger(source="scan"))


def output(output_format: str, out: io.StringIO) -> Output:
    return output_for(
        output_format,
        out,
        policy=Policy(),
        policy_file=None,
        caller=ACCOUNT,
        region="eu-west-1",
        now="2026-11-28T12:00:00Z",
        now_ms=1_796_212_800_000,
    )


def scans_of(*findings: Finding) -> list[AccountScan]:
    tally = Tally(keep=lambda _: False)
    for each in findings:
        tally.add(each)
    return [AccountScan(ACCOUNT, SweepResult(ACCOUNT, tally, complete=True))]


PARSE: dict[str, Callable[[str], list[str]]] = {
    "json": lambda text: [entry["bucket"] for entry in json.loads(text)["buckets"]],
    "jsonl": lambda text: [json.loads(line)["bucket"] for line in text.splitlines()],
    "csv": lambda text: [row["bucket"] for row in csv.DictReader(io.StringIO(text))],
    "json-asff": lambda text: [
        f["Resources"][0]["Id"].rsplit(":", 1)[1] for f in json.loads(text)["Findings"]
    ],
    "json-ocsf": lambda text: [event["resource"]["name"] for event in json.loads(text)],
}


@pytest.mark.parametrize("output_format", STREAMED)
def test_a_streamed_format_has_written_each_bucket_before_the_scan_ends(
    output_format: str,
) -> None:
    # Given an output for a machine format
    out = io.StringIO()
    written = output(output_format, out)

    # When two buckets are evaluated, before the scan finishes
    written.add(finding("first"))
    written.add(finding("second", Status.DRIFT))
    before_finish = out.getvalue()
    written.finish(scans_of(finding("first"), finding("second", Status.DRIFT)))

    # Then both are already on the output, and the whole is a valid document in that order
    assert "first" in before_finish and "second" in before_finish
    assert PARSE[output_format](out.getvalue()) == ["first", "second"]


@pytest.mark.parametrize("output_format", STREAMED)
def test_a_scan_of_no_bucket_is_still_a_valid_document(output_format: str) -> None:
    out = io.StringIO()
    written = output(output_format, out)

    written.finish(scans_of())

    assert PARSE[output_format](out.getvalue()) == []


def test_the_json_summary_comes_after_the_buckets_and_counts_them_all() -> None:
    out = io.StringIO()
    written = output("json", out)
    written.add(finding("listed", Status.DRIFT))

    written.finish(scans_of(finding("listed", Status.DRIFT), finding("not-listed")))

    document = json.loads(out.getvalue())
    assert list(document) == ["schemaVersion", "account", "buckets", "summary"]
    assert (document["summary"]["buckets"], document["summary"]["drift"]) == (2, 1)
    assert document["summary"]["accounts"][ACCOUNT]["error"] is None


def test_csv_starts_with_the_report_columns() -> None:
    out = io.StringIO()
    output("csv", out).finish(scans_of())

    assert out.getvalue().splitlines() == [",".join(CSV_COLUMNS)]


def test_every_format_is_offered() -> None:
    assert set(FORMATS) == {*STREAMED, "table", "html"}
