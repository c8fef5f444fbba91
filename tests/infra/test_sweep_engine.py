"""The sweep engine in the synthesized stack: schedule, starter, queue, worker, table, report."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Template

from functions.drift_monitor.domain.settings import DEFAULT_MAX_RECEIVES
from infra.sweep_engine import STARTER_HANDLER, WORKER_HANDLER, WORKER_TIMEOUT
from tests.infra.conftest import ALL_BUCKETS, BuildTemplate
from tests.infra.test_monitor import _actions, _event_function, _one, _ref_id, _statements


def _starter(template: Template) -> tuple[str, dict[str, Any]]:
    return _one(template, "AWS::Lambda::Function", "SweepStarterFunction")


def _worker(template: Template) -> tuple[str, dict[str, Any]]:
    return _one(template, "AWS::Lambda::Function", "SweepWorkerFunction")


def test_the_schedule_starts_a_run_daily_by_default(template: Template) -> None:
    _, rule = _one(template, "AWS::Events::Rule", "SweepSchedule")
    (target,) = rule["Properties"]["Targets"]
    starter_id, starter = _starter(template)

    assert rule["Properties"]["ScheduleExpression"] == "rate(1 day)"
    assert target["Arn"] == {"Fn::GetAtt": [starter_id, "Arn"]}
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 3600}
    assert "DeadLetterConfig" in target
    _, invoke_config = _one(template, "AWS::Lambda::EventInvokeConfig", "SweepStarterFunction")
    assert invoke_config["Properties"]["MaximumRetryAttempts"] == 1
    assert starter["Properties"]["Handler"] == STARTER_HANDLER
    variables = starter["Properties"]["Environment"]["Variables"]
    assert (variables["SWEEP_ACCOUNTS"], variables["SWEEP_ORGANIZATION"]) == ("", "false")


def test_the_worker_takes_one_item_at_a_time_from_the_work_queue(template: Template) -> None:
    worker_id, worker = _worker(template)
    (mapping,) = template.find_resources(
        "AWS::Lambda::EventSourceMapping", {"Properties": {"FunctionName": {"Ref": worker_id}}}
    ).values()
    queue_id = mapping["Properties"]["EventSourceArn"]["Fn::GetAtt"][0]
    queue = template.find_resources("AWS::SQS::Queue")[queue_id]["Properties"]

    assert mapping["Properties"]["FunctionName"] == {"Ref": worker_id}
    assert mapping["Properties"]["BatchSize"] == 1
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["Properties"]["ScalingConfig"]["MaximumConcurrency"] == 20
    properties = worker["Properties"]
    assert properties["Handler"] == WORKER_HANDLER
    assert properties["Timeout"] == WORKER_TIMEOUT.to_seconds() == 300
    # Lambda's advice for SQS sources: a visibility timeout of six times the function's
    assert queue["VisibilityTimeout"] == 6 * properties["Timeout"]
    assert queue["RedrivePolicy"]["maxReceiveCount"] == DEFAULT_MAX_RECEIVES
    variables = properties["Environment"]["Variables"]
    assert variables["WORK_MAX_RECEIVES"] == str(DEFAULT_MAX_RECEIVES)
    assert variables["SWEEP_CONCURRENCY"] == "16"
    assert variables["DIGEST_WHEN_COMPLIANT"] == "false"
    assert "MEMBER_ROLE_NAME" not in variables  # no organization: this account only
    _, event_function = _event_function(template)
    assert (
        variables["ENCRYPTION_POLICY"]
        == event_function["Properties"]["Environment"]["Variables"]["ENCRYPTION_POLICY"]
    )
    assert _ref_id(variables["WORK_QUEUE_URL"]) == queue_id


def test_the_run_table_is_on_demand_recoverable_encrypted_and_expires_items(
    template: Template,
) -> None:
    _, table = _one(template, "AWS::DynamoDB::Table", "SweepRuns")
    properties = table["Properties"]

    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"]["SSEEnabled"] is True
    assert properties["SSESpecification"]["KMSMasterKeyId"]["Fn::GetAtt"][0].startswith(
        "MonitorDataKey"
    )
    assert properties["TimeToLiveSpecification"] == {
        "AttributeName": "expiresAt",
        "Enabled": True,
    }


def test_the_report_bucket_is_private_encrypted_versioned_logged_and_expires(
    build_template: BuildTemplate,
) -> None:
    template = build_template(sweepReportRetentionDays=30)
    _, bucket = _one(template, "AWS::S3::Bucket", "SweepReports")
    properties = bucket["Properties"]

    (rule,) = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert rule["BucketKeyEnabled"] is True
    assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
    assert properties["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"] is True
    assert properties["LoggingConfiguration"]["LogFilePrefix"] == "reports/"
    (lifecycle,) = properties["LifecycleConfiguration"]["Rules"]
    assert lifecycle["ExpirationInDays"] == 30
    assert lifecycle["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    # the monitor's own buckets carry the exempt tag: the stack sets their encryption
    assert {"Key": "encryption-monitor:exempt", "Value": "true"} in properties["Tags"]


def test_the_worker_role_reads_buckets_writes_the_report_and_nothing_more(
    template: Template,
) -> None:
    statements = _statements(template, "SweepWorkerFunctionRole")

    assert _actions(statements) == [
        "dynamodb:GetItem",  # the run table
        "dynamodb:PutItem",
        "dynamodb:Query",
        "dynamodb:Query",  # the state table: its sparse index of open rows
        "dynamodb:UpdateItem",
        "dynamodb:UpdateItem",  # the state table: the rows whose verdict moved
        "kms:Decrypt",
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "kms:GenerateDataKey",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "s3:GetBucketLocation",
        "s3:GetBucketTagging",
        "s3:GetEncryptionConfiguration",
        "s3:GetObject",
        "s3:ListAllMyBuckets",
        "s3:ListBucket",
        "s3:PutObject",
        # §12: directory and table buckets, read and listed per region
        "s3express:GetEncryptionConfiguration",
        "s3express:ListAllMyDirectoryBuckets",
        "s3tables:GetTableBucket",
        "s3tables:GetTableBucketEncryption",
        "s3tables:ListTableBuckets",
        "s3vectors:GetIndex",
        "s3vectors:GetVectorBucket",
        "s3vectors:ListIndexes",
        "s3vectors:ListVectorBuckets",
        "sns:Publish",
        "sqs:ChangeMessageVisibility",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
        "sqs:ReceiveMessage",
        "sqs:SendMessage",
        "tag:GetResources",
        "xray:PutTelemetryRecords",
        "xray:PutTraceSegments",
    ]
    (reads,) = [s for s in statements if "s3:GetBucketLocation" in s["Action"]]
    assert reads["Resource"] == ALL_BUCKETS
    assert reads["Condition"] == {"StringEquals": {"s3:ResourceAccount": {"Ref": "AWS::AccountId"}}}
    (states,) = [s for s in statements if s.get("Sid") == "RecordBucketStates"]
    table, index = states["Resource"]
    assert index["Fn::Join"][1][-1] == "/index/open"
    assert index["Fn::Join"][1][0] == table
    (objects,) = [s for s in statements if s["Action"] == ["s3:GetObject", "s3:PutObject"]]
    assert objects["Resource"]["Fn::Join"][1][-1] == "/runs/*"


def test_the_starter_role_starts_runs_and_nothing_more(template: Template) -> None:
    assert _actions(_statements(template, "SweepStarterFunctionRole")) == [
        "dynamodb:PutItem",
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
        "sqs:SendMessage",
        "xray:PutTelemetryRecords",
        "xray:PutTraceSegments",
    ]


@pytest.mark.parametrize(
    ("schedule", "expression"),
    [("rate(6 hours)", "rate(6 hours)"), ("cron(0 6 * * ? *)", "cron(0 6 * * ? *)")],
)
def test_sweep_schedule_from_context(
    build_template: BuildTemplate, schedule: str, expression: str
) -> None:
    template = build_template(sweepSchedule=schedule, sweepDigestWhenCompliant=True)

    _, rule = _one(template, "AWS::Events::Rule", "SweepSchedule")
    assert rule["Properties"]["ScheduleExpression"] == expression
    _, worker = _worker(template)
    assert worker["Properties"]["Environment"]["Variables"]["DIGEST_WHEN_COMPLIANT"] == "true"


def test_sweep_off_removes_the_whole_engine(build_template: BuildTemplate) -> None:
    template = build_template(sweepSchedule="off")

    template.resource_count_is("AWS::Lambda::Function", 1)
    template.resource_count_is("AWS::Events::Rule", 2)  # changes, and creations after grace
    template.resource_count_is("AWS::IAM::Role", 1)
    template.resource_count_is("AWS::CloudWatch::Alarm", 4)
    template.resource_count_is("AWS::DynamoDB::Table", 1)  # the state table only
    template.resource_count_is("AWS::S3::Bucket", 0)
    template.resource_count_is("AWS::SQS::Queue", 4)
    assert "s3:ListAllMyBuckets" not in _actions(_statements(template))


@pytest.mark.parametrize("security_hub", [False, True])
def test_the_worker_imports_into_security_hub_only_when_it_is_on(
    build_template: BuildTemplate, security_hub: bool
) -> None:
    template = build_template(securityHub=security_hub)
    _, worker = _worker(template)

    granted = [
        s
        for s in _statements(template, "SweepWorkerFunctionRole")
        if s["Action"] == "securityhub:BatchImportFindings"
    ]
    variables = worker["Properties"]["Environment"]["Variables"]
    assert len(granted) == int(security_hub)
    assert ("SECURITY_HUB_PRODUCT_ARN" in variables) is security_hub
    if security_hub:
        assert granted[0]["Resource"] == variables["SECURITY_HUB_PRODUCT_ARN"]
