"""End to end: the synthesized sweep function, on its own moto server (a whole account each)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

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
    DemoBucket(name, region=region, algorithm="aws:kms", key="alias/demo-data", bucket_key=True)
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
) -> tuple[Any, list[Any], LocalPipeline]:
    pipeline = LocalPipeline(monitor, account)
    function = pipeline.start_sweep_function(overrides)
    assert function.init_error is None, function.init_error
    invocation = function.invoke(pipeline.scheduled_event())
    assert invocation.ok, invocation.error
    return invocation.response, pipeline.received_alerts(), pipeline


def test_a_mixed_account_gets_exactly_one_digest(
    monitor: SynthesizedMonitor, account: Emulator
) -> None:
    # Given the demo account: compliant, drifted and exempt buckets in three regions
    populate(account)

    # When the scheduled sweep runs once
    response, alerts, _ = sweep_once(monitor, account)

    # Then one digest arrives, counting everything and listing the drift
    (digest,) = alerts
    document = digest.document
    assert document["status"] == "DIGEST"
    assert digest.attributes["status"] == "DIGEST"
    assert digest.subject == "[DIGEST] 6 drifted, 0 unverifiable of 10 buckets (123456789012)"
    assert document["summary"] == {
        "buckets": len(DEMO_BUCKETS),
        "compliant": 2,
        "drift": 6,
        "unverifiable": 0,
        "exempt": 2,
        "vanished": 0,
    }
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
    assert response["complete"] is True
    assert response["summary"] == document["summary"]
    assert isinstance(response["digest"], str)


def test_a_compliant_account_gets_no_digest(monitor: SynthesizedMonitor, account: Emulator) -> None:
    populate(account, COMPLIANT)

    response, alerts, _ = sweep_once(monitor, account)

    assert alerts == []
    assert response["digest"] is None
    assert response["summary"]["compliant"] == 2


def test_a_compliant_account_gets_a_digest_when_configured(
    monitor: SynthesizedMonitor, account: Emulator
) -> None:
    populate(account, COMPLIANT)

    _, alerts, _ = sweep_once(monitor, account, DIGEST_WHEN_COMPLIANT="true")

    (digest,) = alerts
    assert digest.document["findings"] == []
    assert digest.document["summary"]["compliant"] == 2
    assert digest.subject.startswith("[DIGEST] 0 drifted, 0 unverifiable of 2 buckets")


def test_invalid_sweep_settings_fail_at_cold_start_naming_the_variable(
    monitor: SynthesizedMonitor, account: Emulator
) -> None:
    pipeline = LocalPipeline(monitor, account)

    function = pipeline.start_sweep_function({"SWEEP_CONCURRENCY": "0"})

    assert function.init_error is not None
    assert "SWEEP_CONCURRENCY must be a whole number from 1 to 64" in function.init_error
