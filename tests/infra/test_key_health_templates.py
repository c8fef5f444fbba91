"""§15's key health in the templates: KMS events routed everywhere, the key index, the key queue."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from tests.infra.conftest import synthesize
from tests.infra.test_monitor import _event_function, _one, _statements
from tests.infra.test_topologies import ORGANIZATION, REGIONS, stacks, template_of

KEY_CHECKS = {"policy": {"keyChecks": True}}
KEY_EVENTS = (
    "DisableKey",
    "EnableKey",
    "ScheduleKeyDeletion",
    "CancelKeyDeletion",
    "PutKeyPolicy",
    "DeleteImportedKeyMaterial",
)


@pytest.fixture(scope="module")
def organization_with_key_checks() -> dict[str, cdk.Stack]:
    return stacks(**ORGANIZATION, **KEY_CHECKS, stackSetCallAs="DELEGATED_ADMIN")


def _patterns(template: Template) -> list[dict[str, Any]]:
    return [
        rule["Properties"]["EventPattern"]
        for rule in template.find_resources("AWS::Events::Rule").values()
        if "EventPattern" in rule["Properties"]
    ]


def _routes_key_events(pattern: dict[str, Any]) -> bool:
    return (
        "aws.kms" in pattern["source"]
        and "kms.amazonaws.com" in pattern["detail"]["eventSource"]
        and set(KEY_EVENTS) <= set(pattern["detail"]["eventName"])
        and pattern["detail"]["errorCode"] == [{"exists": False}]
    )


def test_without_key_checks_no_kms_event_is_routed_and_no_key_index_exists(
    template: Template,
) -> None:
    assert not any("aws.kms" in json.dumps(pattern) for pattern in _patterns(template))
    _, table = _one(template, "AWS::DynamoDB::Table", "MonitorLifecycleStateTable")
    indexes = [index["IndexName"] for index in table["Properties"]["GlobalSecondaryIndexes"]]
    assert indexes == ["open"]
    _, function = _event_function(template)
    assert "KEY_QUEUE_URL" not in function["Properties"]["Environment"]["Variables"]


def test_key_events_reach_the_monitor_from_every_account_and_region(
    organization_with_key_checks: dict[str, cdk.Stack],
) -> None:
    found = organization_with_key_checks
    # The home stack's own rules (default bus and central bus), each regional forwarder, the
    # member forwarder template (every account x region) and the management account's stacks
    paths = [
        "S3EncryptionDriftMonitor",
        *(f"S3EncryptionDriftMonitor-{region}" for region in REGIONS.split(",")[1:]),
        "MemberTemplates/Forwarder",
        *(f"ManagementAccount/Forwarder-{region}" for region in REGIONS.split(",")),
    ]
    for path in paths:
        patterns = _patterns(template_of(found[path]))
        assert any(_routes_key_events(pattern) for pattern in patterns), path
    home = _patterns(template_of(found["S3EncryptionDriftMonitor"]))
    # the S3 part is unchanged: S3's sources by prefix, KMS's exactly (aws.kms)
    assert all({"prefix": "aws.s3"} in pattern["source"] for pattern in home if "source" in pattern)


def test_the_key_index_and_the_key_queue_exist_with_least_privilege() -> None:
    template = synthesize(**KEY_CHECKS)

    _, table = _one(template, "AWS::DynamoDB::Table", "MonitorLifecycleStateTable")
    (keys,) = [
        index
        for index in table["Properties"]["GlobalSecondaryIndexes"]
        if index["IndexName"] == "keys"
    ]
    assert keys["KeySchema"] == [
        {"AttributeName": "keyArn", "KeyType": "HASH"},
        {"AttributeName": "bucket", "KeyType": "RANGE"},
    ]
    assert sorted(keys["Projection"]["NonKeyAttributes"]) == ["account", "kind", "name", "region"]
    # The event function queries that index only, and sends to the key queue only
    statements = {s.get("Sid"): s for s in _statements(template, "MonitorFunction")}
    query = statements["FindBucketsByKey"]
    assert query["Action"] == "dynamodb:Query"
    assert json.dumps(query["Resource"]).endswith('"/index/keys"]]}')
    queue_id, queue = _one(template, "AWS::SQS::Queue", "MonitorLifecycleKeyEventQueue")
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    send = statements["QueueKeyEventReevaluations"]
    assert (send["Action"], send["Resource"]) == (
        "sqs:SendMessage",
        {"Fn::GetAtt": [queue_id, "Arn"]},
    )
    _, function = _event_function(template)
    assert function["Properties"]["Environment"]["Variables"]["KEY_QUEUE_URL"] == {"Ref": queue_id}
    # The queue feeds the event function one message (up to 25 buckets) at a time
    (mapping,) = [
        m
        for m in template.find_resources("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    ]
    assert mapping["Properties"]["BatchSize"] == 1
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # Its dead letters raise an alarm
    _one(template, "AWS::CloudWatch::Alarm", "MonitorKeyEventDeadLetterQueueAlarm")
