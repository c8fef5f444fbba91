"""The scanner's verdict for CI: which exit code each mix of findings, or each error, gives."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import PartialCredentialsError, ReadTimeoutError

from functions.drift_monitor.aws.credentials import AccountAccess
from functions.drift_monitor.domain.errors import ListingDenied
from functions.drift_monitor.domain.models import BucketRef, Finding, Status, Trigger
from functions.drift_monitor.domain.policy import Policy
from functions.drift_monitor.sweep.engine import SweepResult, Tally
from scanner.cli import (
    EXIT_COMPLIANT,
    EXIT_DRIFT,
    EXIT_ERROR,
    ScanError,
    _scan_account,
    _scan_errors,
    exit_code,
)
from scanner.formats import AccountScan
from scanner.outputs import TerminalTable


def result_of(*statuses: Status) -> list[AccountScan]:
    tally = Tally(keep=lambda finding: True)
    for index, status in enumerate(statuses):
        bucket = BucketRef(f"bucket-{index}", "123456789012", "eu-west-1")
        tally.add(Finding(bucket, status, None, (), Trigger(source="scan")))
    return [AccountScan("123456789012", SweepResult("123456789012", tally, complete=True))]


@pytest.mark.parametrize(
    ("statuses", "code"),
    [
        ((), EXIT_COMPLIANT),
        ((Status.COMPLIANT, Status.EXEMPT, Status.VANISHED), EXIT_COMPLIANT),
        ((Status.COMPLIANT, Status.DRIFT), EXIT_DRIFT),
        ((Status.DRIFT, Status.UNVERIFIABLE), EXIT_DRIFT),  # drift is the stronger news
        ((Status.COMPLIANT, Status.UNVERIFIABLE), EXIT_ERROR),  # not all could be verified
    ],
    ids=["empty-account", "compliant-exempt-vanished", "drift", "drift-and-unverifiable",
         "unverifiable-only"],
)  # fmt: skip
def test_exit_code(statuses: tuple[Status, ...], code: int) -> None:
    assert exit_code(result_of(*statuses)) == code
    assert (EXIT_COMPLIANT, EXIT_DRIFT, EXIT_ERROR) == (0, 1, 2)


def test_an_account_that_could_not_be_entered_exits_2_unless_another_drifts() -> None:
    unreachable = AccountScan("222222222222", None, "AccessDenied on sts:AssumeRole")

    assert exit_code([*result_of(Status.COMPLIANT), unreachable]) == EXIT_ERROR
    assert exit_code([*result_of(Status.DRIFT), unreachable]) == EXIT_DRIFT


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (ReadTimeoutError(endpoint_url="https://s3.eu-west-1.amazonaws.com"), "Read timeout"),
        (PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"), "Partial"),
    ],
)
def test_other_sdk_errors_stop_the_scan_with_exit_2(error: Exception, message: str) -> None:
    with pytest.raises(ScanError) as stopped, _scan_errors(None):
        raise error

    assert stopped.value.exit_code == EXIT_ERROR
    assert message in stopped.value.message


def test_a_member_account_that_may_not_list_is_reported_naming_the_role() -> None:
    access = AccountAccess(
        boto3.Session(region_name="eu-west-1"), role_name="Reader", home_account="111111111111"
    )

    class NoListing:
        def __init__(self) -> None:
            self.access = access

        def list_buckets(self, account: str | None = None) -> Any:
            raise ListingDenied("AccessDenied on s3:ListAllMyBuckets")

        def list_directory_buckets(self, account: str | None, region: str) -> Any:
            raise ListingDenied("AccessDenied on s3express:ListAllMyDirectoryBuckets")

        def list_table_buckets(self, account: str | None, region: str) -> Any:
            raise ListingDenied("AccessDenied on s3tables:ListTableBuckets")

        def list_vector_buckets(self, account: str | None, region: str) -> Any:
            raise ListingDenied("AccessDenied on s3vectors:ListVectorBuckets")

    scanned = _scan_account(
        "222222222222",
        NoListing(),  # type: ignore[arg-type]
        policy=Policy(),
        output=lambda _: None,
        regions=None,
        kind_regions=["eu-west-1"],
        concurrency=1,
        advance=lambda _: None,
        endpoint_url=None,
    )

    assert scanned.result is None
    assert scanned.error == (
        "AccessDenied on s3:ListAllMyBuckets; grant s3:ListAllMyBuckets to "
        "arn:aws:iam::222222222222:role/Reader"
    )
    assert exit_code([scanned]) == EXIT_ERROR


def test_an_account_scanned_in_part_says_so_and_fails_the_scan(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given an account whose buckets were scanned but whose table buckets could not be listed
    ledger = Finding(
        BucketRef("ledger", "111111111111", "eu-west-1"),
        Status.COMPLIANT,
        None,
        (),
        Trigger(source="scan"),
    )
    tally = Tally(keep=lambda _: False)
    tally.add(ledger)
    partial = AccountScan(
        "111111111111",
        SweepResult("111111111111", tally, complete=True),
        "table buckets in eu-west-1 could not be listed: AccessDeniedException",
    )

    table = TerminalTable(None)
    table.add(ledger)
    table.finish([partial])
    printed = capsys.readouterr().out

    # Then its buckets count, the gap is named, and the scan does not pass as compliant
    assert "Account 111111111111 was scanned only in part: table buckets in eu-west-1" in printed
    assert "1 buckets: 1 compliant" in printed
    assert "not scanned" not in printed
    assert exit_code([partial]) == EXIT_ERROR
