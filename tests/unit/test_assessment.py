"""assess(): the S3 outcomes of SPEC §4 as verdicts; tags are read only on the drift path."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from functions.drift_monitor.domain.assessment import assess
from functions.drift_monitor.domain.errors import BucketUnreadable, BucketVanished, RoleRefused
from functions.drift_monitor.domain.models import (
    BucketRef,
    Code,
    EncryptionRule,
    ObservedEncryption,
    Status,
    Trigger,
)
from functions.drift_monitor.domain.policy import Policy

BUCKET = BucketRef("payments-ledger", "123456789012", "eu-west-1")
TRIGGER = Trigger(source="cloudtrail", event_name="PutBucketEncryption")
COMPLIANT = (
    EncryptionRule(
        "aws:kms", "arn:aws:kms:eu-west-1:123456789012:alias/payments", True, ("SSE-C",)
    ),
)
DRIFTED = (EncryptionRule("AES256"),)


@dataclass
class InMemoryBuckets:
    """A BucketReader over a fixed state; records which reads were made."""

    rules: tuple[EncryptionRule, ...] | Exception = ()
    tags: dict[str, str] | Exception = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    def read_encryption(self, bucket: BucketRef) -> ObservedEncryption:
        self.calls.append("GetBucketEncryption")
        if isinstance(self.rules, Exception):
            raise self.rules
        return ObservedEncryption(bucket, self.rules)

    def read_tags(self, bucket: BucketRef) -> dict[str, str]:
        self.calls.append("GetBucketTagging")
        if isinstance(self.tags, Exception):
            raise self.tags
        return self.tags


DENIED = BucketUnreadable(BUCKET, "s3:GetEncryptionConfiguration", "AccessDenied")
TAGS_DENIED = BucketUnreadable(BUCKET, "s3:GetBucketTagging", "AccessDenied")
GONE = BucketVanished("s3://payments-ledger no longer exists")
EXEMPT_TAG = {"encryption-monitor:exempt": "true"}


@pytest.mark.parametrize(
    ("state", "policy", "status", "calls"),
    [
        (InMemoryBuckets(COMPLIANT), {}, Status.COMPLIANT, ["GetBucketEncryption"]),
        (InMemoryBuckets(DRIFTED), {}, Status.DRIFT, ["GetBucketEncryption", "GetBucketTagging"]),
        (InMemoryBuckets(()), {}, Status.DRIFT, ["GetBucketEncryption", "GetBucketTagging"]),
        (
            InMemoryBuckets(DRIFTED, EXEMPT_TAG),
            {},
            Status.EXEMPT,
            ["GetBucketEncryption", "GetBucketTagging"],
        ),
        (
            InMemoryBuckets(DRIFTED, {"encryption-monitor:exempt": "false"}),
            {},
            Status.DRIFT,
            ["GetBucketEncryption", "GetBucketTagging"],
        ),
        (
            InMemoryBuckets(DRIFTED, EXEMPT_TAG),
            {"exemptTag": None},
            Status.DRIFT,
            ["GetBucketEncryption"],
        ),
        (
            InMemoryBuckets(DRIFTED),
            {"exemptBuckets": ["payments-*"]},
            Status.EXEMPT,
            ["GetBucketEncryption"],
        ),
        # Tags unreadable: the exemption cannot be confirmed, so the drift is reported.
        (
            InMemoryBuckets(DRIFTED, TAGS_DENIED),
            {},
            Status.DRIFT,
            ["GetBucketEncryption", "GetBucketTagging"],
        ),
        (
            InMemoryBuckets(DRIFTED, GONE),
            {},
            Status.VANISHED,
            ["GetBucketEncryption", "GetBucketTagging"],
        ),
        (InMemoryBuckets(GONE), {}, Status.VANISHED, ["GetBucketEncryption"]),
        (
            InMemoryBuckets(DENIED),
            {},
            Status.UNVERIFIABLE,
            ["GetBucketEncryption", "GetBucketTagging"],
        ),
        (
            InMemoryBuckets(DENIED, EXEMPT_TAG),
            {},
            Status.EXEMPT,
            ["GetBucketEncryption", "GetBucketTagging"],
        ),
        (
            InMemoryBuckets(DENIED),
            {"exemptBuckets": ["payments-*"]},
            Status.EXEMPT,
            ["GetBucketEncryption"],
        ),
    ],
    ids=[
        "compliant: one read",
        "drift: one tag read",
        "no configuration",
        "exempt by tag",
        "exempt tag with another value",
        "tag exemption disabled",
        "exempt by name: no tag read",
        "tags unreadable",
        "vanished during the tag read",
        "vanished",
        "access denied",
        "access denied but exempt by tag",
        "access denied but exempt by name",
    ],
)
def test_outcomes(
    state: InMemoryBuckets, policy: dict[str, object], status: Status, calls: list[str]
) -> None:
    finding = assess(BUCKET, TRIGGER, Policy.from_dict(policy), state)

    assert finding.status is status
    assert state.calls == calls


def test_access_denied_is_unverifiable_never_unencrypted() -> None:
    finding = assess(BUCKET, TRIGGER, Policy(), InMemoryBuckets(DENIED))

    assert finding.observed is None
    assert [v.code.value for v in finding.violations] == ["ACCESS_DENIED"]
    assert finding.alerts


def test_vanished_bucket_carries_no_violations_and_no_alert() -> None:
    finding = assess(BUCKET, TRIGGER, Policy(), InMemoryBuckets(GONE))

    assert finding.violations == ()
    assert not finding.alerts
    assert finding.detail == "s3://payments-ledger no longer exists"


def test_throttling_that_outlasts_the_retries_propagates() -> None:
    class Throttled(Exception):
        pass

    with pytest.raises(Throttled):
        assess(BUCKET, TRIGGER, Policy(), InMemoryBuckets(Throttled("SlowDown")))


REFUSED = RoleRefused(
    "123456789012", "arn:aws:iam::123456789012:role/S3EncryptionMonitorReader", "AccessDenied"
)


def test_a_refused_reader_role_is_unverifiable_naming_the_role() -> None:
    finding = assess(BUCKET, TRIGGER, Policy(), InMemoryBuckets(REFUSED))

    assert (finding.status, finding.observed) == (Status.UNVERIFIABLE, None)
    (violation,) = finding.violations
    assert violation.code == Code.ACCESS_DENIED
    assert "could not assume its reader role arn:aws:iam::123456789012:role/" in violation.message
    assert finding.detail == str(REFUSED)


def test_a_refused_reader_role_on_an_exempt_name_is_exempt() -> None:
    policy = Policy(exempt_buckets=("payments-*",))

    finding = assess(BUCKET, TRIGGER, policy, InMemoryBuckets(REFUSED))

    assert finding.status is Status.EXEMPT


def test_tags_that_cannot_be_read_through_the_role_leave_the_alert() -> None:
    finding = assess(BUCKET, TRIGGER, Policy(), InMemoryBuckets(DRIFTED, REFUSED))

    assert finding.status is Status.DRIFT
