"""evaluate(observed, policy): every violation code, key normalization and conflicting cases."""

from __future__ import annotations

from typing import Any

import pytest

from functions.drift_monitor.domain.evaluation import evaluate, normalize_key
from functions.drift_monitor.domain.models import (
    BucketRef,
    EncryptionRule,
    ObservedEncryption,
    Severity,
    Status,
    Trigger,
)
from functions.drift_monitor.domain.policy import Policy

ACCOUNT = "123456789012"
OTHER = "999988887777"
BUCKET = BucketRef("payments-ledger", ACCOUNT, "eu-west-1")
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
KEY = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/{KEY_ID}"
ALIAS = f"arn:aws:kms:eu-west-1:{ACCOUNT}:alias/payments"
FOREIGN_KEY = f"arn:aws:kms:eu-west-1:{OTHER}:key/{KEY_ID}"
AWS_MANAGED = f"arn:aws:kms:eu-west-1:{ACCOUNT}:alias/aws/s3"
PUT = Trigger(source="cloudtrail", event_name="PutBucketEncryption")


# As S3 sets new buckets up since April 2026: SSE-C blocked (requireSseCBlocked, on by default).
SSE_C_BLOCKED = ("SSE-C",)


def kms(
    key: str | None = KEY, *, bucket_key: bool = True, blocked: Any = SSE_C_BLOCKED
) -> EncryptionRule:
    return EncryptionRule("aws:kms", key, bucket_key, blocked)


def dsse(key: str | None = KEY, *, blocked: Any = SSE_C_BLOCKED) -> EncryptionRule:
    return EncryptionRule("aws:kms:dsse", key, False, blocked)


SSE_S3 = EncryptionRule("AES256", blocked_encryption_types=SSE_C_BLOCKED)

