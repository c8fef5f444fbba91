"""The synthesized stack, checked resource by resource with aws_cdk.assertions."""

from __future__ import annotations

import json
from importlib.metadata import version
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from infra.forwarding import MONITORED_EVENTS
from infra.functions import POWERTOOLS_VERSION, powertools_layer_parameter
from tests.infra.conftest import (
    CREATIONS,
    IMMEDIATE,
    TABLE_BUCKET_CALLS,
    VECTOR_BUCKET_CALLS,
    BuildTemplate,
    s3_pattern,
)


def _only(template: Template, resource_type: str) -> tuple[str, dict[str, Any]]:
    (item,) = template.find_resources(resource_type).items()
    return item


def _one(template: Template, resource_type: str, logical_prefix: str) -> tuple[str, dict[str, Any]]:
    """The one resource of this type whose logical id starts with the prefix."""
    (item,) = [
        (logical_id, resource)
        for logical_id, resource in template.find_resources(resource_type).items()
        if logical_id.startswith(logical_prefix)
    ]
    return item


def _event_function(template: Template) -> tuple[str, dict[str, Any]]:
    return _one(template, "AWS::Lambda::Function", "MonitorFunction")


def _ref_id(value: dict[str, Any]) -> str:
    return str(value.get("Ref") or value["Fn::GetAtt"][0])


def test_rules_match_successful_s3_calls_creations_after_the_grace_period(
    template: Template,
) -> None:
    _, rule = _one(template, "AWS::Events::Rule", "MonitorS3EncryptionChangeRule")
    _, creations = _one(template, "AWS::Events::Rule", "MonitorNewBucketRule")
    queue_id, queue = _one(template, "AWS::SQS::Queue", "MonitorLifecycleNewBucketQueue")

    assert rule["Properties"]["EventPattern"] == s3_pattern(*IMMEDIATE)
    assert creations["Properties"]["EventPattern"] == s3_pattern(*CREATIONS)
    (target,) = creations["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400}
    assert queue["Properties"]["DelaySeconds"] == 300
    assert MONITORED_EVENTS == ("CreateBucket", "PutBucketEncryption", "DeleteBucketEncryption")


def test_without_grace_or_exempt_tag_one_rule_takes_creations_at_once(
    build_template: BuildTemplate,
) -> None:
    # A JSON string: jsii drops None values from a context dict.
    template = build_template(newBucketGraceSeconds=0, policy='{"exemptTag": null}')
    function_id, _ = _event_function(template)

    (rule,) = template.find_resources(
        "AWS::Events::Rule", {"Properties": {"EventPattern": Match.any_value()}}
    ).values()
    assert rule["Properties"]["EventPattern"] == s3_pattern(
        "CreateBucket",
        "PutBucketEncryption",
        "DeleteBucketEncryption",
        "DeleteBucket",
        *TABLE_BUCKET_CALLS,
        *VECTOR_BUCKET_CALLS,
    )
    assert not template.find_resources(
        "AWS::Lambda::EventSourceMapping", {"Properties": {"FunctionName": {"Ref": function_id}}}
    )
    assert not template.find_resources("AWS::SQS::Queue", {"Properties": {"DelaySeconds": 300}})


def test_rule_target_retries_then_keeps_undeliverable_events(template: Template) -> None:
    _, rule = _one(template, "AWS::Events::Rule", "MonitorS3EncryptionChangeRule")
    (target,) = rule["Properties"]["Targets"]
    function_id, _ = _event_function(template)

    assert target["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400}
    dead_letter_id = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
    assert template.find_resources("AWS::SQS::Queue")[dead_letter_id]
    template.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Action": "sqs:SendMessage",
                                "Principal": {"Service": "events.amazonaws.com"},
                                "Condition": {"ArnEquals": {"aws:SourceArn": Match.any_value()}},
                            }
                        )
                    ]
                )
            },
            "Queues": [{"Ref": dead_letter_id}],
        },
    )


def test_function_configuration(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Runtime": "python3.13",  # the Python the asset's bytecode is compiled by
            "Architectures": ["arm64"],
            "Handler": "drift_monitor.handlers.event.lambda_handler",
            "TracingConfig": {"Mode": "Active"},
            "LoggingConfig": {"LogFormat": "JSON", "LogGroup": Match.any_value()},
            "Timeout": 60,
        },
    )
    template.has_resource_properties("AWS::Logs::LogGroup", {"RetentionInDays": 365})


