"""The scanner's formats for other tools, checked for content: CSV columns and rows, ASFF against
botocore's Security Hub model, OCSF against the published schema's Compliance Finding, and a
self-contained HTML page whose chart adds up."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.validate import ParamValidator

from functions.drift_monitor.sweep.report import CSV_COLUMNS
from local.demo_account import DEMO_POLICY, populate
from local.emulator import ACCOUNT, Emulator, moto_server
from tests.conftest import REPO
from tests.e2e.test_scanner import scan

pytestmark = pytest.mark.e2e

SCHEMAS = REPO / "tests" / "schemas"
# Set by each class and category (base_event lists only 0): checked by value in the test.
COMPUTED = frozenset({"class_uid", "category_uid", "type_uid"})
# The demo account's verdicts under the demo policy (local/demo_account.py).
DRIFTING = 6
BUCKETS = 10


@pytest.fixture(scope="module")
def demo_account() -> Iterator[Emulator]:
    with moto_server() as emulator:
        populate(emulator)
        yield emulator


def output(emulator: Emulator, output_format: str) -> str:
    result = scan(emulator, "--policy", str(DEMO_POLICY), "--format", output_format)
    assert result.returncode == 1, result.stderr  # drift found, whatever the format
    return result.stdout


def test_csv_has_the_report_columns_and_one_row_per_bucket(demo_account: Emulator) -> None:
    rows = list(csv.DictReader(io.StringIO(output(demo_account, "csv"))))

    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == BUCKETS
    by_name = {row["bucket"]: row for row in rows}
    raw = by_name["analytics-raw"]
    assert (raw["account"], raw["status"], raw["severity"]) == (ACCOUNT, "DRIFT", "HIGH")
    assert raw["violations"] == "NO_DEFAULT_ENCRYPTION"
    assert raw["remediation"].startswith("aws s3api put-bucket-encryption --bucket analytics-raw")
    assert by_name["legacy-reports"]["region"] == "us-west-2"
    assert (by_name["payments-ledger"]["status"], by_name["payments-ledger"]["severity"]) == (
        "COMPLIANT",
        "",
    )
    assert Counter(row["status"] for row in rows) == {"DRIFT": 6, "COMPLIANT": 2, "EXEMPT": 2}


def test_asff_is_valid_batch_import_findings_input(demo_account: Emulator) -> None:
    document = json.loads(output(demo_account, "json-asff"))
    model = boto3.Session().client("securityhub", region_name="eu-west-1").meta.service_model
    shape = model.operation_model("BatchImportFindings").input_shape

    report = ParamValidator().validate(document, shape)

    assert not report.has_errors(), report.generate_report()
    findings = document["Findings"]
    assert len(findings) == BUCKETS
    assert len({finding["Id"] for finding in findings}) == BUCKETS
    assert Counter(f["Compliance"]["Status"] for f in findings) == {"FAILED": 6, "PASSED": 4}
    for finding in findings:
        assert finding["AwsAccountId"] == ACCOUNT
        assert finding["ProductArn"] == (
            f"arn:aws:securityhub:eu-west-1:{ACCOUNT}:product/{ACCOUNT}/default"
        )
        assert finding["Resources"][0]["Type"] == "AwsS3Bucket"
    raw = next(f for f in findings if f["Resources"][0]["Id"] == "arn:aws:s3:::analytics-raw")
    assert raw["FindingProviderFields"]["Severity"] == {"Label": "HIGH"}
    assert raw["ProductFields"]["s3-encryption-drift-monitor/violations"] == (
        "NO_DEFAULT_ENCRYPTION"
    )


def ocsf_problems(
    value: Any, attributes: dict[str, Any], schema: dict[str, Any], at: str
) -> list[str]:
    """Every name, requirement, type and enum of ``value`` checked against the schema subset."""
    problems = []
    for name, spec in attributes.items():
        if spec["requirement"] == "required" and name not in value:
            problems.append(f"{at}{name}: required, missing")
    for name, item in value.items():
        spec = attributes.get(name)
        if spec is None:
            problems.append(f"{at}{name}: not an attribute here")
            continue
        items = item if spec["is_array"] else [item]
        if spec["is_array"] and not isinstance(item, list):
            problems.append(f"{at}{name}: must be an array")
        for element in items:
            kind = spec["type"]
            if kind in schema["objects"]:
                if not isinstance(element, dict):
                    problems.append(f"{at}{name}: must be an object")
                else:
                    problems += ocsf_problems(
                        element, schema["objects"][kind], schema, f"{at}{name}."
                    )
            elif kind in ("integer_t", "long_t", "timestamp_t"):
                if not isinstance(element, int) or isinstance(element, bool):
                    problems.append(f"{at}{name}: must be an integer")
                elif "enum" in spec and name not in COMPUTED and element not in spec["enum"]:
                    problems.append(f"{at}{name}: {element} not in {spec['enum']}")
            elif kind == "string_t" and not isinstance(element, str):
                problems.append(f"{at}{name}: must be a string")
    return problems


@pytest.mark.parametrize("schema_file", sorted(p.name for p in SCHEMAS.glob("ocsf-*.json")))
def test_ocsf_events_are_compliance_findings_of_the_published_schema(
    demo_account: Emulator, schema_file: str
) -> None:
    schema = json.loads((SCHEMAS / schema_file).read_text())
    events = json.loads(output(demo_account, "json-ocsf"))

    assert len(events) == BUCKETS
    for event in events:
        assert ocsf_problems(event, schema["class"], schema, "") == []
        assert event["class_uid"] == schema["class_uid"] == 2003
        assert event["type_uid"] == event["class_uid"] * 100 + event["activity_id"]
        assert event["metadata"]["version"] == "1.2.0"
        assert event["cloud"]["account"]["uid"] == ACCOUNT
    compliance = Counter(event["compliance"]["status"] for event in events)
    assert compliance == {"Fail": DRIFTING, "Pass": 4}
    raw = next(event for event in events if event["resource"]["name"] == "analytics-raw")
    assert (raw["severity_id"], raw["severity"]) == (4, "High")
    assert raw["compliance"]["status_detail"] == "NO_DEFAULT_ENCRYPTION"
    assert raw["remediation"]["desc"].startswith("aws s3api put-bucket-encryption")
    assert raw["resource"]["uid"] == "arn:aws:s3:::analytics-raw"


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: Counter[str] = Counter()
        self.bars: list[tuple[str, float]] = []
        self.external: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        values = dict(attrs)
        for name in ("src", "href"):
            if values.get(name):
                self.external.append(f"{tag} {name}={values[name]}")
        if tag == "rect" and values.get("data-status"):
            self.bars.append((str(values["data-status"]), float(values["width"] or 0)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_is_one_self_contained_page_with_a_chart_that_adds_up(
    demo_account: Emulator, tmp_path: Path
) -> None:
    page = output(demo_account, "html")
    parser = _Page()
    parser.feed(page)
    text = " ".join(parser.text)

    assert page.startswith("<!DOCTYPE html>")
    assert parser.tags["script"] == 0 and parser.tags["link"] == 0 and parser.tags["img"] == 0
    assert parser.external == []
    assert "http://" not in page and "https://" not in page
    assert "@media print" in page
    # one bar segment per (account, region, status): the demo account's buckets are in 3 regions
    titles = [
        t for t in parser.text if ": " in t and t.split(":")[0] in {"DRIFT", "COMPLIANT", "EXEMPT"}
    ]
    assert sum(int(title.split(": ")[1]) for title in titles) == BUCKETS
    assert sum(int(t.split(": ")[1]) for t in titles if t.startswith("DRIFT")) == DRIFTING
    assert {status for status, _ in parser.bars} == {"DRIFT", "COMPLIANT", "EXEMPT"}
    for bucket in ("analytics-raw", "payments-ledger", "sandbox-alice", "legacy-reports"):
        assert bucket in text
    assert "NO_DEFAULT_ENCRYPTION" in text
    assert f"Scanned from account {ACCOUNT}" in text


def test_jsonl_is_the_json_documents_buckets_one_per_line(demo_account: Emulator) -> None:
    lines = output(demo_account, "jsonl").splitlines()
    document = json.loads(output(demo_account, "json"))

    entries = [json.loads(line) for line in lines]
    assert len(entries) == BUCKETS
    assert {entry["bucket"]: entry for entry in entries} == {
        entry["bucket"]: entry for entry in document["buckets"]
    }
