"""§14's heartbeat in the templates: where it beats, what its role may do, who watches it."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Template

from tests.infra.conftest import synthesize
from tests.infra.test_monitor import _event_function, _one, _statements
from tests.infra.test_topologies import ORGANIZATION, REGIONS, stacks, template_of

HEARTBEAT = {"heartbeat": "rate(15 minutes)"}
HEARTBEAT_BUCKET = {
    "Fn::Join": [
        "",
        ["s3-encryption-monitor-hb-", {"Ref": "AWS::AccountId"}, "-", {"Ref": "AWS::Region"}],
    ]
}


def _assert_heartbeat_source(template: Template, rate: str = "rate(15 minutes)") -> None:
    """One bucket named for its account and region, a schedule putting its encryption through
    a universal target, and a role allowed only that write on that bucket."""
    bucket_id, bucket = _one(template, "AWS::S3::Bucket", "Heartbeat")
    assert bucket["Properties"]["BucketName"] == HEARTBEAT_BUCKET
    _, schedule = _one(template, "AWS::Scheduler::Schedule", "Heartbeat")
    properties = schedule["Properties"]
    assert properties["ScheduleExpression"] == rate
    assert properties["State"] == "ENABLED"
    target = properties["Target"]
    assert target["Arn"] == {
        "Fn::Join": [
            "",
            ["arn:", {"Ref": "AWS::Partition"}, ":scheduler:::aws-sdk:s3:putBucketEncryption"],
        ]
    }
    request = json.loads(_joined(target["Input"], {bucket_id: "BUCKET"}))
    assert request["Bucket"] == "BUCKET"
    (rule,) = request["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    (statement,) = _statements(template, "HeartbeatRole")
    assert statement["Action"] == "s3:PutEncryptionConfiguration"
    assert statement["Resource"] == {"Fn::GetAtt": [bucket_id, "Arn"]}
    _, role = _one(template, "AWS::IAM::Role", "HeartbeatRole")
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}


def _joined(value: Any, refs: dict[str, str]) -> str:
    """A Fn::Join of literals and Refs, with each Ref replaced by ``refs``."""
    if isinstance(value, str):
        return value
    separator, parts = value["Fn::Join"]
    return str(separator).join(
        part if isinstance(part, str) else refs[part["Ref"]] for part in parts
    )


def test_the_heartbeat_is_off_by_default(template: Template) -> None:
    template.resource_count_is("AWS::Scheduler::Schedule", 0)
    _, function = _event_function(template)
    assert "HEARTBEAT_MINUTES" not in function["Properties"]["Environment"]["Variables"]
    assert "dynamodb:Query" not in json.dumps(_statements(template, "MonitorFunction"))


def test_the_heartbeat_beats_in_the_home_region_and_is_watched_at_its_rate() -> None:
    template = synthesize(heartbeat="rate(2 hours)")

    _assert_heartbeat_source(template, "rate(2 hours)")
    # The watchdog: the event function at the same rate, told the event's time
    _, watchdog = _one(template, "AWS::Events::Rule", "MonitorHeartbeatWatchdogRule")
    assert watchdog["Properties"]["ScheduleExpression"] == "rate(2 hours)"
    (target,) = watchdog["Properties"]["Targets"]
    assert target["InputTransformer"]["InputPathsMap"] == {"time": "$.time"}
    assert json.loads(target["InputTransformer"]["InputTemplate"].replace("<time>", '"T"')) == {
        "watchdog": "heartbeat",
        "time": "T",
    }
    # Both readers of the heartbeats' item know the interval and may read it, nothing more
    _, function = _event_function(template)
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["HEARTBEAT_MINUTES"] == "120"
    assert variables["HEARTBEAT_REGIONS"] == {"Ref": "AWS::Region"}
    _, worker = _one(template, "AWS::Lambda::Function", "SweepWorker")
    assert worker["Properties"]["Environment"]["Variables"]["HEARTBEAT_MINUTES"] == "120"
    table_id, _ = _one(template, "AWS::DynamoDB::Table", "MonitorLifecycleStateTable")
    index = {"Fn::Join": ["", [{"Fn::GetAtt": [table_id, "Arn"]}, "/index/open"]]}
    (read,) = [
        s for s in _statements(template, "MonitorFunction") if s.get("Sid") == "ReadHeartbeats"
    ]
    assert (read["Action"], read["Resource"]) == ("dynamodb:Query", index)
    (sweep,) = [
        s for s in _statements(template, "SweepWorker") if s.get("Sid") == "RecordBucketStates"
    ]
    assert index in sweep["Resource"]  # the sweep's own query of the index reads them too


def test_every_watched_region_and_member_account_beats() -> None:
    # Given the organization topology in three regions, the heartbeat on
    found = stacks(**ORGANIZATION, **HEARTBEAT)

    # Then the home stack, each regional forwarder stack and the member forwarder template
    # (deployed per account and region by its StackSet) each have their heartbeat
    for path in (
        "S3EncryptionDriftMonitor",
        "S3EncryptionDriftMonitor-us-east-1",
        "S3EncryptionDriftMonitor-us-west-2",
        "MemberTemplates/Forwarder",
    ):
        _assert_heartbeat_source(template_of(found[path]))
    # And the monitor expects beats from every watched region
    _, function = _event_function(template_of(found["S3EncryptionDriftMonitor"]))
    assert function["Properties"]["Environment"]["Variables"]["HEARTBEAT_REGIONS"] == REGIONS
    # The reader role's template has none: one heartbeat per account and region, not two
    template_of(found["MemberTemplates/Reader"]).resource_count_is("AWS::Scheduler::Schedule", 0)


def test_the_management_account_stacks_beat_too() -> None:
    found = stacks(**ORGANIZATION, **HEARTBEAT, stackSetCallAs="DELEGATED_ADMIN")

    for region in REGIONS.split(","):
        _assert_heartbeat_source(template_of(found[f"ManagementAccount/Forwarder-{region}"]))