def test_function_environment_carries_the_validated_policy(build_template: BuildTemplate) -> None:
    policy = {
        "allowedAlgorithms": ["aws:kms"],
        "requireBucketKey": True,
        "exemptBuckets": ["tmp-*"],
    }
    template = build_template(policy=policy)
    _, function = _event_function(template)
    variables = function["Properties"]["Environment"]["Variables"]
    topic_id, _ = _only(template, "AWS::SNS::Topic")

    assert _ref_id(variables["ALERT_TOPIC_ARN"]) == topic_id
    assert json.loads(variables["ENCRYPTION_POLICY"]) == {
        "allowedAlgorithms": ["aws:kms"],
        "allowedKmsKeys": [],
        "allowCrossAccountKeys": False,
        "requireCustomerManagedKey": False,
        "requireBucketKey": True,
        "requireSseCBlocked": True,
        "exemptBuckets": ["tmp-*"],
        "exemptTag": "encryption-monitor:exempt=true",
        "keyChecks": False,
        "allowOrganizationKeys": False,
        "exceptions": [],
    }
    assert variables["POWERTOOLS_SERVICE_NAME"] == "s3-encryption-drift-monitor"
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "S3EncryptionDriftMonitor"
    failure_queue = _ref_id(variables["FAILURE_QUEUE_URL"])
    _, invoke_config = _one(template, "AWS::Lambda::EventInvokeConfig", "MonitorFunction")
    on_failure = invoke_config["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]
    assert _ref_id(on_failure) == failure_queue


def test_async_invocation_retries_then_keeps_the_event(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {
            "MaximumRetryAttempts": 2,
            "MaximumEventAgeInSeconds": 21600,
            "Qualifier": "$LATEST",
            "DestinationConfig": {
                "OnFailure": {"Destination": {"Fn::GetAtt": [Match.any_value(), "Arn"]}}
            },
        },
    )


def test_powertools_layer_is_the_version_the_tests_run(template: Template) -> None:
    assert version("aws-lambda-powertools") == POWERTOOLS_VERSION
    parameters = template.to_json()["Parameters"]
    layer_parameters = [
        p for p in parameters.values() if "/aws/service/powertools/" in p.get("Default", "")
    ]

    assert layer_parameters == [
        {"Type": "AWS::SSM::Parameter::Value<String>", "Default": powertools_layer_parameter()}
    ]
    assert powertools_layer_parameter() == (
        f"/aws/service/powertools/python/arm64/python3.13/{POWERTOOLS_VERSION}"
    )


def test_powertools_layer_can_be_pinned_by_arn(build_template: BuildTemplate) -> None:
    arn = (
        "arn:aws:lambda:eu-west-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python314-arm64:40"
    )

    template = build_template(powertoolsLayerArn=arn)

    for function in template.find_resources("AWS::Lambda::Function").values():
        assert function["Properties"]["Layers"] == [arn]


def _statements(template: Template, role_prefix: str = "") -> list[dict[str, Any]]:
    """Every IAM statement, or only those of the roles whose logical id starts with the prefix."""
    roles = {
        logical_id
        for logical_id in template.find_resources("AWS::IAM::Role")
        if logical_id.startswith(role_prefix)
    }
    statements = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        if {_ref_id(role) for role in policy["Properties"]["Roles"]} & roles:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    for logical_id, role in template.find_resources("AWS::IAM::Role").items():
        if logical_id in roles:
            for inline in role["Properties"].get("Policies", []):
                statements += inline["PolicyDocument"]["Statement"]
    return statements


def _actions(statements: list[dict[str, Any]]) -> list[str]:
    return sorted(
        action
        for statement in statements
        for action in (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
    )


@pytest.mark.parametrize("create_trail", [False, True])
def test_no_iam_statement_grants_a_wildcard_action(
    build_template: BuildTemplate, create_trail: bool
) -> None:
    template = build_template(createTrail=create_trail)

    for statement in _statements(template):
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        for action in actions:
            assert "*" not in action, statement
    for role in template.find_resources("AWS::IAM::Role").values():
        assert "ManagedPolicyArns" not in role["Properties"]


def test_bucket_reads_are_limited_to_this_account(template: Template) -> None:
    (s3_statement,) = [
        s
        for s in _statements(template, "MonitorFunctionRole")
        if "s3:GetEncryptionConfiguration" in s["Action"]
    ]

    assert sorted(s3_statement["Action"]) == [
        "s3:GetBucketTagging",
        "s3:GetEncryptionConfiguration",
    ]
    assert s3_statement["Condition"] == {
        "StringEquals": {"s3:ResourceAccount": {"Ref": "AWS::AccountId"}}
    }


def test_function_can_publish_keep_and_record_but_nothing_more(template: Template) -> None:
    assert _actions(_statements(template, "MonitorFunctionRole")) == [
        "dynamodb:UpdateItem",  # the state table, one row per evaluation
        "kms:Decrypt",  # the alert key (topic) and the data key (state table)
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "kms:GenerateDataKey",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "s3:GetBucketTagging",
        "s3:GetEncryptionConfiguration",
        # §12: directory and table buckets, read only
        "s3express:GetEncryptionConfiguration",
        "s3tables:GetTableBucket",
        "s3tables:GetTableBucketEncryption",
        # §15: vector buckets and their indexes, read only
        "s3vectors:GetIndex",
        "s3vectors:GetVectorBucket",
        "s3vectors:ListIndexes",
        "sns:Publish",
        # the grace queue's event source mapping
        "sqs:ChangeMessageVisibility",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
        "sqs:GetQueueUrl",
        "sqs:ReceiveMessage",
        "sqs:SendMessage",  # the failure queue
        "xray:PutTelemetryRecords",
        "xray:PutTraceSegments",
    ]
    (state,) = [
        s
        for s in _statements(template, "MonitorFunctionRole")
        if s.get("Sid") == "RecordBucketStates"
    ]
    table_id, _ = _one(template, "AWS::DynamoDB::Table", "MonitorLifecycleStateTable")
    assert state["Resource"] == {"Fn::GetAtt": [table_id, "Arn"]}
    (other_kinds,) = [
        s
        for s in _statements(template, "MonitorFunctionRole")
        if s.get("Sid") == "ReadDirectoryAndTableBuckets"
    ]
    # this account's directory and table buckets, in any region
    assert other_kinds["Resource"] == [
        {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":s3express:*:",
                           {"Ref": "AWS::AccountId"}, ":bucket/*"]]},
        {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":s3tables:*:",
                           {"Ref": "AWS::AccountId"}, ":bucket/*"]]},
        {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":s3vectors:*:",
                           {"Ref": "AWS::AccountId"}, ":bucket/*"]]},
    ]  # fmt: skip


