"""Alert content: the JSON document, the subject rules, the email text and the fix command."""

from __future__ import annotations

import json
import shlex
from typing import Any

import pytest

from functions.drift_monitor.aws.s3_reader import parse_rule
from functions.drift_monitor.domain.alerts import (
    KEY_PLACEHOLDER,
    SUBJECT_LIMIT,
    build_alert,
    render_email,
    subject_line,
)
from functions.drift_monitor.domain.assessment import unverifiable
from functions.drift_monitor.domain.errors import BucketUnreadable
from functions.drift_monitor.domain.evaluation import evaluate
from functions.drift_monitor.domain.events import parse_event
from functions.drift_monitor.domain.lifecycle import fingerprint
from functions.drift_monitor.domain.models import (
    EncryptionRule,
    Finding,
    ObservedEncryption,
    Status,
)
from functions.drift_monitor.domain.policy import Policy
from tests.conftest import load_event
from tests.unit.test_evaluation import BUCKET, CASES

TRIGGER = parse_event(load_event("put-bucket-encryption.json")).trigger
# A customer managed key a person would choose where the fix says to.
CHOSEN_KEY = "arn:aws:kms:eu-west-1:123456789012:key/0b8f4ab2-7d3e-4c4a-9a59-5c1f7d0e8a11"


SSE_S3 = EncryptionRule("AES256", blocked_encryption_types=("SSE-C",))


def drift(rules: tuple[EncryptionRule, ...] = (SSE_S3,), **policy: Any) -> Finding:
    return evaluate(ObservedEncryption(BUCKET, rules), Policy.from_dict(policy), TRIGGER)


def test_document_follows_schema_version_1() -> None:
    alert = build_alert(drift(), Policy(), first_detected="2026-11-27T08:00:00Z")

    assert alert.document == {
        "schemaVersion": "1",
        "status": "DRIFT",
        "severity": "MEDIUM",
        "bucket": "payments-ledger",
        "account": "123456789012",
        "region": "eu-west-1",
        "bucketKind": "general-purpose",  # §12: or directory, table
        "bucketArn": "arn:aws:s3:::payments-ledger",
        "trigger": {
            "source": "cloudtrail",
            "eventName": "PutBucketEncryption",
            "eventTime": "2026-11-20T10:15:30Z",
            "eventId": "3e2a6f3c-7d0b-4c59-9a61-4b1e0f3f2d11",
            "actor": "arn:aws:sts::123456789012:assumed-role/PlatformAdmin/alice",
            "sourceIp": "203.0.113.24",
        },
        "observed": {
            "rules": [
                {
                    "algorithm": "AES256",
                    "kmsKeyId": None,
                    "bucketKeyEnabled": False,
                    "blockedEncryptionTypes": ["SSE-C"],
                }
            ]
        },
        "violations": [
            {
                "code": "ALGORITHM_NOT_ALLOWED",
                "message": "Default encryption is AES256 (SSE-S3); the policy allows only "
                "aws:kms, aws:kms:dsse.",
            }
        ],
        "policy": Policy().to_dict(),
        "remediation": alert.document["remediation"],
        # Added by the alert lifecycle (§11): fields are only ever added to version 1.
        "fingerprint": fingerprint(drift()),
        "firstDetected": "2026-11-27T08:00:00Z",
        "keys": [],  # what KMS said about the keys, with keyChecks (§12)
        "autoRemediation": None,  # what remediation did, when it is on (§12)
        "exception": None,  # the exception in force or expired (§15)
        "exemptViolations": [],  # violations an exception in force accepts (§15)
    }
    assert alert.document["fingerprint"] is not None
    assert alert.attributes == {
        "status": "DRIFT",
        "severity": "MEDIUM",
        "bucket": "payments-ledger",
        "account": "123456789012",
    }
    json.dumps(alert.document)  # serializable as it is


def test_unverifiable_document_has_no_observed_state_and_no_fix() -> None:
    denied = BucketUnreadable(BUCKET, "s3:GetEncryptionConfiguration", "AccessDenied")

    alert = build_alert(unverifiable(BUCKET, TRIGGER, denied), Policy())

    assert alert.document["status"] == "UNVERIFIABLE"
    assert alert.document["severity"] == "LOW"
    assert alert.document["observed"] is None
    assert alert.document["remediation"] is None
    assert [v["code"] for v in alert.document["violations"]] == ["ACCESS_DENIED"]
    message = alert.document["violations"][0]["message"]
    assert "s3:GetEncryptionConfiguration" in message
    assert "arn:aws:s3:::payments-ledger" in message
    assert alert.subject.startswith("[UNVERIFIABLE] s3://payments-ledger")
    assert "could not verify" in alert.email


