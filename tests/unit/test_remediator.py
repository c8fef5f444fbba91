"""The remediator's decisions, with stand-ins for S3 and the hourly counter (the end-to-end tests
run it against moto server)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from functions.drift_monitor.credentials import RoleRefused
from functions.drift_monitor.models import BucketKind, Finding
from functions.drift_monitor.policy import Policy
from functions.drift_monitor.remediation import Mode, Remediator
from tests.unit.test_lifecycle import COMPLIANT, DENIED, DRIFT, EXEMPT

NOW = datetime(2026, 11, 27, 12, 30, tzinfo=UTC)
KEY = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


class Writer:
    def __init__(self, error: str | None = None) -> None:
        self.error = error
        self.written: list[dict[str, Any]] = []

    def put_encryption(self, finding: Finding, configuration: dict[str, Any]) -> None:
        if self.error:
            raise ClientError(
                {"Error": {"Code": self.error, "Message": "no"}}, "PutBucketEncryption"
            )
        self.written.append(configuration)


class Limit:
    def __init__(self, left: int) -> None:
        self.left = left
        self.hours: list[str] = []

    def take(self, hour: str, limit: int) -> bool:
        self.hours.append(hour)
        self.left -= 1
        return self.left >= 0


def remediator(mode: Mode, writer: Writer, limit: Limit, policy: Policy | None = None,
               after: Finding = COMPLIANT) -> Remediator:  # fmt: skip
    return Remediator(
        mode,
        limit_per_hour=20,
        policy=policy or Policy.from_dict({"allowedKmsKeys": [KEY]}),
        writer=writer,
        limit=limit,
        reassess=lambda _: after,
    )


def test_apply_writes_the_fix_reads_again_and_reports_it_verified() -> None:
    writer, limit = Writer(), Limit(1)

    finding, done = remediator(Mode.APPLY, writer, limit).attempt(DRIFT, NOW)

    assert finding is COMPLIANT
    assert done is not None and (done.applied, done.verified) == (True, True)
    (written,) = writer.written
    assert written["Rules"][0]["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == KEY
    assert limit.hours == ["2026-11-27T12"]


def test_a_refused_write_is_reported_with_its_reason_and_not_retried() -> None:
    writer = Writer(error="AccessDenied")

    finding, done = remediator(Mode.APPLY, writer, Limit(5)).attempt(DRIFT, NOW)

    assert finding is DRIFT
    assert done is not None and done.applied is False
    assert "AccessDenied on s3:PutEncryptionConfiguration: an SCP" in (done.reason or "")


def test_a_refused_write_to_a_table_bucket_names_the_s3_tables_action() -> None:
    table = replace(DRIFT, bucket=replace(DRIFT.bucket, kind=BucketKind.TABLE))

    _, done = remediator(Mode.APPLY, Writer(error="AccessDeniedException"), Limit(5)).attempt(
        table, NOW
    )

    assert done is not None and done.applied is False
    assert "AccessDeniedException on s3tables:PutTableBucketEncryption: an SCP" in (
        done.reason or ""
    )


def test_a_failure_that_is_not_a_refusal_fails_the_invocation() -> None:
    with pytest.raises(ClientError, match="SlowDown"):
        remediator(Mode.APPLY, Writer(error="SlowDown"), Limit(5)).attempt(DRIFT, NOW)


def test_a_fix_that_still_drifts_is_applied_but_not_verified() -> None:
    _, done = remediator(Mode.APPLY, Writer(), Limit(1), after=DRIFT).attempt(DRIFT, NOW)

    assert done is not None and (done.applied, done.verified) == (True, False)
    assert done.reason == "applied, but read again it is DRIFT"


def test_no_key_the_policy_allows_means_nothing_is_applied() -> None:
    policy = Policy.from_dict({"allowedAlgorithms": ["aws:kms"], "requireCustomerManagedKey": True})
    writer = Writer()

    _, done = remediator(Mode.APPLY, writer, Limit(5), policy).attempt(DRIFT, NOW)

    assert writer.written == []
    assert done is not None and "a person must choose one" in (done.reason or "")


@pytest.mark.parametrize("finding", [COMPLIANT, EXEMPT, DENIED], ids=lambda f: f.status.value)
def test_only_a_drift_is_ever_touched(finding: Finding) -> None:
    writer = Writer()

    after, done = remediator(Mode.APPLY, writer, Limit(5)).attempt(finding, NOW)

    assert (after, done, writer.written) == (finding, None, [])


def test_dry_run_and_off_write_nothing() -> None:
    writer = Writer()

    _, dry = remediator(Mode.DRY_RUN, writer, Limit(5)).attempt(DRIFT, NOW)
    _, off = remediator(Mode.OFF, writer, Limit(5)).attempt(DRIFT, NOW)

    assert writer.written == [] and off is None
    assert dry is not None and dry.configuration is not None and dry.applied is False
    assert dry.reason == "dry-run: this configuration was not applied"


def test_a_member_role_that_cannot_be_assumed_is_reported_not_retried() -> None:
    class Refused(Writer):
        def put_encryption(self, finding: Finding, configuration: dict[str, Any]) -> None:
            raise RoleRefused("222233334444", "arn:aws:iam::222233334444:role/r", "AccessDenied")

    _, done = remediator(Mode.APPLY, Refused(), Limit(5)).attempt(DRIFT, NOW)

    assert done is not None and done.applied is False
    assert "222233334444" in (done.reason or "")
