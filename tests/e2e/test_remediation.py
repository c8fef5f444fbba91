"""Remediation end to end (SPEC §12): the synthesized function puts the fix back, says what it
would do, or why it did not; against moto server."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from functions.drift_monitor.domain.alerts import render_email
from local.cloudtrail import s3_call_detail
from local.emulator import Emulator
from local.pipeline import LocalPipeline, ReceivedAlert
from tests.e2e.conftest import SynthFactory

pytestmark = pytest.mark.e2e

ACCOUNT = "123456789012"
APPROVED = f"arn:aws:kms:eu-west-1:{ACCOUNT}:alias/remediation-approved"
POLICY = {
    "allowedAlgorithms": ["aws:kms"],
    "allowedKmsKeys": [APPROVED],
    "requireBucketKey": True,
    "exemptTag": "team=sandbox",
}


class Deployment:
    def __init__(self, pipeline: LocalPipeline) -> None:
        self.pipeline = pipeline
        self.function = pipeline.start_function()
        assert self.function.init_error is None, self.function.init_error
        self.s3 = pipeline.recorded_s3

    def drift(self, **tags: str) -> str:
        bucket = f"fixme-{uuid.uuid4().hex[:10]}"
        self.s3.create_bucket(bucket, tags=tags or None, record=False)
        self.s3.put_encryption(bucket, "AES256")
        return bucket

    def deliver(self) -> tuple[list[Any], list[ReceivedAlert]]:
        invocations = self.pipeline.deliver(self.function)
        assert all(invocation.ok for invocation in invocations), invocations
        return invocations, self.pipeline.received_alerts()

    def encryption(self, bucket: str) -> dict[str, Any]:
        rules = self.pipeline.s3.get_bucket_encryption(Bucket=bucket)[
            "ServerSideEncryptionConfiguration"
        ]["Rules"]
        rule: dict[str, Any] = rules[0]["ApplyServerSideEncryptionByDefault"]
        return rule


@pytest.fixture(scope="module")
def applying(synth: SynthFactory, emulator: Emulator) -> Deployment:
    monitor = synth(POLICY, remediation="apply", remediationLimitPerHour="2")
    return Deployment(LocalPipeline(monitor, emulator))


@pytest.fixture(scope="module")
def dry_run(synth: SynthFactory, emulator: Emulator) -> Deployment:
    return Deployment(LocalPipeline(synth(POLICY, remediation="dry-run"), emulator))


def test_apply_fixes_a_drifted_bucket_and_reports_it_resolved(applying: Deployment) -> None:
    bucket = applying.drift()

    (invocation,), (notice,) = applying.deliver()

    # the bucket now holds the fix command's configuration
    assert applying.encryption(bucket) == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": APPROVED}
    assert invocation.response["status"] == "COMPLIANT"
    document = notice.document
    assert (document["status"], document["severity"]) == ("RESOLVED", "INFO")
    assert document["resolution"]["remediatedAutomatically"] is True
    assert document["resolution"]["previousViolations"] == ["ALGORITHM_NOT_ALLOWED"]
    assert document["autoRemediation"]["applied"] is True
    assert document["autoRemediation"]["verified"] is True
    assert notice.subject == f"[RESOLVED] s3://{bucket} ({ACCOUNT}, eu-west-1)"
    assert "was remediated automatically" in render_email(document)
    assert applying.function.metrics()["Remediated"] >= 1
    # the CloudTrail event of the monitor's own PutBucketEncryption (the emulator logs none)
    # comes back compliant and sends nothing more: no loop
    applying.pipeline.put_cloudtrail_event(
        s3_call_detail("PutBucketEncryption", bucket, account=ACCOUNT, region="eu-west-1")
    )
    (again,), alerts = applying.deliver()
    assert (again.response["status"], alerts) == ("COMPLIANT", [])


def test_an_exempt_bucket_is_never_touched(applying: Deployment) -> None:
    bucket = applying.drift(team="sandbox")

    (invocation,), alerts = applying.deliver()

    assert (invocation.response["status"], alerts) == ("EXEMPT", [])
    assert applying.encryption(bucket) == {"SSEAlgorithm": "AES256"}


def test_past_the_hourly_limit_the_drift_is_alerted_not_fixed(applying: Deployment) -> None:
    # The deployment allows 2 per hour; spend what is left of them, then one more.
    results = []
    for _ in range(3):
        bucket = applying.drift()
        _, alerts = applying.deliver()
        results.append((bucket, alerts))

    bucket, (alert,) = results[-1]
    assert alert.document["status"] == "DRIFT"
    assert alert.document["autoRemediation"]["applied"] is False
    assert "remediationLimitPerHour (2) reached" in alert.document["autoRemediation"]["reason"]
    assert applying.encryption(bucket) == {"SSEAlgorithm": "AES256"}


def test_dry_run_leaves_the_bucket_and_says_what_it_would_apply(dry_run: Deployment) -> None:
    bucket = dry_run.drift()

    _, (alert,) = dry_run.deliver()

    assert dry_run.encryption(bucket) == {"SSEAlgorithm": "AES256"}
    done = alert.document["autoRemediation"]
    assert (done["mode"], done["applied"]) == ("dry-run", False)
    assert done["configuration"] == {
        "Rules": [
            {
                "ApplyServerSideEncryptionByDefault": {
                    "SSEAlgorithm": "aws:kms",
                    "KMSMasterKeyID": APPROVED,
                },
                "BucketKeyEnabled": True,
                # the block the bucket had is kept (requireSseCBlocked, on by default)
                "BlockedEncryptionTypes": {"EncryptionType": ["SSE-C"]},
            }
        ]
    }
    assert "Automatic remediation (dry-run)" in render_email(alert.document)
    assert "It would apply:" in render_email(alert.document)
