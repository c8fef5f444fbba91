"""End to end: the synthesized sweep (starter, work queue, worker), on its own moto server (a
whole account each)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest

from functions.drift_monitor.sweep.digest import render_digest_email
from local.demo_account import DEMO_BUCKETS, DemoBucket, populate
from local.emulator import Emulator, moto_server
from local.pipeline import LocalPipeline
from local.template import SynthesizedMonitor
from tests.e2e.conftest import SynthFactory

pytestmark = pytest.mark.e2e

DEMO_POLICY = {
    "allowedAlgorithms": ["aws:kms", "aws:kms:dsse"],
    "allowedKmsKeys": [
        "arn:aws:kms:eu-west-1:123456789012:alias/demo-data",
        "arn:aws:kms:eu-central-1:123456789012:alias/demo-data",
    ],
    "requireCustomerManagedKey": True,
    "requireBucketKey": True,
    "exemptBuckets": ["sandbox-*"],
}
COMPLIANT = tuple(
    DemoBucket(
        name,
        region=region,
        algorithm="aws:kms",
        key=f"arn:aws:kms:{region}:123456789012:alias/demo-data",
        bucket_key=True,
    )
    for name, region in (("ledger", "eu-west-1"), ("ledger-eu", "eu-central-1"))
)


@pytest.fixture(scope="module")
def monitor(synth: SynthFactory) -> SynthesizedMonitor:
    return synth(DEMO_POLICY)


@pytest.fixture
def account() -> Iterator[Emulator]:
    """A moto server of its own: the sweep lists every bucket the emulator holds."""
    with moto_server() as emulator:
        yield emulator


def sweep_once(
    monitor: SynthesizedMonitor, account: Emulator, **overrides: str
) -> tuple[list[Any], list[Any], LocalPipeline]:
    pipeline = LocalPipeline(monitor, account)
    invocations = pipeline.run_sweep(overrides, overrides)
    assert all(invocation.ok for invocation in invocations), invocations
    return invocations, pipeline.received_alerts(), pipeline


# The stack's own report bucket and its access-log bucket are buckets of the account too; they
# carry the policy's exempt tag.
MONITOR_BUCKETS = 2


def test_a_mixed_account_gets_exactly_one_digest_and_a_full_report(
    monitor: SynthesizedMonitor, account: Emulator
) -> None:
    # Given the demo account: compliant, drifted and exempt buckets in three regions
    populate(account)

    # When the scheduled sweep runs once
    invocations, alerts, pipeline = sweep_once(monitor, account)

    # Then two work items swept the account (its page; its directory and table buckets, none
    # here) and one digest arrives, counting everything
    assert len(invocations) == 3
    (digest,) = alerts
    document = digest.document
    assert document["status"] == "DIGEST"
    assert digest.attributes["status"] == "DIGEST"
    buckets = len(DEMO_BUCKETS) + MONITOR_BUCKETS
    assert digest.subject == (
        f"[DIGEST] 6 drifted, 0 unverifiable of {buckets} buckets (123456789012)"
    )
    assert document["summary"] == {
        "buckets": buckets,
        "compliant": 2,
        "drift": 6,
        "unverifiable": 0,
        "exempt": 2 + MONITOR_BUCKETS,
        "vanished": 0,
    }
    assert document["accounts"] == {"123456789012": {**document["summary"], "error": None}}
    listed = {entry["bucket"]: entry for entry in document["findings"]}
    assert set(listed) == {
        "analytics-raw",
        "marketing-assets",
        "partner-exchange",
        "app-logs",
        "legacy-reports",
        "invoices-us",
    }
    # each bucket was read in its own region
    assert listed["legacy-reports"]["region"] == "us-west-2"
    assert listed["invoices-us"]["region"] == "us-east-1"
    assert [v["code"] for v in listed["partner-exchange"]["violations"]] == [
        "KMS_KEY_NOT_ALLOWED",
        "KMS_KEY_CROSS_ACCOUNT",
    ]
    assert document["trigger"]["source"] == "sweep"
    assert document["trigger"]["eventTime"]
    assert document["run"]["complete"] is True
    # and the full report, every bucket once, is where the digest says
    report = pipeline.report_objects()
    prefix = document["report"]["uri"].split("/", 3)[3]
    lines = [
        json.loads(line)
        for key, body in report.items()
        if key.startswith(prefix) and key.endswith(".jsonl")
        for line in body.decode().splitlines()
    ]
    assert len(lines) == buckets
    assert {line["bucket"] for line in lines} >= {bucket.name for bucket in DEMO_BUCKETS}


def test_a_compliant_account_gets_no_digest(monitor: SynthesizedMonitor, account: Emulator) -> None:
    populate(account, COMPLIANT)

    _, alerts, pipeline = sweep_once(monitor, account)

    assert alerts == []
    assert any(key.endswith("manifest.json") for key in pipeline.report_objects())


def test_an_exception_ending_soon_brings_a_digest_listing_it_with_its_buckets(
    monitor: SynthesizedMonitor, account: Emulator
) -> None:
    """§15: nothing alerts, but an exception ends within 14 days: the digest says so, with the
    bucket it covers, and an exception already ended makes its bucket drift again."""
    populate(
        account,
        (*COMPLIANT, DemoBucket("scratch-build", algorithm="AES256"),
         DemoBucket("old-exports", algorithm="AES256")),
    )  # fmt: skip
    today = date.today()
    policy = {
        **DEMO_POLICY,
        "exceptions": [
            {"buckets": ["scratch-*"], "allow": "all", "reason": "build cache, no data",
             "owner": "ci-team", "expires": (today + timedelta(days=3)).isoformat()},
            {"buckets": ["old-*"], "allow": "all", "reason": "export migration",
             "owner": "data-eng", "expires": (today - timedelta(days=2)).isoformat()},
        ],
    }  # fmt: skip

    _, alerts, _ = sweep_once(monitor, account, ENCRYPTION_POLICY=json.dumps(policy))

    (digest,) = alerts
    lists = digest.document["exceptions"]
    (ending,) = lists["expiring"]
    assert (ending["source"], ending["owner"]) == ("exceptions[0]", "ci-team")
    assert [b["bucket"] for b in ending["buckets"]] == ["scratch-build"]
    (ended,) = lists["expired"]
    assert (ended["source"], [b["bucket"] for b in ended["buckets"]]) == (
        "exceptions[1]",
        ["old-exports"],
    )
    (drift,) = digest.document["findings"]
    assert (drift["bucket"], drift["exception"]["expired"]) == ("old-exports", True)
    # the email a person reads, rendered from the document as the topic's email body is
    email = render_digest_email(digest.document)
    assert "Exceptions ending within 14 days:" in email
    assert "exceptions[1]" in email


def test_a_compliant_account_gets_a_digest_when_configured(
    monitor: SynthesizedMonitor, account: Emulator
) -> None:
    populate(account, COMPLIANT)

    _, alerts, _ = sweep_once(monitor, account, DIGEST_WHEN_COMPLIANT="true")

    (digest,) = alerts
    assert digest.document["findings"] == []
    assert digest.document["summary"]["compliant"] == 2
    assert digest.subject.startswith("[DIGEST] 0 drifted, 0 unverifiable of 4 buckets")


def test_invalid_sweep_settings_fail_at_cold_start_naming_the_variable(
    monitor: SynthesizedMonitor, account: Emulator
) -> None:
    pipeline = LocalPipeline(monitor, account)

    worker = pipeline.start_sweep_worker({"SWEEP_CONCURRENCY": "0"})
    starter = pipeline.start_sweep_function({"SWEEP_ACCOUNTS": "me"})

    assert "SWEEP_CONCURRENCY must be a whole number from 1 to 64" in str(worker.init_error)
    assert "SWEEP_ACCOUNTS must be comma-separated 12-digit account ids" in str(starter.init_error)
