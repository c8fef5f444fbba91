"""The sweep function's handler from the source tree, on moto server: metrics, logs, digest."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from functions.drift_monitor.settings import ConfigurationError, load_sweep_settings
from infra.monitor import FUNCTION_CODE, SWEEP_HANDLER
from local.demo_account import DemoBucket, populate
from local.emulator import ACCOUNT, Emulator, moto_server
from local.function import LocalFunction


class Account:
    """A moto server of its own (the sweep lists every bucket), a topic and its subscriber."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        session = boto3.Session(region_name=emulator.region)
        self.sns = session.client("sns", endpoint_url=emulator.endpoint)
        self.sqs = session.client("sqs", endpoint_url=emulator.endpoint)
        self.topic_arn = self.sns.create_topic(Name="alerts")["TopicArn"]
        self.subscriber = self.sqs.create_queue(QueueName="subscriber")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.subscriber, AttributeNames=["QueueArn"])
        self.sns.subscribe(
            TopicArn=self.topic_arn, Protocol="sqs", Endpoint=arn["Attributes"]["QueueArn"]
        )

    def start(self, timeout_seconds: int = 900, **environment: str) -> LocalFunction:
        function = LocalFunction(
            FUNCTION_CODE,
            SWEEP_HANDLER,
            {
                **self.emulator.environment(),
                "ALERT_TOPIC_ARN": self.topic_arn,
                "POWERTOOLS_TRACE_DISABLED": "true",
                **environment,
            },
            function_arn=f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:sweep",
            timeout_seconds=timeout_seconds,
        )
        assert function.init_error is None, function.init_error
        return function

    def digests(self) -> list[dict[str, Any]]:
        messages = self.sqs.receive_message(
            QueueUrl=self.subscriber, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        ).get("Messages", [])
        return [json.loads(message["Body"]) for message in messages]


@pytest.fixture
def account() -> Iterator[Account]:
    with moto_server() as emulator:
        yield Account(emulator)


SCHEDULED = {"id": str(uuid.uuid4()), "time": "2026-11-26T06:00:00Z", "detail": {}}
MIXED = (
    DemoBucket("ledger", algorithm="aws:kms"),
    DemoBucket("assets", algorithm="AES256"),
    DemoBucket("cache", algorithm="AES256", tags={"encryption-monitor:exempt": "true"}),
)


def logged(function: LocalFunction, message: str) -> list[dict[str, Any]]:
    return [record for record in function.log_records() if record.get("message") == message]


def test_a_sweep_counts_logs_and_sends_one_digest(account: Account) -> None:
    populate(account.emulator, MIXED)
    function = account.start()

    invocation = function.invoke(SCHEDULED)

    assert invocation.ok, invocation.error
    (digest,) = account.digests()
    document = json.loads(digest["Message"])
    assert [entry["bucket"] for entry in document["findings"]] == ["assets"]
    assert document["trigger"]["eventId"] == SCHEDULED["id"]
    assert document["account"] == ACCOUNT  # from the function's ARN, no STS call
    assert function.metrics() == {
        "SweptBuckets": 3,
        "CompliantBuckets": 1,
        "Drifts": 1,
        "Unverifiable": 0,
        "ExemptBuckets": 1,
        "VanishedBuckets": 0,
    }
    # compliant buckets are counted, not logged one by one
    assert sorted(r["bucket"] for r in logged(function, "Bucket evaluated")) == ["assets", "cache"]
    (finished,) = logged(function, "Sweep finished")
    assert finished["complete"] is True
    assert finished["digest_message_id"] == invocation.response["digest"]


def test_a_sweep_that_runs_out_of_time_says_how_far_it_got(account: Account) -> None:
    # Given a function left with less time than the sweep keeps back to finish
    populate(account.emulator, MIXED)
    function = account.start(timeout_seconds=60)

    # When the sweep runs
    invocation = function.invoke(SCHEDULED)

    # Then it stops, logs an error and a metric naming how far it got, and still sends a digest
    assert invocation.ok, invocation.error
    assert invocation.response["complete"] is False
    (error,) = logged(function, "Sweep ran out of time: buckets after the last one started were "
                                "not evaluated")  # fmt: skip
    assert error["level"] == "ERROR"
    assert error["evaluated"] == 0
    assert function.metrics()["IncompleteSweeps"] == 1
    (digest,) = account.digests()
    assert json.loads(digest["Message"])["run"]["complete"] is False
    assert "(incomplete)" in digest["Subject"]


def test_a_vanished_bucket_is_counted_not_reported(account: Account) -> None:
    populate(account.emulator, (DemoBucket("ledger", algorithm="aws:kms"),))
    function = account.start()
    # moto has no race to lose: delete the bucket between listing and reading
    reader = sys.modules["drift_monitor.sweep_handler"].READER
    original = reader.read_encryption

    def delete_then_read(bucket: Any) -> Any:
        reader.client(bucket.region).delete_bucket(Bucket=bucket.name)
        return original(bucket)

    reader.read_encryption = delete_then_read

    invocation = function.invoke(SCHEDULED)

    assert invocation.ok, invocation.error
    assert invocation.response["summary"]["vanished"] == 1
    assert account.digests() == []


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({}, "environment variable ALERT_TOPIC_ARN is not set"),
        ({"ALERT_TOPIC_ARN": "t", "SWEEP_CONCURRENCY": "many"}, "SWEEP_CONCURRENCY must be"),
        ({"ALERT_TOPIC_ARN": "t", "SWEEP_CONCURRENCY": "65"}, "SWEEP_CONCURRENCY must be"),
        ({"ALERT_TOPIC_ARN": "t", "DIGEST_WHEN_COMPLIANT": "yes"}, "DIGEST_WHEN_COMPLIANT must"),
        ({"ALERT_TOPIC_ARN": "t", "ENCRYPTION_POLICY": "{"}, "ENCRYPTION_POLICY is invalid"),
    ],
)
def test_sweep_settings_name_the_bad_variable(environment: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_sweep_settings(environment)


def test_sweep_settings_defaults() -> None:
    settings = load_sweep_settings({"ALERT_TOPIC_ARN": "t"})

    assert (settings.concurrency, settings.digest_when_compliant) == (16, False)
    assert settings.policy_from_defaults is True