def test_the_state_table_is_on_demand_recoverable_encrypted_and_kept(template: Template) -> None:
    table_id, table = _one(template, "AWS::DynamoDB::Table", "MonitorLifecycleStateTable")
    key_id, _ = _one(template, "AWS::KMS::Key", "MonitorDataKey")
    properties = table["Properties"]
    _, function = _event_function(template)

    assert properties["KeySchema"] == [{"AttributeName": "bucket", "KeyType": "HASH"}]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"]["KMSMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}
    assert table["DeletionPolicy"] == "Retain"
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["STATE_TABLE_NAME"] == {"Ref": table_id}
    # The sparse index of open rows the sweep queries (§16), with what its decisions read
    (index,) = properties["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "open"
    assert index["KeySchema"] == [
        {"AttributeName": "openKey", "KeyType": "HASH"},
        {"AttributeName": "bucket", "KeyType": "RANGE"},
    ]
    assert index["Projection"]["ProjectionType"] == "INCLUDE"
    assert {"status", "alertedFingerprint", "evaluatedAt"} <= set(
        index["Projection"]["NonKeyAttributes"]
    )


@pytest.mark.parametrize(
    ("context", "granted"),
    [
        ({}, []),
        ({"securityHub": True}, ["securityhub:BatchImportFindings"]),
        ({"eventBusOutput": True}, ["events:PutEvents"]),
        (
            {"eventBusOutput": "arn:aws:events:eu-west-1:123456789012:event-bus/security"},
            ["events:PutEvents"],
        ),
    ],
    ids=["off", "security-hub", "default-bus", "own-bus"],
)
def test_only_the_outputs_turned_on_get_permissions(
    build_template: BuildTemplate, context: dict[str, Any], granted: list[str]
) -> None:
    template = build_template(**context)
    _, function = _event_function(template)
    variables = function["Properties"]["Environment"]["Variables"]

    outputs = [
        s
        for s in _statements(template, "MonitorFunctionRole")
        if s["Action"] in ("securityhub:BatchImportFindings", "events:PutEvents")
    ]
    assert [s["Action"] for s in outputs] == granted
    assert ("SECURITY_HUB_PRODUCT_ARN" in variables) == bool(context.get("securityHub"))
    assert ("OUTPUT_EVENT_BUS" in variables) == ("eventBusOutput" in context)
    for statement in outputs:  # one product or one bus, never a wildcard
        assert "*" not in json.dumps(statement["Resource"])
    if "eventBusOutput" in context and context["eventBusOutput"] is not True:
        assert outputs[0]["Resource"] == context["eventBusOutput"]


def test_the_dashboard_shows_lifecycle_sweep_and_queues(template: Template) -> None:
    _, dashboard = _only(template, "AWS::CloudWatch::Dashboard")
    body = json.dumps(dashboard["Properties"]["DashboardBody"])

    for metric in (
        "Drifts",
        "SuppressedRepeats",
        "Resolved",
        "SweepOpenDrift",
        "InvalidEvents",
        "SweepDurationSeconds",
        "SweptBuckets",
        "ApproximateNumberOfMessagesVisible",
        "MissedByEvents",
        "SilentEventPaths",
    ):
        assert metric in body, metric


def test_topic_is_encrypted_with_a_rotated_key_cloudwatch_can_use(template: Template) -> None:
    key_id, key = _one(template, "AWS::KMS::Key", "MonitorAlertKey")
    _, topic = _only(template, "AWS::SNS::Topic")

    assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert key["Properties"]["EnableKeyRotation"] is True
    cloudwatch = [
        s
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert cloudwatch and cloudwatch[0]["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]


def test_topic_refuses_plain_http(template: Template) -> None:
    template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            }
        },
    )


