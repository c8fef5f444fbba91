"""The remediator's decisions, with stand-ins for S3 and the hourly counter (the end-to-end tests
run it against moto server)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from functions.drift_monitor.aws.remediation import Mode, Remediator
from functions.drift_monitor.domain.errors import RoleRefused
from functions.drift_monitor.domain.evaluation import evaluate
from functions.drift_monitor.domain.models import (
    BucketKind,
    BucketRef,
    EncryptionRule,
    Finding,
    ObservedEncryption,
)
from functions.drift_monitor.domain.policy import Policy
from tests.unit.test_lifecycle import COMPLIANT, DENIED, DRIFT, EXEMPT

NOW = datetime(2026, 11, 27, 12, 30, tzinfo=UTC)
ACCOUNT = "123456789012"
KEY = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


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
    sse_s3 = Policy.from_dict({"allowedAlgorithms": ["AES256"]})
    writer = Writer(error="AccessDeniedException")

    _, done = remediator(Mode.APPLY, writer, Limit(5), sse_s3).attempt(table, NOW)

    assert done is not None and done.applied is False
    assert "AccessDeniedException on s3tables:PutTableBucketEncryption: an SCP" in (
        done.reason or ""
    )


def test_a_table_bucket_is_not_switched_to_sse_kms_automatically() -> None:
    # S3 Tables' maintenance principal must be allowed on the key first (S3 User Guide).
    table = replace(DRIFT, bucket=replace(DRIFT.bucket, kind=BucketKind.TABLE))
    writer = Writer()

    _, done = remediator(Mode.APPLY, writer, Limit(5)).attempt(table, NOW)

    assert writer.written == []
    assert done is not None and done.applied is False and done.configuration is not None
    assert "maintenance.s3tables.amazonaws.com" in (done.reason or "")


@pytest.mark.parametrize(
    ("code", "reported"),
    [
        ("SlowDown", "SlowDown on s3:PutEncryptionConfiguration: no"),
        ("InvalidArgument", "InvalidArgument on s3:PutEncryptionConfiguration: no"),
        ("NotImplemented", "NotImplemented on s3:PutEncryptionConfiguration: no"),
    ],
)
def test_any_failed_write_is_reported_so_the_alert_still_goes_out(code: str, reported: str) -> None:
    finding, done = remediator(Mode.APPLY, Writer(error=code), Limit(5)).attempt(DRIFT, NOW)

    assert finding is DRIFT
    assert done is not None and (done.applied, done.reason) == (False, reported)


def test_a_write_that_never_reached_s3_is_reported_too() -> None:
    class Unreachable(Writer):
        def put_encryption(self, finding: Finding, configuration: dict[str, Any]) -> None:
            raise EndpointConnectionError(endpoint_url="https://s3.eu-west-1.amazonaws.com")

    _, done = remediator(Mode.APPLY, Unreachable(), Limit(5)).attempt(DRIFT, NOW)

    assert done is not None and (done.reason or "").startswith(
        "EndpointConnectionError on s3:PutEncryptionConfiguration"
    )


def test_a_directory_bucket_s_key_is_never_changed_in_place() -> None:
    # "you can't override the customer managed key" (S3 User Guide, SSE-KMS in directory buckets)
    directory = BucketRef("ml--euw1-az1--x-s3", ACCOUNT, "eu-west-1", BucketKind.DIRECTORY)
    other = KEY.replace("1234abcd", "ffffffff")
    observed = ObservedEncryption(directory, (EncryptionRule("aws:kms", other, True),))
    policy = Policy.from_dict({"allowedKmsKeys": [KEY]})
    finding = evaluate(observed, policy, DRIFT.trigger)
    writer = Writer()

    _, done = remediator(Mode.APPLY, writer, Limit(5), policy).attempt(finding, NOW)

    assert writer.written == []
    assert done is not None and "keeps its KMS key for its lifetime" in (done.reason or "")


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
