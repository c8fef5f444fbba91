"""End to end: CloudTrail-shaped events on the bus, routed by the synthesized rule, handled by the
synthesized asset with the template's environment, alerts read back from an SQS subscriber."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from local.cloudtrail import DEMO_ACTOR, RecordedS3
from local.emulator import Emulator
from local.lambda_runtime import LambdaContainer
from local.pipeline import LocalPipeline
from tests.e2e.conftest import SynthFactory

pytestmark = pytest.mark.e2e

ACCOUNT = "123456789012"
APPROVED = f"arn:aws:kms:eu-west-1:{ACCOUNT}:alias/approved"
PARTNER_LISTED = "arn:aws:kms:eu-west-1:999988887777:key/1a2b3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d"
PARTNER_UNLISTED = "arn:aws:kms:eu-west-1:999988887777:key/9f8e7d6c-5b4a-4f3e-8d2c-1b0a9f8e7d6c"
STRICT = {
    "allowedAlgorithms": ["aws:kms", "aws:kms:dsse"],
    "allowedKmsKeys": [APPROVED, PARTNER_LISTED],
    "allowCrossAccountKeys": False,
    "requireCustomerManagedKey": True,
    "requireBucketKey": True,
    "requireSseCBlocked": False,
    "exemptBuckets": ["sandbox-*"],
    "exemptTag": "team=sandbox",
}
PERMISSIVE = {
    "allowedAlgorithms": ["AES256", "aws:kms"],
    "allowCrossAccountKeys": True,
    "requireSseCBlocked": True,
    "exemptTag": None,
}


class Deployment:
    def __init__(self, pipeline: LocalPipeline) -> None:
        self.pipeline = pipeline
        self.function: LambdaContainer = pipeline.start_function()
        assert self.function.init_error is None, self.function.init_error
        self.s3: RecordedS3 = pipeline.recorded_s3

    def run(self) -> tuple[list[Any], list[Any]]:
        """Delivers what the rule routed; returns (invocations, alerts received)."""
        invocations = self.pipeline.deliver(self.function)
        return invocations, self.pipeline.received_alerts()


@pytest.fixture(scope="module")
def strict(synth: SynthFactory, emulator: Emulator) -> Deployment:
    return Deployment(LocalPipeline(synth(STRICT), emulator))


@pytest.fixture(scope="module")
def permissive(synth: SynthFactory, emulator: Emulator) -> Deployment:
    return Deployment(LocalPipeline(synth(PERMISSIVE), emulator))


def unique(prefix: str = "bucket") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


Setup = Callable[[RecordedS3, str], None]


def kms(key: str | None, bucket_key: bool = True) -> Setup:
    return lambda s3, name: s3.put_encryption(name, "aws:kms", key, bucket_key=bucket_key)


def aes256(s3: RecordedS3, name: str) -> None:
    s3.put_encryption(name, "AES256")


STRICT_CASES: list[tuple[str, str, dict[str, str] | None, Setup | None, list[str], str | None]] = [
    # (case, bucket prefix, tags at creation, change after creation, violation codes, severity)
    ("approved alias, bucket key on", "ledger", None, kms(APPROVED), [], None),
    # By name, S3 resolves the alias in each uploader's account (S3 API Reference)
    (
        "approved alias by name only",
        "ledger",
        None,
        kms("alias/approved"),
        ["KMS_KEY_NOT_FULLY_QUALIFIED"],
        "MEDIUM",
    ),
    (
        "approved alias by ARN, DSSE",
        "ledger",
        None,
        lambda s3, n: s3.put_encryption(n, "aws:kms:dsse", APPROVED),
        [],
        None,
    ),
    ("listed partner key", "partner", None, kms(PARTNER_LISTED), [], None),
    ("no default encryption", "raw", None, None, ["NO_DEFAULT_ENCRYPTION"], "HIGH"),
    ("SSE-S3", "assets", None, aes256, ["ALGORITHM_NOT_ALLOWED"], "MEDIUM"),
    (
        "unlisted partner key",
        "exchange",
        None,
        kms(PARTNER_UNLISTED),
        ["KMS_KEY_NOT_ALLOWED", "KMS_KEY_CROSS_ACCOUNT"],
        "HIGH",
    ),
    (
        "AWS managed key",
        "legacy",
        None,
        kms(None),
        ["KMS_KEY_NOT_ALLOWED", "AWS_MANAGED_KEY"],
        "MEDIUM",
    ),
    (
        "bucket key off",
        "logs",
        None,
        kms(APPROVED, bucket_key=False),
        ["BUCKET_KEY_DISABLED"],
        "MEDIUM",
    ),
    ("exempt by name", "sandbox", None, aes256, [], None),
    ("exempt by tag", "scratch", {"team": "sandbox"}, aes256, [], None),
    (
        "tag with another value",
        "core",
        {"team": "core"},
        aes256,
        ["ALGORITHM_NOT_ALLOWED"],
        "MEDIUM",
    ),
]


@pytest.mark.parametrize(
    ("prefix", "tags", "change", "codes", "severity"),
    [c[1:] for c in STRICT_CASES],
    ids=[c[0] for c in STRICT_CASES],
)
def test_every_policy_field_end_to_end(
    strict: Deployment,
    prefix: str,
    tags: dict[str, str] | None,
    change: Setup | None,
    codes: list[str],
    severity: str | None,
) -> None:
    name = unique(prefix)
    strict.s3.create_bucket(name, tags=tags, record=change is None)
    if change:
        change(strict.s3, name)

    invocations, alerts = strict.run()

    assert len(invocations) == 1 and invocations[0].ok, invocations
    if not codes:
        assert alerts == []
        return
    (alert,) = alerts
    document = alert.document
    assert [v["code"] for v in document["violations"]] == codes
    assert document["severity"] == severity
    assert document["status"] == "DRIFT"
    assert (document["bucket"], document["account"], document["region"]) == (
        name,
        ACCOUNT,
        "eu-west-1",
    )
    assert document["trigger"]["source"] == "cloudtrail"
    assert document["trigger"]["actor"] == DEMO_ACTOR
    assert document["trigger"]["eventName"] == ("PutBucketEncryption" if change else "CreateBucket")
    assert document["policy"]["allowedKmsKeys"] == STRICT["allowedKmsKeys"]
    assert document["remediation"].startswith(f"aws s3api put-bucket-encryption --bucket {name} ")
    assert alert.subject == f"[DRIFT] s3://{name} ({ACCOUNT}, eu-west-1)"
    assert alert.attributes == {
        "status": "DRIFT",
        "severity": severity,
        "bucket": name,
        "account": ACCOUNT,
    }


def test_removing_encryption_is_a_high_severity_downgrade(strict: Deployment) -> None:
    name = unique("payments")
    strict.s3.create_bucket(name, record=False)
    strict.s3.put_encryption(name, "aws:kms", APPROVED, bucket_key=True)
    assert [i.response["status"] for i in strict.run()[0]] == ["COMPLIANT"]
    strict.s3.delete_encryption(name)

    (invocation,), (alert,) = strict.run()

    assert invocation.response["status"] == "DRIFT"
    assert alert.document["trigger"]["eventName"] == "DeleteBucketEncryption"
    assert alert.document["severity"] == "HIGH"
    assert alert.document["observed"] == {"rules": []}


def test_events_read_the_bucket_as_it_is_now_so_a_stale_event_repeats_nothing(
    strict: Deployment,
) -> None:
    name = unique("payments")
    strict.s3.create_bucket(name, record=False)
    strict.s3.put_encryption(name, "aws:kms", APPROVED, bucket_key=True)
    strict.s3.delete_encryption(name)

    invocations, alerts = strict.run()

    # Both events are evaluated against the bucket's state now, not the state each one
    # described: the same drift twice, announced once.
    assert [i.response["status"] for i in invocations] == ["DRIFT", "DRIFT"]
    assert [i.response["action"] for i in invocations] == ["ALERT", "SUPPRESS"]
    (alert,) = alerts
    assert alert.document["trigger"]["eventName"] == "PutBucketEncryption"


def test_a_bucket_deleted_before_the_check_raises_no_alert(strict: Deployment) -> None:
    name = unique("tmp")
    strict.s3.create_bucket(name)
    strict.s3.delete_bucket(name)

    invocations, alerts = strict.run()

    # the creation and the deletion (watched: it resolves open drift) both find it gone
    assert [i.response["status"] for i in invocations] == ["VANISHED", "VANISHED"]
    assert [i.response["action"] for i in invocations] == ["NONE", "NONE"]
    assert alerts == []


def test_failed_and_unrelated_calls_never_reach_the_function(
    strict: Deployment, event_fixture: Any
) -> None:
    name = unique("ledger")
    strict.s3.create_bucket(name, record=False)
    strict.s3.denied_put_encryption(name)
    strict.pipeline.put_cloudtrail_event(
        event_fixture("put-bucket-encryption-access-denied.json")["detail"]
    )
    for event_name in ("GetBucketEncryption", "PutBucketPolicy", "PutBucketVersioning"):
        detail = event_fixture("put-bucket-encryption.json")["detail"]
        detail["eventName"] = event_name
        strict.pipeline.put_cloudtrail_event(detail)
    detail = event_fixture("put-bucket-encryption.json")["detail"]
    detail["eventSource"] = "s3-outposts.amazonaws.com"
    strict.pipeline.put_cloudtrail_event(detail)

    invocations, alerts = strict.run()

    assert invocations == []
    assert alerts == []


@pytest.mark.parametrize(
    ("fixture", "bucket", "region"),
    [
        ("put-bucket-encryption.json", "payments-ledger", "eu-west-1"),
        ("create-bucket-v1.03.json", "legacy-archive", "us-east-1"),
        ("delete-bucket-encryption.json", "payments-ledger", "eu-west-1"),
        ("create-bucket-by-aws-service.json", "awsbackup-restore-0001", "eu-west-1"),
    ],
)
def test_real_event_shapes_are_routed_and_read_in_their_region(
    strict: Deployment, event_fixture: Any, fixture: str, bucket: str, region: str
) -> None:
    strict.pipeline.put_cloudtrail_event(event_fixture(fixture)["detail"])

    invocations, alerts = strict.run()

    # None of these buckets exist on the emulator: each was read (in its region) and found gone.
    assert [(i.response["status"], i.response["bucket"]) for i in invocations] == [
        ("VANISHED", bucket)
    ]
    assert alerts == []
    evaluated = [r for r in strict.function.log_records() if r.get("message") == "Bucket evaluated"]
    assert evaluated[-1]["region"] == region


def test_a_malformed_event_is_kept_with_its_reason_and_not_retried(strict: Deployment) -> None:
    detail = {
        "eventSource": "s3.amazonaws.com",
        "eventName": "CreateBucket",
        "requestParameters": {},
    }
    strict.pipeline.put_cloudtrail_event(detail)

    invocations, alerts = strict.run()

    assert len(invocations) == 1 and invocations[0].response["status"] == "INVALID"
    (kept,) = strict.pipeline.failure_queue_messages()
    assert kept["body"]["detail"] == detail
    assert kept["body"]["source"] == "aws.s3"
    assert kept["attributes"]["reason"] == "detail.requestParameters.bucketName is missing"
    assert alerts == []


def test_aws_calls_per_event(strict: Deployment) -> None:
    compliant, drifted = unique("ledger"), unique("assets")
    for name in (compliant, drifted):
        strict.s3.create_bucket(name, record=False)
    kms(APPROVED)(strict.s3, compliant)
    aes256(strict.s3, drifted)
    compliant_event, drift_event = strict.pipeline.delivered_events()
    # Counted inside the function's container, at botocore's call site.
    compliant, first_drift, repeated_drift = (
        list(strict.function.invoke(event).calls)
        for event in (compliant_event, drift_event, drift_event)
    )
    strict.pipeline.received_alerts()

    # §9: one S3 read and one state write; the drift path adds the tag read and, when it
    # announces, the publish and the write recording that it was sent (after the publish, so a
    # failed publish is retried rather than remembered as sent).
    assert compliant == ["GetBucketEncryption", "UpdateItem"]
    assert first_drift == [
        "GetBucketEncryption",
        "GetBucketTagging",
        "UpdateItem",
        "Publish",
        "UpdateItem",
    ]
    assert repeated_drift == ["GetBucketEncryption", "GetBucketTagging", "UpdateItem"]


def test_an_invalid_policy_fails_the_invocation_and_the_event_is_kept(
    strict: Deployment,
) -> None:
    broken = strict.pipeline.start_function({"ENCRYPTION_POLICY": '{"allowedAlgorithms": []}'})
    name = unique("raw")
    strict.s3.create_bucket(name)

    invocations = strict.pipeline.deliver(broken)

    assert len(invocations) == 1 and not invocations[0].ok
    (kept,) = strict.pipeline.failure_queue_messages()
    record = kept["body"]
    assert record["requestContext"] == {
        "condition": "RetriesExhausted",
        "approximateInvokeCount": 3,
    }
    assert record["requestPayload"]["detail"]["requestParameters"]["bucketName"] == name
    assert "ENCRYPTION_POLICY" in record["responsePayload"]["errorMessage"]
    assert "allowedAlgorithms" in record["responsePayload"]["errorMessage"]
    assert strict.pipeline.received_alerts() == []


def test_a_failed_publish_fails_the_invocation_and_the_event_is_kept(strict: Deployment) -> None:
    topicless = strict.pipeline.start_function(
        {"ALERT_TOPIC_ARN": f"arn:aws:sns:eu-west-1:{ACCOUNT}:deleted-topic"}
    )
    name = unique("raw")
    strict.s3.create_bucket(name)

    invocations = strict.pipeline.deliver(topicless)

    assert not invocations[0].ok and "NotFound" in (invocations[0].error or "")
    (kept,) = strict.pipeline.failure_queue_messages()
    assert kept["body"]["requestPayload"]["detail"]["requestParameters"]["bucketName"] == name


PERMISSIVE_CASES = [
    ("SSE-S3 allowed", "assets", None, aes256, []),
    (
        "SSE-C left open, blocking required",
        "open",
        None,
        lambda s3, n: s3.put_encryption(n, "AES256", sse_c_blocked=False),
        ["SSE_C_NOT_BLOCKED"],
    ),
    ("cross-account key allowed", "exchange", None, kms(PARTNER_UNLISTED), []),
    (
        "DSSE not allowed",
        "vault",
        None,
        lambda s3, n: s3.put_encryption(n, "aws:kms:dsse", APPROVED),
        ["ALGORITHM_NOT_ALLOWED"],
    ),
    # exemptTag null: the default exemption tag no longer exempts.
    (
        "tag exemption disabled",
        "cache",
        {"encryption-monitor:exempt": "true"},
        lambda s3, n: s3.put_encryption(n, "AES256", sse_c_blocked=False),
        ["SSE_C_NOT_BLOCKED"],
    ),
]


@pytest.mark.parametrize(
    ("prefix", "tags", "change", "codes"),
    [c[1:] for c in PERMISSIVE_CASES],
    ids=[c[0] for c in PERMISSIVE_CASES],
)
def test_the_other_side_of_each_switch(
    permissive: Deployment,
    prefix: str,
    tags: dict[str, str] | None,
    change: Setup,
    codes: list[str],
) -> None:
    name = unique(prefix)
    permissive.s3.create_bucket(name, tags=tags, record=False)
    change(permissive.s3, name)

    _, alerts = permissive.run()

    if not codes:
        assert alerts == []
        return
    (alert,) = alerts
    assert [v["code"] for v in alert.document["violations"]] == codes
    assert alert.document["policy"]["exemptTag"] is None