def test_queues_are_encrypted_ssl_only_and_keep_14_days(template: Template) -> None:
    queues = template.find_resources("AWS::SQS::Queue")
    # failure, delivery dead-letter, new-bucket grace and its dead-letter, sweep work and its
    # dead-letter
    assert len(queues) == 6
    for queue in queues.values():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True
        assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    ssl_denied = set()
    for policy in template.find_resources("AWS::SQS::QueuePolicy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}:
                ssl_denied |= {_ref_id(q) for q in policy["Properties"]["Queues"]}
    assert ssl_denied == set(queues)


def test_alarms_on_errors_and_on_every_queue_notify_the_topic(template: Template) -> None:
    topic_id, _ = _only(template, "AWS::SNS::Topic")
    alarms = template.find_resources("AWS::CloudWatch::Alarm")
    watched = []
    for alarm in alarms.values():
        properties = alarm["Properties"]
        assert properties["AlarmActions"] == [{"Ref": topic_id}]
        assert properties["Threshold"] == 1
        assert properties["TreatMissingData"] == "notBreaching"
        dimension = properties["Dimensions"][0]
        watched.append((properties["MetricName"], _ref_id(dimension["Value"])))

    functions = [lid for lid in template.find_resources("AWS::Lambda::Function")]
    queues = [lid for lid in template.find_resources("AWS::SQS::Queue")]
    # These hold work in normal operation: a sweep's items, creations in their grace period.
    busy = ("SweepWorkQueue", "MonitorLifecycleNewBucketQueue")
    assert sorted(watched) == sorted(
        [("Errors", function) for function in functions]
        + [
            ("ApproximateNumberOfMessagesVisible", queue)
            for queue in queues
            if not queue.startswith(busy)
        ]
    )


@pytest.mark.parametrize(
    "emails",
    [["secops@example.com", "oncall@example.com"], "secops@example.com, oncall@example.com"],
    ids=["list", "comma-separated"],
)
def test_email_subscriptions(build_template: BuildTemplate, emails: Any) -> None:
    template = build_template(alertEmails=emails)

    subscriptions = template.find_resources("AWS::SNS::Subscription")
    assert sorted(s["Properties"]["Endpoint"] for s in subscriptions.values()) == [
        "oncall@example.com",
        "secops@example.com",
    ]
    assert {s["Properties"]["Protocol"] for s in subscriptions.values()} == {"email"}


def test_no_trail_unless_asked(template: Template) -> None:
    template.resource_count_is("AWS::CloudTrail::Trail", 0)
    assert not [lid for lid in template.find_resources("AWS::S3::Bucket") if "Trail" in lid]


def test_the_optional_trail(build_template: BuildTemplate) -> None:
    template = build_template(createTrail="true")

    trail_id, trail = _only(template, "AWS::CloudTrail::Trail")
    properties = trail["Properties"]
    assert properties["IsMultiRegionTrail"] is True
    assert properties["EnableLogFileValidation"] is True
    assert properties["IncludeGlobalServiceEvents"] is True
    assert properties["EventSelectors"] == [
        {"IncludeManagementEvents": True, "ReadWriteType": "WriteOnly"}
    ]
    key_id = properties["KMSKeyId"]["Fn::GetAtt"][0]
    key_policy = template.find_resources("AWS::KMS::Key")[key_id]["Properties"]["KeyPolicy"]
    # As the CloudTrail User Guide has it ("Configure AWS KMS key policies for CloudTrail"):
    # GenerateDataKey* to encrypt, Decrypt for the bucket key, each for this trail only.
    cloudtrail = {
        s["Sid"]: s
        for s in key_policy["Statement"]
        if s.get("Principal") == {"Service": "cloudtrail.amazonaws.com"}
    }
    assert {sid: s["Action"] for sid, s in cloudtrail.items()} == {
        "AllowCloudTrailToEncryptLogs": "kms:GenerateDataKey*",
        "AllowCloudTrailToDecryptWithTheBucketKey": "kms:Decrypt",
        "AllowCloudTrailToDescribeKey": "kms:DescribeKey",
    }
    trail_arn = {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":cloudtrail:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                ":trail/",
                {"Ref": "AWS::StackName"},
                "-s3-encryption-monitor",
            ],
        ]
    }
    for statement in cloudtrail.values():
        assert statement["Condition"]["StringEquals"]["aws:SourceArn"] == trail_arn
    assert properties["TrailName"] == {
        "Fn::Join": ["", [{"Ref": "AWS::StackName"}, "-s3-encryption-monitor"]]
    }
    bucket_id = properties["S3BucketName"]["Ref"]
    bucket = template.find_resources("AWS::S3::Bucket")[bucket_id]["Properties"]
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert "LoggingConfiguration" in bucket
    bucket_policy = next(
        p
        for p in template.find_resources("AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": bucket_id}
    )
    assert any(
        s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
        for s in bucket_policy["Properties"]["PolicyDocument"]["Statement"]
    )
    assert trail_id


