"""The sweep over a whole account: every bucket assessed once, errors per bucket, bounded memory."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from botocore.stub import Stubber

from functions.drift_monitor.aws.accounts import management_account
from functions.drift_monitor.domain.errors import (
    BucketUnreadable,
    BucketVanished,
    ListingDenied,
    RoleRefused,
)
from functions.drift_monitor.domain.models import (
    BucketRef,
    Code,
    EncryptionRule,
    Finding,
    ListedBucket,
    ObservedEncryption,
    Status,
    Trigger,
)
from functions.drift_monitor.domain.policy import Policy
from functions.drift_monitor.sweep.engine import UNKNOWN_REGION, cannot_sweep, sweep

ACCOUNT = "123456789012"
TRIGGER = Trigger(source="sweep")
KMS = (EncryptionRule("aws:kms", f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/k", True, ("SSE-C",)),)
SSE_S3 = (EncryptionRule("AES256", blocked_encryption_types=("SSE-C",)),)


def client_error(code: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "GetBucketEncryption",
    )


class FakeAccount:
    """An in-memory account: what each bucket would answer, and what the sweep asked."""

    def __init__(self, buckets: dict[str, Any], regions: dict[str, str | None] | None = None):
        self.buckets = buckets  # name -> rules tuple, or an exception to raise
        self.regions = regions or {}
        self.tags: dict[str, dict[str, str]] = {}
        self.located: list[str] = []
        self.read: list[BucketRef] = []
        self.pulled = 0
        self.finished = 0
        self.max_outstanding = 0
        self._lock = threading.Lock()

    def list_buckets(self, account: str | None = None) -> Iterator[ListedBucket]:
        for name in sorted(self.buckets):
            with self._lock:
                self.pulled += 1
                self.max_outstanding = max(self.max_outstanding, self.pulled - self.finished)
            yield ListedBucket(name, self.regions.get(name, "eu-west-1"))

    def locate(self, bucket: BucketRef) -> str:
        self.located.append(bucket.name)
        answer = self.regions.get(f"{bucket.name}@location", "us-west-2")
        if isinstance(answer, Exception):
            raise answer
        return str(answer)

    def read_encryption(self, bucket: BucketRef) -> ObservedEncryption:
        with self._lock:
            self.read.append(bucket)
        try:
            answer = self.buckets[bucket.name]
            if isinstance(answer, Exception):
                raise answer
            return ObservedEncryption(bucket, answer)
        finally:
            with self._lock:
                self.finished += 1

    def read_tags(self, bucket: BucketRef) -> dict[str, str]:
        return self.tags.get(bucket.name, {})


def run(account: FakeAccount, policy: Policy | None = None, **options: Any) -> Any:
    options.setdefault("keep", lambda finding: True)
    return sweep(ACCOUNT, policy or Policy(), account, TRIGGER, **options)


def statuses(result: Any) -> dict[str, Status]:
    return {finding.bucket.name: finding.status for finding in result.tally.kept}


def test_every_bucket_is_assessed_once_with_the_account_and_its_region() -> None:
    account = FakeAccount({f"bucket-{i:03d}": KMS if i % 2 else SSE_S3 for i in range(100)})

    result = run(account, concurrency=8)

    assert sorted(bucket.name for bucket in account.read) == sorted(account.buckets)
    assert {(bucket.account, bucket.region) for bucket in account.read} == {(ACCOUNT, "eu-west-1")}
    assert result.complete is True
    assert result.tally.evaluated == 100
    assert result.tally.statuses == {Status.COMPLIANT: 50, Status.DRIFT: 50}
    assert result.tally.violations == {Code.ALGORITHM_NOT_ALLOWED: 50}


def test_keep_decides_which_findings_stay_in_memory_but_all_are_counted() -> None:
    account = FakeAccount({"good": KMS, "bad": SSE_S3, "gone": BucketVanished("gone")})
    seen: list[Finding] = []

    result = run(account, keep=lambda finding: finding.alerts, on_finding=seen.append)

    assert [finding.bucket.name for finding in result.tally.kept] == ["bad"]
    assert sorted(finding.bucket.name for finding in seen) == ["bad", "gone", "good"]
    assert result.tally.statuses[Status.VANISHED] == 1


def test_a_listing_without_regions_asks_get_bucket_location_once_per_bucket() -> None:
    account = FakeAccount({"old-listing": KMS, "new-listing": KMS}, regions={"old-listing": None})

    run(account)

    assert account.located == ["old-listing"]
    regions = {bucket.name: bucket.region for bucket in account.read}
    assert regions == {"old-listing": "us-west-2", "new-listing": "eu-west-1"}


@pytest.mark.parametrize(
    ("answer", "status", "code"),
    [
        (BucketUnreadable(BucketRef("b", ACCOUNT, "eu-west-1"), "s3:Get", "AccessDenied"),
         Status.UNVERIFIABLE, Code.ACCESS_DENIED),
        (client_error("SlowDown", 503), Status.UNVERIFIABLE, Code.READ_FAILED),
        (client_error("InternalError", 500), Status.UNVERIFIABLE, Code.READ_FAILED),
        (ReadTimeoutError(endpoint_url="https://s3"), Status.UNVERIFIABLE, Code.READ_FAILED),
    ],
    ids=["access-denied", "throttled", "server-error", "timeout"],
)  # fmt: skip
def test_a_failing_bucket_becomes_unverifiable_and_the_others_still_run(
    answer: Exception, status: Status, code: Code
) -> None:
    account = FakeAccount({"aaa-before": KMS, "broken": answer, "zzz-after": SSE_S3})

    result = run(account)

    assert statuses(result) == {
        "aaa-before": Status.COMPLIANT,
        "broken": status,
        "zzz-after": Status.DRIFT,
    }
    (broken,) = [f for f in result.tally.kept if f.bucket.name == "broken"]
    assert [violation.code for violation in broken.violations] == [code]
    assert broken.observed is None


def test_read_failures_say_what_kept_failing() -> None:
    account = FakeAccount({"broken": client_error("SlowDown", 503)})

    (finding,) = run(account).tally.kept

    assert "SlowDown" in finding.violations[0].message
    assert finding.severity is not None and finding.severity.value == "LOW"


def test_a_denied_location_is_unverifiable_unless_the_name_is_exempt() -> None:
    denied = BucketUnreadable(
        BucketRef("x", ACCOUNT, UNKNOWN_REGION), "s3:GetBucketLocation", "403"
    )
    account = FakeAccount(
        {"secret-data": KMS, "sandbox-1": KMS},
        regions={
            "secret-data": None,
            "secret-data@location": denied,
            "sandbox-1": None,
            "sandbox-1@location": denied,
        },
    )

    result = run(account, Policy(exempt_buckets=("sandbox-*",)))

    assert statuses(result) == {"secret-data": Status.UNVERIFIABLE, "sandbox-1": Status.EXEMPT}
    (secret,) = [f for f in result.tally.kept if f.bucket.name == "secret-data"]
    assert secret.bucket.region == UNKNOWN_REGION
    assert "s3:GetBucketLocation" in secret.violations[0].message
    assert account.read == []  # nothing is read from a bucket whose region is unknown


def test_a_bucket_deleted_before_its_location_is_read_is_counted_vanished() -> None:
    account = FakeAccount(
        {"gone": KMS, "kept": KMS},
        regions={"gone": None, "gone@location": BucketVanished("s3://gone no longer exists")},
    )

    result = run(account, keep=lambda finding: finding.alerts)

    assert result.tally.statuses == {Status.VANISHED: 1, Status.COMPLIANT: 1}
    assert [bucket.name for bucket in account.read] == ["kept"]


def test_a_throttled_read_of_an_exempt_name_is_exempt() -> None:
    account = FakeAccount({"sandbox-2": client_error("SlowDown", 503)})

    result = run(account, Policy(exempt_buckets=("sandbox-*",)))

    assert statuses(result) == {"sandbox-2": Status.EXEMPT}


def test_a_tagged_bucket_is_exempt_and_counted_not_reported() -> None:
    account = FakeAccount({"build-cache": SSE_S3})
    account.tags["build-cache"] = {"encryption-monitor:exempt": "true"}

    result = run(account, keep=lambda finding: finding.alerts)

    assert result.tally.kept == []
    assert result.tally.statuses == {Status.EXEMPT: 1}
    assert result.tally.alerting == 0


def test_the_listing_is_consumed_a_window_at_a_time() -> None:
    # Given an account far larger than the window
    account = FakeAccount({f"bucket-{i:05d}": KMS for i in range(3000)})

    # When it is swept with 4 threads
    result = run(account, concurrency=4, keep=lambda finding: finding.alerts)

    # Then never more than the window (2 x concurrency, plus the one being handed out) was
    # pulled from the listing ahead of what had finished
    assert result.tally.evaluated == 3000
    assert account.max_outstanding <= 2 * 4 + 1


def test_out_of_time_stops_handing_out_buckets_and_says_where() -> None:
    account = FakeAccount({f"bucket-{i:03d}": KMS for i in range(50)})
    checks = iter(range(1000))

    # The clock is first asked before the second bucket: the first always goes out.
    result = run(account, concurrency=2, out_of_time=lambda: next(checks) >= 20)

    assert result.complete is False
    assert result.tally.evaluated == 21
    assert result.stopped_after == "bucket-020"


def test_a_sweep_out_of_time_from_the_start_still_evaluates_one_bucket() -> None:
    # So a page resumed again and again still gets further each time.
    account = FakeAccount({f"bucket-{i:03d}": KMS for i in range(5)})

    result = run(account, concurrency=2, out_of_time=lambda: True)

    assert (result.complete, result.tally.evaluated, result.stopped_after) == (
        False,
        1,
        "bucket-000",
    )


def test_listing_denied_stops_the_sweep() -> None:
    class Denied(FakeAccount):
        def list_buckets(self, account: str | None = None) -> Iterator[ListedBucket]:
            raise ListingDenied("AccessDenied on s3:ListAllMyBuckets")

    with pytest.raises(ListingDenied, match="ListAllMyBuckets"):
        run(Denied({}))


REFUSED = RoleRefused("111100002222", "arn:aws:iam::111100002222:role/Reader", "AccessDenied")


@pytest.mark.parametrize(
    ("refused", "role_arn", "management", "says"),
    [
        (REFUSED, "arn:aws:iam::111100002222:role/Reader", False, "member StackSet reached"),
        # StackSets never deploy to the management account (CloudFormation API,
        # DeploymentTargets): under a delegated administrator its stacks are deployed by hand
        (REFUSED, "arn:aws:iam::111100002222:role/Reader", True, "ManagementAccount stacks"),
        (ListingDenied("AccessDenied on s3:ListAllMyBuckets"), None, False, "worker's role"),
        (
            ListingDenied("AccessDenied on s3:ListAllMyBuckets"),
            "arn:aws:iam::111100002222:role/Reader",
            False,
            "role/Reader needs s3:ListAllMyBuckets",
        ),
    ],
    ids=["member role refused", "management account", "own listing", "member listing"],
)
def test_why_an_account_could_not_be_swept(
    refused: Exception, role_arn: str | None, management: bool, says: str
) -> None:
    assert says in cannot_sweep(refused, role_arn=role_arn, management_account=management)


def test_the_management_account_is_named_by_organizations_or_unknown() -> None:
    client = boto3.Session().client("organizations", region_name="us-east-1")
    stubber = Stubber(client)
    stubber.add_response(
        "describe_organization",
        {"Organization": {"Id": "o-exampleorg1", "MasterAccountId": "111100002222"}},
    )
    stubber.add_client_error("describe_organization", "AccessDeniedException", http_status_code=403)
    stubber.add_client_error("describe_organization", "TooManyRequestsException")

    with stubber:
        assert management_account(client) == "111100002222"
        assert management_account(client) is None
        with pytest.raises(ClientError, match="TooManyRequests"):
            management_account(client)
