"""The doctor's and the canary's own rules, one module at a time (in-process AWS: moto's
mock_aws, botocore's Stubber); the end-to-end tests run them against a deployment."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from functions.drift_monitor.domain.models import BucketRef
from functions.drift_monitor.domain.policy import Policy
from scanner.canary import CANARY_PREFIX, refused_rule, run_canary
from scanner.doctor import (
    Check,
    Doctor,
    NotDeployed,
    Verdict,
    _period,
    exit_code,
    load_manifest,
    render_table,
)

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
BUCKET = BucketRef(f"{CANARY_PREFIX}x", "123456789012", "eu-west-1")


@pytest.mark.parametrize(
    ("verdicts", "code"),
    [
        ([Verdict.PASS, Verdict.SKIP, Verdict.WARN], 0),
        ([Verdict.PASS, Verdict.ERROR], 2),
        ([Verdict.ERROR, Verdict.FAIL], 1),  # a FAIL is known; what could not be checked is not
    ],
)
def test_exit_codes(verdicts: list[Verdict], code: int) -> None:
    assert exit_code([Check("x", verdict, "-", "") for verdict in verdicts]) == code


@pytest.mark.parametrize(
    ("schedule", "period"),
    [
        ("rate(1 day)", timedelta(days=1)),
        ("rate(6 hours)", timedelta(hours=6)),
        ("cron(0 6 * * ? *)", timedelta(days=1)),  # counted as daily
    ],
)
def test_the_sweep_period(schedule: str, period: timedelta) -> None:
    assert _period(schedule) == period


def test_the_table_puts_the_fix_under_what_is_not_a_pass() -> None:
    table = render_table(
        "S3EncryptionDriftMonitor",
        [
            Check("rules", Verdict.PASS, "a", "ENABLED", "never shown"),
            Check("trail", Verdict.FAIL, "us-east-1", "no trail covers it", "createTrail=true"),
        ],
    )

    lines = table.splitlines()
    assert "PASS   rules  a: ENABLED" in lines
    assert "FAIL   trail  us-east-1: no trail covers it" in lines
    assert "              fix: createTrail=true" in lines
    assert "never shown" not in table
    assert lines[-1] == "1 PASS, 1 FAIL"


MANIFEST: dict[str, Any] = {
    "version": 1,
    "stack": "S3EncryptionDriftMonitor",
    "account": "123456789012",
    "region": "eu-west-1",
    "regions": ["eu-west-1"],
    "defaultBus": "default",
    "functions": {"event": "fn"},
    "rules": [],
    "topicArn": "arn:aws:sns:eu-west-1:123456789012:alerts",
    "queues": {},
    "stateTable": "states",
    "policy": {"allowedAlgorithms": ["aws:kms"]},
}


def test_what_does_not_apply_is_skipped_with_how_to_turn_it_on() -> None:
    doctor = Doctor(lambda service, region: None, MANIFEST, now=NOW)

    checks = [*doctor.sweep(), *doctor.stack_sets(), *doctor.reader_roles(), *doctor.heartbeat()]

    assert [c.verdict for c in checks] == [Verdict.SKIP] * 4
    assert checks[-1].fix == "deploy with -c heartbeat='rate(15 minutes)'"


def _stack(status: str, reason: str | None = None) -> dict[str, Any]:
    stack = {"StackName": "S3EncryptionDriftMonitor", "CreationTime": NOW, "StackStatus": status}
    return {"Stacks": [{**stack, **({"StackStatusReason": reason} if reason else {})}]}


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        ("UPDATE_COMPLETE", Verdict.PASS),
        ("UPDATE_IN_PROGRESS", Verdict.WARN),
        ("UPDATE_ROLLBACK_COMPLETE", Verdict.WARN),
        ("ROLLBACK_COMPLETE", Verdict.FAIL),
        ("DELETE_FAILED", Verdict.FAIL),
    ],
)
def test_a_stack_s_status_decides_its_verdict(status: str, verdict: Verdict) -> None:
    cloudformation = boto3.client("cloudformation", region_name="eu-west-1")
    with Stubber(cloudformation) as stubber:
        stubber.add_response("describe_stacks", _stack(status, "because"))
        (check,) = Doctor(lambda service, region: cloudformation, MANIFEST, now=NOW).stacks()

    assert check.verdict is verdict
    assert check.detail == f"{status} (because)"


def test_throttles_warn_and_errors_fail() -> None:
    cloudwatch = boto3.client("cloudwatch", region_name="eu-west-1")

    def day(total: float) -> dict[str, Any]:
        return {"Datapoints": [{"Timestamp": NOW, "Sum": total}] if total else []}

    with Stubber(cloudwatch) as stubber:
        for invocations, errors, throttles in ((10, 0, 2), (10, 1, 0)):
            for total in (invocations, errors, throttles):
                stubber.add_response("get_metric_statistics", day(total))
        doctor = Doctor(lambda service, region: cloudwatch, MANIFEST, now=NOW)
        (throttled,) = doctor.functions()
        (failing,) = doctor.functions()

    assert throttled.verdict is Verdict.WARN
    assert "2 throttles" in throttled.detail
    assert failing.verdict is Verdict.FAIL
    assert failing.detail == "10 invocations, 1 errors, 0 throttles in the last 24 hours"


@pytest.mark.parametrize(
    ("selectors", "logs"),
    [
        ({"EventSelectors": [{"ReadWriteType": "WriteOnly"}]}, True),
        ({"EventSelectors": [{"ReadWriteType": "ReadOnly"}]}, False),
        ({"EventSelectors": [{"ReadWriteType": "All", "IncludeManagementEvents": False}]}, False),
        ({"AdvancedEventSelectors": [{"FieldSelectors": [
            {"Field": "eventCategory", "Equals": ["Management"]}]}]}, True),
        ({"AdvancedEventSelectors": [{"FieldSelectors": [
            {"Field": "eventCategory", "Equals": ["Management"]},
            {"Field": "readOnly", "Equals": ["true"]}]}]}, False),
        ({"AdvancedEventSelectors": [{"FieldSelectors": [
            {"Field": "eventCategory", "Equals": ["Data"]}]}]}, False),
    ],
)  # fmt: skip
def test_a_trail_counts_only_if_it_logs_write_management_events(
    selectors: dict[str, Any], logs: bool
) -> None:
    cloudtrail = boto3.client("cloudtrail", region_name="eu-west-1")
    arn = "arn:aws:cloudtrail:eu-west-1:123456789012:trail/t"
    with Stubber(cloudtrail) as stubber:
        stubber.add_response("get_trail_status", {"IsLogging": True})
        stubber.add_response("get_event_selectors", {"TrailARN": arn, **selectors})
        doctor = Doctor(lambda service, region: cloudtrail, MANIFEST, now=NOW)

        assert doctor._logs_writes({"TrailARN": arn, "HomeRegion": "eu-west-1"}) is logs


@pytest.mark.parametrize(
    ("policy", "algorithm"),
    [
        ({"allowedAlgorithms": ["aws:kms"]}, "AES256"),
        ({"allowedAlgorithms": ["AES256", "aws:kms"], "requireBucketKey": True}, "aws:kms"),
        ({"allowedAlgorithms": ["AES256", "aws:kms"]}, None),  # nothing the canary can provoke
    ],
)
def test_the_canary_provokes_what_the_policy_refuses(
    policy: dict[str, Any], algorithm: str | None
) -> None:
    rule = refused_rule(Policy.from_dict(policy), BUCKET)

    assert (rule.algorithm if rule else None) == algorithm


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws():
        sns = boto3.client("sns", region_name="eu-west-1")
        topic = sns.create_topic(Name="alerts")["TopicArn"]
        clients = {
            service: boto3.client(service, region_name="eu-west-1")
            for service in ("s3", "sqs", "sns")
        }
        yield {"clients": clients, "manifest": {**MANIFEST, "topicArn": topic}}


def test_a_canary_that_hears_nothing_fails_and_leaves_nothing(aws: dict[str, Any]) -> None:
    clients = aws["clients"]
    ticks = iter(range(0, 10_000, 30))  # each look at the clock: 30 s later

    check = run_canary(
        lambda service, region: clients[service],
        aws["manifest"],
        timeout_seconds=60,
        clock=lambda: float(next(ticks)),
    )

    assert check.verdict is Verdict.FAIL
    assert check.detail == "no DRIFT alert within 60 s of PutBucketEncryption"
    _assert_nothing_left(clients)


def test_a_canary_interrupted_by_ctrl_c_still_cleans_up(aws: dict[str, Any]) -> None:
    clients = aws["clients"]

    def interrupted() -> float:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_canary(
            lambda service, region: clients[service],
            aws["manifest"],
            timeout_seconds=60,
            clock=interrupted,
        )

    _assert_nothing_left(clients)


def _assert_nothing_left(clients: dict[str, Any]) -> None:
    assert clients["s3"].list_buckets()["Buckets"] == []
    assert not clients["sqs"].list_queues().get("QueueUrls")
    assert clients["sns"].list_subscriptions()["Subscriptions"] == []


def test_the_manifest_of_another_version_is_refused() -> None:
    ssm = boto3.client("ssm", region_name="eu-west-1")
    with Stubber(ssm) as stubber:
        stubber.add_response(
            "get_parameter",
            {"Parameter": {"Name": "n", "Value": json.dumps({"version": 99}), "Type": "String"}},
        )
        with pytest.raises(NotDeployed, match="holds manifest version 99"):
            load_manifest(lambda service, region: ssm, "S3EncryptionDriftMonitor", "eu-west-1")


def test_a_delegated_administrator_s_own_account_needs_no_stack_set_instance() -> None:
    # Given a monitor in a member account (a delegated administrator): the StackSets leave its
    # own account out (AccountFilterType DIFFERENCE), and never reach the management account
    organizations = boto3.client("organizations", region_name="eu-west-1")
    with Stubber(organizations) as stubber:
        stubber.add_response(
            "describe_organization", {"Organization": {"MasterAccountId": "999999999999"}}
        )
        stubber.add_response(
            "list_accounts",
            {
                "Accounts": [
                    {"Id": account, "Status": "ACTIVE"}
                    for account in ("999999999999", "123456789012", "222222222222")
                ]
                + [{"Id": "333333333333", "Status": "SUSPENDED"}]
            },
        )
        doctor = Doctor(lambda service, region: organizations, MANIFEST, now=NOW)

        expected = doctor._member_accounts({"accounts": []})

    # Then only the other active members are expected to have instances
    assert expected == {"222222222222"}
