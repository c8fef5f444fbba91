"""The scanner's verdict for CI: which exit code each mix of findings gives."""

from __future__ import annotations

import pytest

from functions.drift_monitor.models import BucketRef, Finding, Status, Trigger
from functions.drift_monitor.sweep import SweepResult, Tally
from scanner.cli import EXIT_COMPLIANT, EXIT_DRIFT, EXIT_ERROR, exit_code


def result_of(*statuses: Status) -> SweepResult:
    tally = Tally(keep=lambda finding: True)
    for index, status in enumerate(statuses):
        bucket = BucketRef(f"bucket-{index}", "123456789012", "eu-west-1")
        tally.add(Finding(bucket, status, None, (), Trigger(source="scan")))
    return SweepResult("123456789012", tally, complete=True)


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