@pytest.mark.parametrize("key_checks", [False, True])
def test_only_key_checks_grant_describe_key_on_this_account_s_keys(
    build_template: BuildTemplate, key_checks: bool
) -> None:
    template = build_template(policy=json.dumps({"keyChecks": key_checks}))

    for role in ("MonitorFunctionRole", "SweepWorkerFunctionRole"):
        granted = [s for s in _statements(template, role) if s["Action"] == "kms:DescribeKey"]
        assert len(granted) == int(key_checks), role
        if key_checks:
            assert granted[0]["Resource"] == {
                "Fn::Join": [
                    "",
                    ["arn:", {"Ref": "AWS::Partition"}, ":kms:*:", {"Ref": "AWS::AccountId"},
                     ":key/*"],
                ]
            }  # fmt: skip


@pytest.mark.parametrize("allow", [False, True])
def test_only_organization_keys_let_the_readers_list_the_organization(
    build_template: BuildTemplate, allow: bool
) -> None:
    template = build_template(policy=json.dumps({"allowOrganizationKeys": allow}))

    for role in ("MonitorFunctionRole", "SweepWorkerFunctionRole"):
        listing = [
            s for s in _statements(template, role) if s["Action"] == "organizations:ListAccounts"
        ]
        assert len(listing) == int(allow), role


@pytest.mark.parametrize("mode", ["off", "dry-run", "apply"])
def test_only_apply_may_write_bucket_encryption(build_template: BuildTemplate, mode: str) -> None:
    template = build_template(remediation=mode, remediationLimitPerHour=5)
    _, function = _event_function(template)
    variables = function["Properties"]["Environment"]["Variables"]

    writes = [
        s
        for s in _statements(template)
        if "s3:PutEncryptionConfiguration" in json.dumps(s["Action"])
    ]
    assert len(writes) == int(mode == "apply")
    for statement in writes:  # this account's buckets only
        assert statement["Condition"] == {
            "StringEquals": {"s3:ResourceAccount": {"Ref": "AWS::AccountId"}}
        }
    assert variables.get("REMEDIATION") == (None if mode == "off" else mode)
    assert variables.get("REMEDIATION_LIMIT_PER_HOUR") == (None if mode == "off" else "5")

    # directory and table buckets: the event function's role only, and only with apply
    def other_writes(role_prefix: str = "") -> list[dict[str, Any]]:
        return [
            s
            for s in _statements(template, role_prefix)
            if s.get("Sid") == "RemediateDirectoryAndTableBuckets"
        ]

    assert len(other_writes()) == len(other_writes("MonitorFunctionRole")) == int(mode == "apply")
    for statement in other_writes():
        assert statement["Action"] == [
            "s3express:PutEncryptionConfiguration",
            "s3tables:PutTableBucketEncryption",
        ]
