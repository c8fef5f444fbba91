"""Exceptions that end (§15): what they cover, until when, and what every document says of them."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import date, timedelta
from typing import Any

import pytest

from functions.drift_monitor.domain.alerts import build_alert
from functions.drift_monitor.domain.asff import asff_finding
from functions.drift_monitor.domain.assessment import assess
from functions.drift_monitor.domain.models import (
    BucketKind,
    BucketRef,
    EncryptionRule,
    Finding,
    ObservedEncryption,
    Status,
    Trigger,
)
from functions.drift_monitor.domain.policy import Policy
from functions.drift_monitor.sweep.digest import (
    SweepRun,
    build_digest,
    digest_candidates,
    has_exceptions_to_report,
    summary,
)
from functions.drift_monitor.sweep.report import CSV_COLUMNS, csv_text

TODAY = date(2026, 11, 29)
ACCOUNT = "123456789012"
OTHER = "210987654321"
LEGACY = BucketRef("legacy-uploads", ACCOUNT, "eu-west-1")
# SSE-S3 without the SSE-C block: two violations under the default policy.
OPEN_SSE_S3 = EncryptionRule("AES256", blocked_encryption_types=())
SWEEP = Trigger(source="sweep", event_time="2026-11-29T06:00:00Z")


class Reader:
    def __init__(self, rule: EncryptionRule = OPEN_SSE_S3, tags: dict[str, str] | None = None):
        self.rule = rule
        self.tags = tags or {}

    def read_encryption(self, bucket: BucketRef) -> ObservedEncryption:
        return ObservedEncryption(bucket, (self.rule,))

    def read_tags(self, bucket: BucketRef) -> dict[str, str]:
        return self.tags


def exception(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "buckets": ["legacy-*"],
        "allow": "all",
        "reason": "vendor uploads with SSE-C until the migration",
        "owner": "data-platform@example.com",
        "expires": (TODAY + timedelta(days=30)).isoformat(),
    }
    return {**raw, **changes}


def judged(
    *exceptions: dict[str, Any],
    bucket: BucketRef = LEGACY,
    reader: Reader | None = None,
    **policy: Any,
) -> Finding:
    chosen = Policy.from_dict({"exceptions": list(exceptions), **policy})
    return assess(bucket, SWEEP, chosen, reader or Reader(), today=TODAY)


def codes(finding: Finding) -> set[str]:
    return {violation.code.value for violation in finding.violations}


def test_an_exception_in_force_reports_the_bucket_exempt_with_the_exception() -> None:
    finding = judged(exception())

    assert finding.status is Status.EXEMPT
    assert not finding.alerts
    # the violations are still reported, as for every exemption
    assert codes(finding) == {"ALGORITHM_NOT_ALLOWED", "SSE_C_NOT_BLOCKED"}
    assert finding.exemption is not None
    assert finding.exemption.to_dict() == {
        "source": "exceptions[0]",
        "reason": "vendor uploads with SSE-C until the migration",
        "owner": "data-platform@example.com",
        "expires": "2026-12-29",
        "expired": False,
        "problem": None,
    }


def test_an_exception_covers_through_its_last_day_and_not_the_next() -> None:
    assert judged(exception(expires=TODAY.isoformat())).status is Status.EXEMPT

    ended = judged(exception(expires=(TODAY - timedelta(days=1)).isoformat()))

    assert ended.status is Status.DRIFT
    assert ended.exemption is not None
    assert (ended.exemption.expired, ended.exemption.owner) == (True, "data-platform@example.com")


def test_an_exception_that_accepts_some_violations_leaves_the_others_alerting() -> None:
    finding = judged(exception(allow=["SSE_C_NOT_BLOCKED"]))

    assert finding.status is Status.DRIFT
    assert codes(finding) == {"ALGORITHM_NOT_ALLOWED"}
    assert [v.code.value for v in finding.exempted] == ["SSE_C_NOT_BLOCKED"]
    document = build_alert(finding, Policy()).document
    assert [v["code"] for v in document["exemptViolations"]] == ["SSE_C_NOT_BLOCKED"]
    assert "Accepted by exceptions[0] until 2026-12-29" in build_alert(finding, Policy()).email


def test_accepting_a_violation_changes_the_drift_s_fingerprint() -> None:
    """A drift whose accepted part is gone is another drift: its alert lists only the rest."""
    whole = build_alert(judged(), Policy()).document["fingerprint"]
    rest = build_alert(judged(exception(allow=["SSE_C_NOT_BLOCKED"])), Policy()).document

    assert rest["fingerprint"] not in (None, whole)


@pytest.mark.parametrize(
    ("changes", "bucket", "covered"),
    [
        ({}, LEGACY, True),
        ({"buckets": ["other-*"]}, LEGACY, False),
        ({"accounts": [OTHER]}, LEGACY, False),
        ({"accounts": [ACCOUNT, OTHER]}, LEGACY, True),
        ({"buckets": ["arn:aws:s3:::legacy-uploads"]}, LEGACY, True),
        # an ARN of another kind of bucket never covers a general purpose bucket of that name
        (
            {"buckets": [f"arn:aws:s3tables:eu-west-1:{ACCOUNT}:bucket/legacy-uploads"]},
            LEGACY,
            False,
        ),
        (
            {"buckets": [f"arn:aws:s3tables:*:{ACCOUNT}:bucket/legacy-*"]},
            BucketRef("legacy-lake", ACCOUNT, "us-east-1", BucketKind.TABLE),
            True,
        ),
        (
            {"buckets": [f"arn:aws:s3vectors:eu-west-1:{OTHER}:bucket/legacy-*"]},
            BucketRef("legacy-embeddings", ACCOUNT, "eu-west-1", BucketKind.VECTOR),
            False,
        ),
        ({"allow": ["KMS_KEY_UNUSABLE"]}, LEGACY, False),
    ],
    ids=[
        "glob",
        "other-glob",
        "other-account",
        "listed-account",
        "general-arn",
        "table-arn-for-a-general-bucket",
        "table-arn-any-region",
        "vector-arn-other-account",
        "other-violation",
    ],
)
def test_what_an_exception_covers(
    changes: dict[str, Any], bucket: BucketRef, covered: bool
) -> None:
    finding = judged(exception(**changes), bucket=bucket)

    assert (finding.status is Status.EXEMPT) is covered
    assert (finding.exemption is not None) is covered


def test_the_most_recently_ended_exception_is_named_when_several_ended() -> None:
    older = exception(expires="2026-10-01", owner="old-team")
    newer = exception(expires="2026-11-01", owner="new-team")

    finding = judged(older, newer)

    assert finding.exemption is not None
    assert (finding.exemption.source, finding.exemption.owner) == ("exceptions[1]", "new-team")


def test_an_expired_exception_s_alert_names_it_and_its_owner() -> None:
    finding = judged(exception(expires="2026-11-01"))

    alert = build_alert(finding, Policy())

    assert alert.document["status"] == "DRIFT"
    assert alert.document["exception"]["expired"] is True
    assert (
        "Exception expired: exceptions[0] (owner data-platform@example.com; reason: vendor "
        "uploads with SSE-C until the migration) ended on 2026-11-01" in alert.email
    )


TAG = "encryption-monitor:exempt"


@pytest.mark.parametrize(
    ("companions", "status", "expired", "problem"),
    [
        ({}, Status.EXEMPT, False, None),
        ({f"{TAG}-until": "2026-12-31", f"{TAG}-owner": "ml-team"}, Status.EXEMPT, False, None),
        ({f"{TAG}-until": TODAY.isoformat()}, Status.EXEMPT, False, None),
        ({f"{TAG}-until": "2026-11-28", f"{TAG}-owner": "ml-team"}, Status.DRIFT, True, None),
        # a date that is not one cannot be trusted to end in the future: it alerts, saying why
        ({f"{TAG}-until": "end of Q1"}, Status.DRIFT, True, "not a date"),
    ],
    ids=["no-companions", "until-later", "until-today", "until-passed", "until-not-a-date"],
)
def test_the_exempt_tag_s_companions_end_the_exemption(
    companions: dict[str, str], status: Status, expired: bool, problem: str | None
) -> None:
    reader = Reader(tags={TAG: "true", f"{TAG}-reason": "migration", **companions})

    finding = judged(reader=reader)

    assert finding.status is status
    assert finding.exemption is not None
    assert (finding.exemption.source, finding.exemption.expired) == (f"tag {TAG}", expired)
    assert finding.exemption.reason == "migration"
    if problem:
        assert problem in str(finding.exemption.problem)
        assert problem in build_alert(finding, Policy()).email


def test_an_untagged_bucket_carries_no_exception() -> None:
    finding = judged(reader=Reader(tags={f"{TAG}-until": "2027-01-01"}))

    assert (finding.status, finding.exemption) == (Status.DRIFT, None)


def test_a_compliant_bucket_is_not_judged_against_exceptions() -> None:
    compliant = Reader(EncryptionRule("aws:kms", f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/k", True,
                                      ("SSE-C",)))  # fmt: skip

    finding = judged(exception(), reader=compliant, requireBucketKey=False)

    assert (finding.status, finding.exemption) == (Status.COMPLIANT, None)


def run(findings: list[Finding], policy: Policy) -> SweepRun:
    statuses = Counter(finding.status for finding in findings)
    return SweepRun(
        account=ACCOUNT,
        trigger=SWEEP.to_dict(),
        started_at="2026-11-29T06:00:00Z",
        finished_at="2026-11-29T06:00:09Z",
        counts=summary(statuses),
        violation_counts={},
        entries=digest_candidates(findings, policy, 100),
    )


def test_the_digest_lists_exceptions_ending_soon_and_ended_with_their_buckets() -> None:
    policy = Policy.from_dict(
        {
            "exceptions": [
                exception(buckets=["legacy-*"], expires="2026-12-05", owner="data-platform"),
                exception(buckets=["old-*"], expires="2026-11-20", owner="archive-team"),
                exception(buckets=["later-*"], expires="2027-06-30"),
                exception(buckets=["gone-*"], expires="2026-12-01", owner="nobody-now"),
            ]
        }
    )
    reader = Reader()
    findings = [
        assess(BucketRef(name, ACCOUNT, "eu-west-1"), SWEEP, policy, reader, today=TODAY)
        for name in ("legacy-a", "legacy-b", "old-logs", "later-x", "plain")
    ]

    digest = build_digest(run(findings, policy), policy)
    lists = digest.document["exceptions"]

    assert lists["expiringWithinDays"] == 14
    expiring = {group["source"]: group for group in lists["expiring"]}
    assert set(expiring) == {"exceptions[0]", "exceptions[3]"}
    assert [b["bucket"] for b in expiring["exceptions[0]"]["buckets"]] == ["legacy-a", "legacy-b"]
    assert expiring["exceptions[3]"]["buckets"] == []  # covers nothing now, still to be removed
    [ended] = lists["expired"]
    assert (ended["source"], ended["owner"]) == ("exceptions[1]", "archive-team")
    assert [b["bucket"] for b in ended["buckets"]] == ["old-logs"]
    # the exempt buckets are not listed as findings; the ended exception's bucket is
    assert {entry["bucket"] for entry in digest.document["findings"]} == {"old-logs", "plain"}
    assert has_exceptions_to_report(digest.document)
    assert "Exceptions ending within 14 days:" in digest.email
    assert "exceptions[0]  2026-12-05  owner data-platform" in digest.email
    assert "Exceptions that have ended" in digest.email


def test_a_digest_without_ending_exceptions_has_none_to_report() -> None:
    policy = Policy.from_dict({"exceptions": [exception(expires="2027-06-30")]})
    findings = [assess(LEGACY, SWEEP, policy, Reader(), today=TODAY)]

    digest = build_digest(run(findings, policy), policy)

    assert digest.document["exceptions"]["expiring"] == []
    assert not has_exceptions_to_report(digest.document)


def test_the_exception_is_in_the_report_s_csv_and_in_security_hub() -> None:
    finding = judged(exception(expires="2026-11-01"))
    document = build_alert(finding, Policy()).document

    row = next(csv.DictReader(io.StringIO(csv_text([document]))))
    asff = asff_finding(
        document, importer_account=ACCOUNT, importer_region="eu-west-1", now="2026-11-29T06:00:00Z"
    )

    assert "exception" in CSV_COLUMNS
    assert (row["exception"], row["exception_owner"], row["exception_expires"]) == (
        "exceptions[0] (expired)",
        "data-platform@example.com",
        "2026-11-01",
    )
    fields = asff["ProductFields"]
    assert fields["s3-encryption-drift-monitor/exception"] == "exceptions[0]"
    assert fields["s3-encryption-drift-monitor/exceptionExpired"] == "true"
    assert fields["s3-encryption-drift-monitor/exceptionOwner"] == "data-platform@example.com"
    # ProductFields values are NonEmptyString: nothing empty is sent
    assert all(value.strip() for value in fields.values())