CASES: list[tuple[str, tuple[EncryptionRule, ...], dict[str, Any], list[str]]] = [
    # (case, observed rules, policy, expected violation codes in order)
    ("no configuration (moto, or before 2023)", (), {}, ["NO_DEFAULT_ENCRYPTION"]),
    ("SSE-S3 under the default policy", (SSE_S3,), {}, ["ALGORITHM_NOT_ALLOWED"]),
    ("SSE-S3 allowed", (SSE_S3,), {"allowedAlgorithms": ["AES256"]}, []),
    ("SSE-KMS in-account key", (kms(),), {}, []),
    ("DSSE-KMS in-account key", (dsse(),), {}, []),
    (
        "DSSE-KMS not allowed",
        (dsse(),),
        {"allowedAlgorithms": ["aws:kms"]},
        ["ALGORITHM_NOT_ALLOWED"],
    ),
    (
        "object-level algorithm aws:fsx",
        (EncryptionRule("aws:fsx", blocked_encryption_types=SSE_C_BLOCKED),),
        {},
        ["ALGORITHM_NOT_ALLOWED"],
    ),
    (
        "empty algorithm string",
        (EncryptionRule("", blocked_encryption_types=SSE_C_BLOCKED),),
        {},
        ["ALGORITHM_NOT_ALLOWED"],
    ),
    ("listed key", (kms(KEY),), {"allowedKmsKeys": [KEY]}, []),
    # Listed, but named in a way S3 resolves in each uploader's account (S3 API Reference,
    # ServerSideEncryptionByDefault): the owner's uploads use the listed key, others' do not.
    (
        "listed alias, used by alias name",
        (kms("alias/payments"),),
        {"allowedKmsKeys": [ALIAS]},
        ["KMS_KEY_NOT_FULLY_QUALIFIED"],
    ),
    (
        "listed key, used by bare key id",
        (kms(KEY_ID),),
        {"allowedKmsKeys": [KEY]},
        ["KMS_KEY_NOT_FULLY_QUALIFIED"],
    ),
    ("listed alias, used by alias ARN", (kms(ALIAS),), {"allowedKmsKeys": [ALIAS]}, []),
    ("unlisted key", (kms(ALIAS),), {"allowedKmsKeys": [KEY]}, ["KMS_KEY_NOT_ALLOWED"]),
    # An alias is not resolved to its key: listing the key does not admit an alias pointing at it.
    ("alias of a listed key", (kms(ALIAS),), {"allowedKmsKeys": [KEY]}, ["KMS_KEY_NOT_ALLOWED"]),
    ("cross-account key, empty list", (kms(FOREIGN_KEY),), {}, ["KMS_KEY_CROSS_ACCOUNT"]),
    (
        "cross-account key, unlisted",
        (kms(FOREIGN_KEY),),
        {"allowedKmsKeys": [KEY]},
        ["KMS_KEY_NOT_ALLOWED", "KMS_KEY_CROSS_ACCOUNT"],
    ),
    ("cross-account key, listed", (kms(FOREIGN_KEY),), {"allowedKmsKeys": [FOREIGN_KEY]}, []),
    ("cross-account key, allowed", (kms(FOREIGN_KEY),), {"allowCrossAccountKeys": True}, []),
    (
        "cross-account allowed does not admit an unlisted key",
        (kms(FOREIGN_KEY),),
        {"allowCrossAccountKeys": True, "allowedKmsKeys": [KEY]},
        ["KMS_KEY_NOT_ALLOWED"],
    ),
    ("DSSE with a cross-account key", (dsse(FOREIGN_KEY),), {}, ["KMS_KEY_CROSS_ACCOUNT"]),
    ("AWS managed key (no key id) allowed", (kms(None),), {}, []),
    (
        "AWS managed key, CMK required",
        (kms(None),),
        {"requireCustomerManagedKey": True},
        ["AWS_MANAGED_KEY"],
    ),
    (
        "AWS managed key by alias name, CMK required",
        (kms("alias/aws/s3"),),
        {"requireCustomerManagedKey": True},
        ["KMS_KEY_NOT_FULLY_QUALIFIED", "AWS_MANAGED_KEY"],
    ),
    (
        "AWS managed key, not listed, CMK required",
        (kms(None),),
        {"requireCustomerManagedKey": True, "allowedKmsKeys": [KEY]},
        ["KMS_KEY_NOT_ALLOWED", "AWS_MANAGED_KEY"],
    ),
    ("listed AWS managed key", (kms(None),), {"allowedKmsKeys": [AWS_MANAGED]}, []),
    ("bucket key off, not required", (kms(bucket_key=False),), {}, []),
    (
        "bucket key off, required",
        (kms(bucket_key=False),),
        {"requireBucketKey": True},
        ["BUCKET_KEY_DISABLED"],
    ),
    # DSSE-KMS has no bucket keys: requiring them must not flag it.
    ("DSSE, bucket key required", (dsse(),), {"requireBucketKey": True}, []),
    (
        "SSE-C open, blocking required (the default)",
        (kms(blocked=None),),
        {},
        ["SSE_C_NOT_BLOCKED"],
    ),
    ("SSE-C open, blocking not required", (kms(blocked=None),), {"requireSseCBlocked": False}, []),
    ("SSE-C blocked", (kms(blocked=("SSE-C",)),), {"requireSseCBlocked": True}, []),
    (
        "only NONE blocked",
        (kms(blocked=("NONE",)),),
        {"requireSseCBlocked": True},
        ["SSE_C_NOT_BLOCKED"],
    ),
    (
        "SSE-S3 with SSE-C open, both required otherwise",
        (EncryptionRule("AES256"),),
        {"requireSseCBlocked": True},
        ["ALGORITHM_NOT_ALLOWED", "SSE_C_NOT_BLOCKED"],
    ),
    (
        "every rule is evaluated, not only the first",
        (kms(), kms(FOREIGN_KEY, bucket_key=False)),
        {"requireBucketKey": True},
        ["KMS_KEY_CROSS_ACCOUNT", "BUCKET_KEY_DISABLED"],
    ),
    (
        "everything wrong at once",
        (kms(FOREIGN_KEY, bucket_key=False, blocked=None),),
        {
            "allowedAlgorithms": ["aws:kms:dsse"],
            "allowedKmsKeys": [KEY],
            "requireBucketKey": True,
            "requireSseCBlocked": True,
        },
        [
            "ALGORITHM_NOT_ALLOWED",
            "KMS_KEY_NOT_ALLOWED",
            "KMS_KEY_CROSS_ACCOUNT",
            "BUCKET_KEY_DISABLED",
            "SSE_C_NOT_BLOCKED",
        ],
    ),
]


