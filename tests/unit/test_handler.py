"""The Lambda handler, imported fresh per test with its environment, against moto server."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from infra.functions import FUNCTION_CODE
from infra.monitor import HANDLER
from local.emulator import ACCOUNT, Emulator, create_state_table
from local.function import LocalFunction

LoadEvent = Callable[[str], dict[str, Any]]


@dataclass
class Account:
    emulator: Emulator
    s3: Any
    sns: Any
    sqs: Any
    topic_arn: str
    failure_queue_url: str
    subscriber_url: str
    state_table: str

    def start(self, **overrides: str | None) -> LocalFunction:
        environment = {
            **self.emulator.environment(),
            "ALERT_TOPIC_ARN": self.topic_arn,
            "FAILURE_QUEUE_URL": self.failure_queue_url,
            "STATE_TABLE_NAME": self.state_table,
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_SERVICE_NAME": "s3-encryption-drift-monitor",
            "POWERTOOLS_METRICS_NAMESPACE": "S3EncryptionDriftMonitor",
        }
        for name, value in overrides.items():
            if value is None:
                environment.pop(name, None)
            else:
                environment[name] = value
        return LocalFunction(
            FUNCTION_CODE,
            HANDLER,
            environment,
            function_arn=f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:monitor",
            timeout_seconds=60,
        )

    def drain(self, url: str) -> list[dict[str, Any]]:
        messages = self.sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        ).get("Messages", [])
        for message in messages:
            self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return messages

    def alerts(self) -> list[dict[str, Any]]:
        return [json.loads(m["Body"]) for m in self.drain(self.subscriber_url)]


@pytest.fixture
def account(emulator: Emulator) -> Iterator[Account]:
    session = boto3.Session(region_name=emulator.region)
    clients = {
        name: session.client(name, endpoint_url=emulator.endpoint) for name in ("s3", "sns", "sqs")
    }
    suffix = uuid.uuid4().hex[:8]
    topic_arn = clients["sns"].create_topic(Name=f"alerts-{suffix}")["TopicArn"]
    failure_url = clients["sqs"].create_queue(QueueName=f"failures-{suffix}")["QueueUrl"]
    subscriber_url = clients["sqs"].create_queue(QueueName=f"subscriber-{suffix}")["QueueUrl"]
    subscriber_arn = clients["sqs"].get_queue_attributes(
        QueueUrl=subscriber_url, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    clients["sns"].subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=subscriber_arn)
    create_state_table(emulator, f"states-{suffix}")
    yield Account(
        emulator,
        clients["s3"],
        clients["sns"],
        clients["sqs"],
        topic_arn,
        failure_url,
        subscriber_url,
        f"states-{suffix}",
    )


def _bucket(account: Account, event: dict[str, Any], algorithm: str | None) -> None:
    name = event["detail"]["requestParameters"]["bucketName"] = f"bucket-{uuid.uuid4().hex[:12]}"
    account.s3.create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    if algorithm:
        # SSE-C blocked, as S3 sets up new buckets since April 2026.
        rule = {
            "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": algorithm},
            "BlockedEncryptionTypes": {"EncryptionType": ["SSE-C"]},
        }
        account.s3.put_bucket_encryption(
            Bucket=name, ServerSideEncryptionConfiguration={"Rules": [rule]}
        )


def test_drift_publishes_one_alert(account: Account, event_fixture: LoadEvent) -> None:
    event = event_fixture("put-bucket-encryption.json")
    _bucket(account, event, "AES256")
    function = account.start()

    invocation = function.invoke(event)

    assert invocation.ok, invocation.error
    assert invocation.response["status"] == "DRIFT"
    (notification,) = account.alerts()
    document = json.loads(notification["Message"])
    assert document["bucket"] == event["detail"]["requestParameters"]["bucketName"]
    assert [v["code"] for v in document["violations"]] == ["ALGORITHM_NOT_ALLOWED"]
    assert notification["Subject"].startswith("[DRIFT] s3://bucket-")
    assert notification["MessageAttributes"]["severity"]["Value"] == "MEDIUM"
    assert function.metrics() == {"Evaluations": 1, "Drifts": 1, "AlertsSent": 1}


def test_compliant_bucket_publishes_nothing(account: Account, event_fixture: LoadEvent) -> None:
    event = event_fixture("put-bucket-encryption.json")
    _bucket(account, event, "aws:kms")
    function = account.start()

    invocation = function.invoke(event)

    assert invocation.ok, invocation.error
    assert invocation.response["status"] == "COMPLIANT"
    assert account.alerts() == []
    assert function.metrics() == {"Evaluations": 1, "CompliantBuckets": 1}


def test_a_vanished_bucket_is_logged_and_counted(
    account: Account, event_fixture: LoadEvent
) -> None:
    event = event_fixture("put-bucket-encryption.json")
    event["detail"]["requestParameters"]["bucketName"] = f"gone-{uuid.uuid4().hex[:8]}"
    function = account.start()

    invocation = function.invoke(event)

    assert invocation.response["status"] == "VANISHED"
    assert account.alerts() == []
    assert function.metrics()["VanishedBuckets"] == 1
    evaluated = [r for r in function.log_records() if r.get("message") == "Bucket evaluated"]
    assert evaluated[0]["status"] == "VANISHED"


def test_a_failed_call_is_ignored_and_counted(account: Account, event_fixture: LoadEvent) -> None:
    function = account.start()

    invocation = function.invoke(event_fixture("put-bucket-encryption-access-denied.json"))

    assert invocation.response["status"] == "IGNORED"
    assert account.alerts() == []
    assert account.drain(account.failure_queue_url) == []
    assert function.metrics() == {"IgnoredFailedCalls": 1}


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ("not an event", "is a str, not a JSON object"),
        ({"source": "aws.s3"}, "no 'detail' object"),
        ({"detail": {"requestParameters": {"bucketName": "ok-bucket"}}}, "account"),
        ({"detail": {"requestParameters": {"bucketName": "bad/name"}}}, "not a bucket name"),
        ({"reassess": {"buckets": [["b", "123456789012"]]}}, "not a key re-evaluation message"),
        (
            {"detail": {"eventSource": "kms.amazonaws.com", "eventName": "DisableKey"}},
            "DisableKey event names no key",
        ),
    ],
    ids=["string", "no detail", "no account", "bad bucket name", "bad reassess", "keyless"],
)
def test_invalid_events_are_kept_as_they_arrived(account: Account, event: Any, reason: str) -> None:
    function = account.start()

    invocation = function.invoke(event)

    assert invocation.ok, "an event that can never succeed must not be retried"
    assert invocation.response["status"] == "INVALID"
    (kept,) = account.drain(account.failure_queue_url)
    assert json.loads(kept["Body"]) == event
    assert reason in kept["MessageAttributes"]["reason"]["StringValue"]
    assert kept["MessageAttributes"]["kind"]["StringValue"] == "INVALID_EVENT"
    errors = [r for r in function.log_records() if r.get("level") == "ERROR"]
    assert reason in errors[0]["reason"]
    assert function.metrics() == {"InvalidEvents": 1}
    assert account.alerts() == []


def test_if_the_failure_queue_is_unreachable_the_invocation_fails(account: Account) -> None:
    function = account.start(
        FAILURE_QUEUE_URL=f"{account.emulator.endpoint}/123456789012/no-such-queue"
    )

    invocation = function.invoke({"detail": {}})

    assert not invocation.ok
    assert "NonExistentQueue" in (invocation.error or "")


def test_if_publishing_fails_the_invocation_fails(
    account: Account, event_fixture: LoadEvent
) -> None:
    event = event_fixture("put-bucket-encryption.json")
    _bucket(account, event, None)
    function = account.start(ALERT_TOPIC_ARN="arn:aws:sns:eu-west-1:123456789012:no-such-topic")

    invocation = function.invoke(event)

    assert not invocation.ok
    assert "NotFound" in (invocation.error or "")


def test_an_invalid_policy_fails_every_invocation_naming_the_variable_and_field(
    account: Account, event_fixture: LoadEvent
) -> None:
    function = account.start(ENCRYPTION_POLICY='{"allowedAlgorithms": ["DES"]}')

    invocation = function.invoke(event_fixture("put-bucket-encryption.json"))

    assert not invocation.ok
    assert "ENCRYPTION_POLICY" in (invocation.error or "")
    assert "allowedAlgorithms[0]" in (invocation.error or "")


@pytest.mark.parametrize("variable", ["ALERT_TOPIC_ARN", "FAILURE_QUEUE_URL", "STATE_TABLE_NAME"])
def test_a_missing_variable_fails_naming_it(account: Account, variable: str) -> None:
    function = account.start(**{variable: None})

    assert variable in (function.init_error or "")


def test_without_a_policy_the_defaults_apply_with_a_warning(
    account: Account, event_fixture: LoadEvent
) -> None:
    event = event_fixture("put-bucket-encryption.json")
    _bucket(account, event, "aws:kms:dsse")
    function = account.start(ENCRYPTION_POLICY=None)

    invocation = function.invoke(event)

    assert invocation.response["status"] == "COMPLIANT"
    warnings = [r["message"] for r in function.log_records() if r.get("level") == "WARNING"]
    assert "ENCRYPTION_POLICY is not set: the default policy applies" in warnings


def test_a_policy_in_the_environment_is_enforced(
    account: Account, event_fixture: LoadEvent
) -> None:
    event = event_fixture("put-bucket-encryption.json")
    _bucket(account, event, "AES256")
    function = account.start(ENCRYPTION_POLICY='{"allowedAlgorithms": ["AES256", "aws:kms"]}')

    assert function.invoke(event).response["status"] == "COMPLIANT"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("SECURITY_HUB_PRODUCT_ARN", "arn:aws:securityhub:eu-west-1:123456789012:hub/default",
         "SECURITY_HUB_PRODUCT_ARN 'arn:aws:securityhub:eu-west-1:123456789012:hub/default' is "
         "not a Security Hub product ARN"),
        ("OUTPUT_EVENT_BUS", "not a bus!", "OUTPUT_EVENT_BUS 'not a bus!' is not an event bus"),
    ],
)  # fmt: skip
def test_a_bad_output_setting_fails_the_cold_start_naming_it(
    account: Account, variable: str, value: str, message: str
) -> None:
    assert message in (account.start(**{variable: value}).init_error or "")


def _sqs_record(body: str, message_id: str) -> dict[str, Any]:
    return {"messageId": message_id, "eventSource": "aws:sqs", "body": body, "attributes": {}}


def test_creations_from_the_grace_queue_are_evaluated_and_only_failures_return(
    account: Account, event_fixture: LoadEvent
) -> None:
    # Given a batch from the grace queue: a drifting bucket, a body that is not JSON, and an
    # event whose evaluation fails (its bucket cannot be read: a throttled S3 would do the same)
    drifting = event_fixture("create-bucket-v1.03.json")
    drifting["detail"]["awsRegion"] = "eu-west-1"
    _bucket(account, drifting, "AES256")
    function = account.start()
    broken = account.start(STATE_TABLE_NAME="no-such-table")
    batch = {
        "Records": [
            _sqs_record(json.dumps(drifting), "m-1"),
            _sqs_record("{not json", "m-2"),
        ]
    }

    # When the function takes the batch
    invocation = function.invoke(batch)
    failing = broken.invoke({"Records": [_sqs_record(json.dumps(drifting), "m-3")]})

    # Then the creation alerts, the unreadable body is kept, and only the failure goes back
    assert invocation.response == {"batchItemFailures": []}
    (notification,) = account.alerts()
    assert json.loads(notification["Message"])["trigger"]["eventName"] == "CreateBucket"
    (kept,) = account.drain(account.failure_queue_url)
    assert kept["MessageAttributes"]["reason"]["StringValue"] == (
        "delay queue message body is not JSON"
    )
    assert failing.response == {"batchItemFailures": [{"itemIdentifier": "m-3"}]}


def test_outputs_receive_every_alert_once(account: Account, event_fixture: LoadEvent) -> None:
    # Given Security Hub on and an event bus output to a bus with a subscriber
    emulator = account.emulator
    events = emulator.client("events")
    bus = events.create_event_bus(Name=f"alerts-{uuid.uuid4().hex[:6]}")["EventBusArn"]
    queue = account.sqs.create_queue(QueueName=f"bus-{uuid.uuid4().hex[:6]}")["QueueUrl"]
    queue_arn = account.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    events.put_rule(
        Name="all", EventBusName=bus, EventPattern='{"source": ["s3-encryption-monitor"]}'
    )
    events.put_targets(Rule="all", EventBusName=bus, Targets=[{"Id": "q", "Arn": queue_arn}])
    event = event_fixture("put-bucket-encryption.json")
    _bucket(account, event, "AES256")
    function = account.start(
        SECURITY_HUB_PRODUCT_ARN=f"arn:aws:securityhub:eu-west-1:{ACCOUNT}:product/{ACCOUNT}/default",
        OUTPUT_EVENT_BUS=bus,
    )

    # When the same drift is reported twice
    first, second = function.invoke(event), function.invoke(event)

    # Then one alert, one finding, one event
    assert (first.response["action"], second.response["action"]) == ("ALERT", "SUPPRESS")
    assert len(account.alerts()) == 1
    bucket = event["detail"]["requestParameters"]["bucketName"]
    findings = emulator.client("securityhub").get_findings()["Findings"]
    (finding,) = [f for f in findings if f["Id"].endswith(f"/{bucket}")]
    assert finding["Compliance"]["Status"] == "FAILED"
    (delivered,) = account.drain(queue)
    assert json.loads(delivered["Body"])["detail"]["bucket"] == bucket


def test_remediation_apply_fixes_the_bucket_and_sends_one_resolved_notice(
    account: Account, event_fixture: LoadEvent
) -> None:
    event = event_fixture("put-bucket-encryption.json")
    _bucket(account, event, "AES256")
    function = account.start(REMEDIATION="apply", REMEDIATION_LIMIT_PER_HOUR="1")

    first = function.invoke(event)

    assert (first.response["status"], first.response["action"]) == ("COMPLIANT", "RESOLVE")
    (notice,) = account.alerts()
    document = json.loads(notice["Message"])
    assert document["resolution"]["remediatedAutomatically"] is True
    bucket = event["detail"]["requestParameters"]["bucketName"]
    rules = account.s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
    assert rules["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert function.metrics()["Remediated"] == 1

    # the hour's one remediation is spent: the next drift is alerted, not fixed
    second_event = event_fixture("put-bucket-encryption.json")
    _bucket(account, second_event, "AES256")
    second = function.invoke(second_event)
    assert second.response["action"] == "ALERT"
    (alert,) = account.alerts()
    assert (
        "remediationLimitPerHour (1) reached"
        in json.loads(alert["Message"])["autoRemediation"]["reason"]
    )


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("REMEDIATION", "auto", "REMEDIATION must be one of off, dry-run, apply"),
        ("REMEDIATION_LIMIT_PER_HOUR", "0", "REMEDIATION_LIMIT_PER_HOUR must be a whole number"),
    ],
)
def test_a_bad_remediation_setting_fails_the_cold_start(
    account: Account, variable: str, value: str, message: str
) -> None:
    assert message in (account.start(**{variable: value}).init_error or "")


def test_s3_control_tagging_of_something_else_than_a_bucket_is_ignored(
    account: Account, event_fixture: LoadEvent
) -> None:
    event = event_fixture("tag-resource.json")
    event["detail"]["requestParameters"]["resourceArn"] = (
        f"arn:aws:s3:eu-west-1:{ACCOUNT}:accesspoint/reports"
    )
    function = account.start()

    invocation = function.invoke(event)

    assert invocation.ok, invocation.error
    assert invocation.response["status"] == "IGNORED"
    assert "accesspoint/reports is not a bucket" in invocation.response["reason"]
    assert function.metrics() == {"IgnoredEvents": 1}
    assert account.drain(account.failure_queue_url) == []  # not an invalid event: nothing kept


HEARTBEAT = {"HEARTBEAT_MINUTES": "15", "HEARTBEAT_REGIONS": "eu-west-1"}


def _watchdog(at: datetime) -> dict[str, Any]:
    """What the watchdog rule sends (its input transformer: the scheduled event's time)."""
    return {"watchdog": "heartbeat", "time": at.strftime("%Y-%m-%dT%H:%M:%SZ")}


def test_a_heartbeat_is_recorded_without_reading_or_judging_the_bucket(
    account: Account, event_fixture: LoadEvent
) -> None:
    # Given the heartbeat on, and a heartbeat bucket's event (the bucket need not exist: no read)
    function = account.start(**HEARTBEAT)

    # When its event arrives
    invocation = function.invoke(event_fixture("heartbeat-put-bucket-encryption.json"))

    # Then the beat is recorded for its account and region, and nobody is told anything
    assert invocation.ok, invocation.error
    assert invocation.response["status"] == "HEARTBEAT"
    assert invocation.response["action"] == "NONE"
    assert account.alerts() == []
    assert function.metrics() == {"Heartbeats": 1}
    row = _heartbeat_row(account, f"{ACCOUNT}/eu-west-1")
    event_time = datetime(2026, 11, 20, 10, 30, 1, tzinfo=UTC)  # the event's eventTime
    assert row["lastBeat"] == {"N": str(int(event_time.timestamp() * 1000))}


def test_with_the_heartbeat_off_a_heartbeat_bucket_is_exempt_not_judged(
    account: Account, event_fixture: LoadEvent
) -> None:
    function = account.start()

    invocation = function.invoke(event_fixture("heartbeat-put-bucket-encryption.json"))

    assert invocation.ok, invocation.error
    assert invocation.response["status"] == "EXEMPT"
    assert account.alerts() == []


def test_a_silent_path_alerts_once_and_resolves_when_beats_return(
    account: Account, event_fixture: LoadEvent
) -> None:
    function = account.start(**HEARTBEAT)
    now = datetime.now(UTC)

    # Given the watchdog first expects this account's path now: nothing is silent yet
    first = function.invoke(_watchdog(now))
    assert first.ok, first.error
    assert first.response["silent"] == []

    # When two intervals (and a minute) pass without a beat
    late = function.invoke(_watchdog(now + timedelta(minutes=31)))
    again = function.invoke(_watchdog(now + timedelta(minutes=46)))

    # Then one EVENT_PATH_SILENT alert (HIGH) names the path, and the next run repeats nothing
    assert late.response["silent"] == [f"{ACCOUNT}/eu-west-1"]
    assert again.response["silent"] == [f"{ACCOUNT}/eu-west-1"]
    (alert,) = account.alerts()
    document = json.loads(alert["Message"])
    assert document["status"] == "UNVERIFIABLE"
    assert document["severity"] == "HIGH"
    assert [v["code"] for v in document["violations"]] == ["EVENT_PATH_SILENT"]
    assert (document["account"], document["region"]) == (ACCOUNT, "eu-west-1")
    assert "doctor --region eu-west-1" in document["violations"][0]["message"]
    assert function.metrics()["SilentEventPaths"] == 2  # 0 + 1 + 1

    # When the heartbeat's event comes through again
    beat = event_fixture("heartbeat-put-bucket-encryption.json")
    beat["detail"]["eventTime"] = (now + timedelta(minutes=50)).strftime("%Y-%m-%dT%H:%M:%SZ")
    back = function.invoke(beat)

    # Then one RESOLVED notice says the path is heard again, and the watchdog finds nothing
    assert back.response["action"] == "RESOLVE"
    (notice,) = account.alerts()
    resolved = json.loads(notice["Message"])
    assert resolved["status"] == "RESOLVED"
    assert resolved["resolution"]["previousViolations"] == ["EVENT_PATH_SILENT"]
    quiet = function.invoke(_watchdog(now + timedelta(minutes=60)))
    assert quiet.response["silent"] == []
    assert account.alerts() == []


def test_a_key_event_with_key_checks_off_is_ignored(
    account: Account, event_fixture: LoadEvent
) -> None:
    function = account.start()

    invocation = function.invoke(event_fixture("disable-key.json"))

    assert invocation.ok, invocation.error
    assert invocation.response == {"status": "IGNORED", "reason": "keyChecks is off"}
    assert account.alerts() == []


def test_the_watchdog_with_the_heartbeat_off_does_nothing(account: Account) -> None:
    function = account.start()

    invocation = function.invoke(_watchdog(datetime.now(UTC)))

    assert invocation.ok, invocation.error
    assert invocation.response == {"status": "IGNORED", "reason": "the heartbeat is off"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"HEARTBEAT_MINUTES": "5"}, "HEARTBEAT_MINUTES must be a whole number from 15 to 1440"),
        ({"HEARTBEAT_MINUTES": "2880"}, "HEARTBEAT_MINUTES must be a whole number from 15 to"),
        ({"HEARTBEAT_REGIONS": ""}, "HEARTBEAT_REGIONS must name the watched regions"),
    ],
)
def test_a_bad_heartbeat_setting_fails_the_cold_start_naming_it(
    account: Account, overrides: dict[str, str], message: str
) -> None:
    function = account.start(**{**HEARTBEAT, **overrides})

    assert message in (function.init_error or "")


def _heartbeat_row(account: Account, path: str) -> dict[str, Any]:
    dynamodb = boto3.client(
        "dynamodb", region_name=account.emulator.region, endpoint_url=account.emulator.endpoint
    )
    key = {"bucket": {"S": f"heartbeat#{path}"}}
    return dict(dynamodb.get_item(TableName=account.state_table, Key=key)["Item"])