@pytest.mark.parametrize(
    "name",
    ["payments-ledger", "a" * 63, "Legacy_" + "b" * 248, "x-y.z"],
    ids=["short", "63", "255-legacy", "dots"],
)
@pytest.mark.parametrize("status", ["DRIFT", "UNVERIFIABLE"])
def test_subject_fits_sns_rules(name: str, status: str) -> None:
    document = {
        "status": status,
        "bucket": name,
        "account": "123456789012",
        "region": "ap-southeast-2",
    }

    subject = subject_line(document)

    assert len(subject) <= SUBJECT_LIMIT
    assert subject.startswith(f"[{status}] s3://")
    assert subject.endswith(" (123456789012, ap-southeast-2)")
    assert all(" " <= char <= "~" for char in subject)
    if len(name) > 50:
        assert "..." in subject
    else:
        assert name in subject


def test_subject_replaces_characters_sns_rejects() -> None:
    document = {"status": "DRIFT", "bucket": "b\nad\tname\u00e9", "account": "1", "region": "r"}

    assert subject_line(document) == "[DRIFT] s3://b?ad?name? (1, r)"


def test_email_tells_a_person_everything_needed() -> None:
    blocked = ("SSE-C",)
    other = f"arn:aws:kms:eu-west-1:{BUCKET.account}:alias/other"
    finding = drift((EncryptionRule("aws:kms", other, False, blocked),), requireBucketKey=True)

    email = build_alert(finding, Policy.from_dict({"requireBucketKey": True})).email

    first_line = email.splitlines()[0]
    assert first_line == (
        "S3 bucket payments-ledger no longer meets your encryption policy "
        "(1 violation: BUCKET_KEY_DISABLED)."
    )
    for expected in (
        "s3://payments-ledger",
        "123456789012",
        "eu-west-1",
        "PutBucketEncryption by arn:aws:sts::123456789012:assumed-role/PlatformAdmin/alice",
        "from 203.0.113.24 at 2026-11-20T10:15:30Z",
        f"Rule 1: aws:kms; key {other}; bucket key off; blocked uploads: SSE-C",
        finding.violations[0].message,
        "aws s3api put-bucket-encryption --bucket payments-ledger",
    ):
        assert expected in email


def test_email_for_a_bucket_without_configuration() -> None:
    email = render_email(build_alert(drift(()), Policy()).document)

    assert "none (no default encryption configuration)" in email
    assert "Severity:  HIGH" in email


def _apply(command: str) -> tuple[EncryptionRule, ...]:
    """What the bucket's configuration would be after running the remediation command, with a
    key the policy allows where it says to choose one."""
    argv = shlex.split(command.replace(KEY_PLACEHOLDER, CHOSEN_KEY))
    assert argv[:3] == ["aws", "s3api", "put-bucket-encryption"]
    options = dict(zip(argv[3::2], argv[4::2], strict=True))
    assert options["--bucket"] == BUCKET.name
    assert options["--expected-bucket-owner"] == BUCKET.account
    assert options["--region"] == BUCKET.region
    configuration = json.loads(options["--server-side-encryption-configuration"])
    return tuple(parse_rule(rule) for rule in configuration["Rules"])


DRIFT_CASES = [c for c in CASES if c[3]]


@pytest.mark.parametrize(
    ("rules", "policy"), [c[1:3] for c in DRIFT_CASES], ids=[c[0] for c in DRIFT_CASES]
)
def test_the_remediation_command_makes_the_bucket_compliant(
    rules: tuple[EncryptionRule, ...], policy: dict[str, Any]
) -> None:
    finding = drift(rules, **policy)
    command = build_alert(finding, Policy.from_dict(policy)).document["remediation"]

    fixed = evaluate(ObservedEncryption(BUCKET, _apply(command)), Policy.from_dict(policy), TRIGGER)

    assert fixed.status is Status.COMPLIANT, (command, fixed.violations)


def test_a_required_customer_key_that_cannot_be_guessed_is_a_marked_placeholder() -> None:
    policy = {"requireCustomerManagedKey": True}
    finding = drift((EncryptionRule("aws:kms", None, True),), **policy)

    alert = build_alert(finding, Policy.from_dict(policy))

    assert KEY_PLACEHOLDER in alert.document["remediation"]
    assert f"replace {KEY_PLACEHOLDER}" in alert.email


def test_the_fix_blocks_sse_c_and_never_writes_none_beside_it() -> None:
    # "NONE" says that nothing is blocked (S3 API Reference, BlockedEncryptionTypes).
    finding = drift((EncryptionRule("AES256", blocked_encryption_types=("NONE",)),))

    (rule,) = _apply(build_alert(finding, Policy()).document["remediation"])

    assert rule.blocked_encryption_types == ("SSE-C",)


def test_existing_blocked_types_are_kept_when_sse_c_blocking_is_not_required() -> None:
    policy = {"requireSseCBlocked": False}
    finding = drift((EncryptionRule("AES256", blocked_encryption_types=("NONE",)),), **policy)

    (rule,) = _apply(build_alert(finding, Policy.from_dict(policy)).document["remediation"])

    assert rule.blocked_encryption_types == ("NONE",)