@pytest.mark.parametrize(
    ("rules", "policy", "codes"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_violations(
    rules: tuple[EncryptionRule, ...], policy: dict[str, Any], codes: list[str]
) -> None:
    finding = evaluate(ObservedEncryption(BUCKET, rules), Policy.from_dict(policy), PUT)

    assert [v.code.value for v in finding.violations] == codes
    assert finding.status is (Status.DRIFT if codes else Status.COMPLIANT)
    assert all(v.message for v in finding.violations)


def test_messages_name_the_rule_when_there_are_several() -> None:
    finding = evaluate(ObservedEncryption(BUCKET, (kms(), kms(FOREIGN_KEY))), Policy(), PUT)

    assert finding.violations[0].message.startswith("Rule 2 of 2: KMS key " + FOREIGN_KEY)


def test_exempt_name_is_evaluated_but_not_drift() -> None:
    policy = Policy.from_dict({"exemptBuckets": ["payments-*"]})

    finding = evaluate(ObservedEncryption(BUCKET, (SSE_S3,)), policy, PUT)

    assert finding.status is Status.EXEMPT
    assert [v.code.value for v in finding.violations] == ["ALGORITHM_NOT_ALLOWED"]
    assert not finding.alerts


def test_a_compliant_bucket_matching_an_exempt_name_is_simply_compliant() -> None:
    policy = Policy.from_dict({"exemptBuckets": ["payments-*"]})

    assert evaluate(ObservedEncryption(BUCKET, (kms(),)), policy, PUT).status is Status.COMPLIANT


@pytest.mark.parametrize(
    ("key_id", "bucket", "expected"),
    [
        (None, BUCKET, AWS_MANAGED),
        ("", BUCKET, AWS_MANAGED),
        (KEY_ID, BUCKET, KEY),
        ("alias/payments", BUCKET, ALIAS),
        (FOREIGN_KEY, BUCKET, FOREIGN_KEY),
        (
            KEY_ID,
            BucketRef("b", ACCOUNT, "cn-north-1"),
            f"arn:aws-cn:kms:cn-north-1:{ACCOUNT}:key/{KEY_ID}",
        ),
        (
            "alias/x",
            BucketRef("b", ACCOUNT, "us-gov-west-1"),
            f"arn:aws-us-gov:kms:us-gov-west-1:{ACCOUNT}:alias/x",
        ),
    ],
)
def test_key_normalization(key_id: str | None, bucket: BucketRef, expected: str) -> None:
    assert normalize_key(key_id, bucket) == expected


def test_an_unparseable_key_arn_from_another_account_is_still_cross_account() -> None:
    odd = f"arn:aws:kms:eu-west-1:{OTHER}:key/not-a-uuid"

    finding = evaluate(ObservedEncryption(BUCKET, (kms(odd),)), Policy(), PUT)

    assert [v.code.value for v in finding.violations] == ["KMS_KEY_CROSS_ACCOUNT"]
    assert OTHER in finding.violations[0].message


@pytest.mark.parametrize(
    ("rules", "policy", "event_name", "severity"),
    [
        ((), {}, "CreateBucket", Severity.HIGH),
        ((kms(FOREIGN_KEY),), {}, "PutBucketEncryption", Severity.HIGH),
        ((SSE_S3,), {}, "PutBucketEncryption", Severity.MEDIUM),
        (
            (kms(bucket_key=False),),
            {"requireBucketKey": True},
            "PutBucketEncryption",
            Severity.MEDIUM,
        ),
        # On AWS, DeleteBucketEncryption leaves SSE-S3: a downgrade is HIGH whatever the code.
        ((SSE_S3,), {}, "DeleteBucketEncryption", Severity.HIGH),
        ((SSE_S3,), {}, None, Severity.MEDIUM),
    ],
)
def test_severity(
    rules: tuple[EncryptionRule, ...],
    policy: dict[str, Any],
    event_name: str | None,
    severity: Severity,
) -> None:
    trigger = Trigger(source="cloudtrail", event_name=event_name)

    finding = evaluate(ObservedEncryption(BUCKET, rules), Policy.from_dict(policy), trigger)

    assert finding.severity is severity
