"""Every account, every region: what `regions` and `organizationId` add to the synthesized app."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from app import build_app
from functions.drift_monitor.domain.permissions import MEMBER_READER_ACTIONS
from tests.infra.conftest import (
    ALL_BUCKETS,
    CDK_JSON_CONTEXT,
    CREATIONS,
    IMMEDIATE,
    S3_PATTERN,
    s3_pattern,
)
from tests.infra.test_monitor import _actions, _event_function, _one, _statements

REGIONS = "eu-west-1,us-east-1,us-west-2"
ORGANIZATION = {
    "organizationId": "o-a1b2c3d4e5",
    "memberTargets": "ou-ab12-cd34ef56,ou-ab12-gh78ij90",
    "regions": REGIONS,
}


def stacks(**context: Any) -> dict[str, cdk.Stack]:
    app = build_app(context={**CDK_JSON_CONTEXT, **context})
    found = {}
    for child in app.node.find_all():
        if isinstance(child, cdk.Stack):
            found[child.node.path] = child
    return found


@pytest.fixture(scope="module")
def organization() -> dict[str, cdk.Stack]:
    return stacks(**ORGANIZATION)


def template_of(stack: cdk.Stack) -> Template:
    return Template.from_stack(stack)


def test_the_default_is_one_environment_agnostic_stack_as_before() -> None:
    found = stacks()

    assert list(found) == ["S3EncryptionDriftMonitor"]
    stack = found["S3EncryptionDriftMonitor"]
    assert cdk.Token.is_unresolved(stack.region)
    template = template_of(stack)
    template.resource_count_is("AWS::Events::EventBus", 0)
    template.resource_count_is("AWS::CloudFormation::StackSet", 0)
    _, function = _event_function(template)
    assert "MEMBER_ROLE_NAME" not in function["Properties"]["Environment"]["Variables"]


def test_regions_add_one_forwarder_per_other_region_sending_home() -> None:
    found = stacks(regions=REGIONS)

    assert sorted(found) == [
        "S3EncryptionDriftMonitor",
        "S3EncryptionDriftMonitor-us-east-1",
        "S3EncryptionDriftMonitor-us-west-2",
    ]
    assert found["S3EncryptionDriftMonitor"].region == "eu-west-1"  # the home region, first
    for region in ("us-east-1", "us-west-2"):
        stack = found[f"S3EncryptionDriftMonitor-{region}"]
        assert stack.region == region
        template = template_of(stack)
        _, rule = _one(template, "AWS::Events::Rule", "Forwarder")
        assert rule["Properties"]["EventPattern"] == S3_PATTERN
        (target,) = rule["Properties"]["Targets"]
        home_bus = {
            "Fn::Join": [
                "",
                ["arn:", {"Ref": "AWS::Partition"}, ":events:eu-west-1:",
                 {"Ref": "AWS::AccountId"}, ":event-bus/default"],
            ]
        }  # fmt: skip
        assert target["Arn"] == home_bus
        # the forwarding role may only put events on that one bus
        (statement,) = _statements(template, "ForwarderRole")
        assert (statement["Action"], statement["Resource"]) == ("events:PutEvents", home_bus)
        _, role = _one(template, "AWS::IAM::Role", "ForwarderRole")
        (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert trust["Principal"] == {"Service": "events.amazonaws.com"}
        assert trust["Condition"] == {
            "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
        }
    # one monitor, one topic, one sweep whatever the number of regions
    home = template_of(found["S3EncryptionDriftMonitor"])
    home.resource_count_is("AWS::SNS::Topic", 1)
    home.resource_count_is("AWS::DynamoDB::Table", 2)  # the sweep's runs and the state


def test_a_home_region_other_than_the_first_leads_the_list() -> None:
    found = stacks(regions=REGIONS, homeRegion="us-west-2")

    assert found["S3EncryptionDriftMonitor"].region == "us-west-2"
    assert "S3EncryptionDriftMonitor-eu-west-1" in found


def test_the_central_bus_takes_events_from_the_organization_only(
    organization: dict[str, cdk.Stack],
) -> None:
    template = template_of(organization["S3EncryptionDriftMonitor"])
    bus_id, bus = _one(template, "AWS::Events::EventBus", "OrganizationBus")

    (statement,) = bus["Properties"]["Policy"]["Statement"]
    assert statement["Action"] == "events:PutEvents"
    assert statement["Principal"] == "*"
    assert statement["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}}
    _, rule = _one(template, "AWS::Events::Rule", "OrganizationMemberS3EncryptionChangeRule")
    assert rule["Properties"]["EventBusName"] == {"Ref": bus_id}
    assert rule["Properties"]["EventPattern"] == s3_pattern(*IMMEDIATE)
    # member accounts' creations wait out the grace period in the same queue as the central's
    _, creations = _one(template, "AWS::Events::Rule", "OrganizationMemberNewBucketRule")
    _, own_creations = _one(template, "AWS::Events::Rule", "MonitorNewBucketRule")
    assert creations["Properties"]["EventBusName"] == {"Ref": bus_id}
    assert creations["Properties"]["EventPattern"] == s3_pattern(*CREATIONS)
    assert (
        creations["Properties"]["Targets"][0]["Arn"]
        == (own_creations["Properties"]["Targets"][0]["Arn"])
    )
    function_id, _ = _event_function(template)
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400}
    # the central account's own buckets still come by its default bus, once
    _, own = _one(template, "AWS::Events::Rule", "MonitorS3EncryptionChangeRule")
    assert "EventBusName" not in own["Properties"]


@pytest.mark.parametrize("role_prefix", ["MonitorFunctionRole", "SweepWorkerFunctionRole"])
def test_readers_may_assume_only_the_reader_role_of_the_organization(
    organization: dict[str, cdk.Stack], role_prefix: str
) -> None:
    template = template_of(organization["S3EncryptionDriftMonitor"])

    (assume,) = [s for s in _statements(template, role_prefix) if s["Action"] == "sts:AssumeRole"]
    assert assume["Resource"] == {
        "Fn::Join": [
            "",
            ["arn:", {"Ref": "AWS::Partition"}, ":iam::*:role/S3EncryptionMonitorReader"],
        ]
    }
    assert assume["Condition"] == {"StringEquals": {"aws:ResourceOrgID": "o-a1b2c3d4e5"}}
    function = "MonitorFunction" if role_prefix.startswith("Monitor") else "SweepWorkerFunction"
    _, resource = _one(template, "AWS::Lambda::Function", function)
    variables = resource["Properties"]["Environment"]["Variables"]
    assert variables["MEMBER_ROLE_NAME"] == "S3EncryptionMonitorReader"


def test_the_starter_lists_the_organization_s_accounts_unless_given_them(
    organization: dict[str, cdk.Stack],
) -> None:
    template = template_of(organization["S3EncryptionDriftMonitor"])
    _, starter = _one(template, "AWS::Lambda::Function", "SweepStarterFunction")
    assert starter["Properties"]["Environment"]["Variables"]["SWEEP_ORGANIZATION"] == "true"
    assert "organizations:ListAccounts" in _actions(
        _statements(template, "SweepStarterFunctionRole")
    )

    explicit = template_of(
        stacks(**ORGANIZATION, accounts="111111111111,222222222222")["S3EncryptionDriftMonitor"]
    )
    _, starter = _one(explicit, "AWS::Lambda::Function", "SweepStarterFunction")
    variables = starter["Properties"]["Environment"]["Variables"]
    assert (variables["SWEEP_ORGANIZATION"], variables["SWEEP_ACCOUNTS"]) == (
        "false",
        "111111111111,222222222222",
    )
    assert "organizations:ListAccounts" not in _actions(
        _statements(explicit, "SweepStarterFunctionRole")
    )


def _stack_sets(template: Template) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource["Properties"]
        for logical_id, resource in template.find_resources("AWS::CloudFormation::StackSet").items()
    }


def test_stack_sets_deploy_the_member_templates_to_every_member_account(
    organization: dict[str, cdk.Stack],
) -> None:
    template = template_of(organization["S3EncryptionDriftMonitor"])
    stack_sets = _stack_sets(template)
    reader = next(p for lid, p in stack_sets.items() if lid.startswith("OrganizationReader"))
    forwarder = next(p for lid, p in stack_sets.items() if lid.startswith("OrganizationForwarder"))

    for properties in (reader, forwarder):
        assert properties["PermissionModel"] == "SERVICE_MANAGED"
        assert properties["AutoDeployment"] == {
            "Enabled": True,
            "RetainStacksOnAccountRemoval": False,
        }
        assert properties["CallAs"] == "SELF"
        assert properties["Capabilities"] == ["CAPABILITY_NAMED_IAM"]
        (group,) = properties["StackInstancesGroup"]
        targets = group["DeploymentTargets"]
        assert targets["OrganizationalUnitIds"] == ["ou-ab12-cd34ef56", "ou-ab12-gh78ij90"]
        # not the monitor's own account: it reads its buckets directly, no duplicate alerts
        assert targets["AccountFilterType"] == "DIFFERENCE"
        assert targets["Accounts"] == [{"Ref": "AWS::AccountId"}]
    # the role once per account (IAM is global), a forwarder in every watched region
    assert reader["StackInstancesGroup"][0]["Regions"] == ["eu-west-1"]
    assert forwarder["StackInstancesGroup"][0]["Regions"] == REGIONS.split(",")
    # the template bodies are the member stacks synthesized beside the central one
    assert (
        json.loads(reader["TemplateBody"])
        == template_of(organization["MemberTemplates/Reader"]).to_json()
    )
    assert (
        json.loads(forwarder["TemplateBody"])
        == template_of(organization["MemberTemplates/Forwarder"]).to_json()
    )
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in reader["Parameters"]}
    assert parameters["OrganizationId"] == "o-a1b2c3d4e5"
    assert parameters["MonitorAccountId"] == {"Ref": "AWS::AccountId"}
    role_arns = parameters["MonitorRoleArns"]["Fn::Join"][1]
    assert [part["Fn::GetAtt"][0][:18] for part in role_arns if isinstance(part, dict)] == [
        "MonitorFunctionRol",
        "SweepWorkerFunctio",
    ]
    (bus,) = forwarder["Parameters"]
    assert bus["ParameterKey"] == "CentralBusArn"
    assert bus["ParameterValue"]["Fn::GetAtt"][0].startswith("OrganizationBus")


def test_a_delegated_administrator_deploys_the_stack_sets_as_such() -> None:
    found = stacks(**ORGANIZATION, stackSetCallAs="DELEGATED_ADMIN")

    for properties in _stack_sets(template_of(found["S3EncryptionDriftMonitor"])).values():
        assert properties["CallAs"] == "DELEGATED_ADMIN"


def test_the_member_reader_role_reads_only_and_trusts_only_the_monitor(
    organization: dict[str, cdk.Stack],
) -> None:
    template = template_of(organization["MemberTemplates/Reader"])
    _, role = _one(template, "AWS::IAM::Role", "Reader")
    properties = role["Properties"]

    assert properties["RoleName"] == "S3EncryptionMonitorReader"
    (trust,) = properties["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"]["AWS"]["Fn::Join"][1][-2:] == [
        {"Ref": "MonitorAccountId"},
        ":root",
    ]
    assert trust["Condition"] == {
        "ArnEquals": {"aws:PrincipalArn": {"Ref": "MonitorRoleArns"}},
        "StringEquals": {"aws:PrincipalOrgID": {"Ref": "OrganizationId"}},
    }
    statements = [
        s for policy in properties["Policies"] for s in policy["PolicyDocument"]["Statement"]
    ]
    assert sorted(_actions(statements)) == sorted(MEMBER_READER_ACTIONS)
    for action in _actions(statements):
        assert action.split(":")[1].startswith(("Get", "List")), action
    (reads,) = [s for s in statements if s["Resource"] == ALL_BUCKETS]
    assert reads["Condition"] == {"StringEquals": {"s3:ResourceAccount": {"Ref": "AWS::AccountId"}}}


def test_the_member_forwarder_sends_the_monitor_s_events_to_the_central_bus(
    organization: dict[str, cdk.Stack],
) -> None:
    template = template_of(organization["MemberTemplates/Forwarder"])

    _, rule = _one(template, "AWS::Events::Rule", "Forwarder")
    assert rule["Properties"]["EventPattern"] == S3_PATTERN
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Ref": "CentralBusArn"}
    (statement,) = _statements(template, "ForwarderRole")
    assert (statement["Action"], statement["Resource"]) == (
        "events:PutEvents",
        {"Ref": "CentralBusArn"},
    )
    # StackSets deploy into accounts never bootstrapped for the CDK
    assert "BootstrapVersion" not in template.to_json().get("Parameters", {})


def test_with_key_checks_the_member_reader_may_describe_its_account_s_keys_and_no_more() -> None:
    found = stacks(**ORGANIZATION, policy=json.dumps({"keyChecks": True}))
    template = template_of(found["MemberTemplates/Reader"])
    _, role = _one(template, "AWS::IAM::Role", "Reader")
    statements = [
        s
        for policy in role["Properties"]["Policies"]
        for s in policy["PolicyDocument"]["Statement"]
    ]

    assert sorted(_actions(statements)) == sorted([*MEMBER_READER_ACTIONS, "kms:DescribeKey"])
    (describe,) = [s for s in statements if s["Action"] == "kms:DescribeKey"]
    assert describe["Resource"]["Fn::Join"][1][-2:] == [{"Ref": "AWS::AccountId"}, ":key/*"]


@pytest.mark.parametrize("mode", ["dry-run", "apply"])
def test_the_member_reader_may_write_encryption_only_with_apply(mode: str) -> None:
    found = stacks(**ORGANIZATION, remediation=mode)
    template = template_of(found["MemberTemplates/Reader"])
    _, role = _one(template, "AWS::IAM::Role", "Reader")
    actions = _actions(
        [
            s
            for policy in role["Properties"]["Policies"]
            for s in policy["PolicyDocument"]["Statement"]
        ]
    )

    assert ("s3:PutEncryptionConfiguration" in actions) is (mode == "apply")
    # and the same for directory and table buckets
    assert ("s3express:PutEncryptionConfiguration" in actions) is (mode == "apply")
    assert ("s3tables:PutTableBucketEncryption" in actions) is (mode == "apply")


KEY = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


@pytest.mark.parametrize("mode", ["dry-run", "apply"])
def test_remediating_directory_buckets_to_sse_kms_may_use_only_the_allowed_keys(mode: str) -> None:
    # "you must also have the kms:GenerateDataKey and the kms:Decrypt permissions ... for the
    # target KMS key" (S3 API Reference, PutBucketEncryption, directory buckets)
    alias = "arn:aws:kms:eu-west-1:123456789012:alias/data"
    policy = json.dumps({"allowedKmsKeys": [KEY, alias]})
    found = stacks(**ORGANIZATION, remediation=mode, policy=policy)
    monitor = template_of(found["S3EncryptionDriftMonitor"])
    _, role = _one(template_of(found["MemberTemplates/Reader"]), "AWS::IAM::Role", "Reader")
    member = [s for p in role["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]

    for statements in (_statements(monitor, "MonitorFunctionRole"), member):
        keys = [s for s in statements if s.get("Sid") == "SetDirectoryBucketsToTheAllowedKeys"]
        if mode == "dry-run":
            assert keys == []
            continue
        (statement,) = keys
        # a directory bucket takes a key by id or ARN, never an alias
        assert (sorted(statement["Action"]), statement["Resource"]) == (
            ["kms:Decrypt", "kms:GenerateDataKey"],
            KEY,
        )


@pytest.mark.parametrize("home", ["cn-north-1", "us-gov-west-1"])
def test_templates_for_other_partitions_name_no_aws_partition(home: str) -> None:
    regions = {"cn-north-1": "cn-north-1,cn-northwest-1", "us-gov-west-1": "us-gov-west-1"}
    partition = "aws-cn" if home.startswith("cn") else "aws-us-gov"
    layer = f"arn:{partition}:lambda:{home}:123456789012:layer:powertools:1"
    found = stacks(
        **{**ORGANIZATION, "regions": regions[home]},
        createTrail="true",
        securityHub="true",
        eventBusOutput="true",
        remediation="apply",
        powertoolsLayerArn=layer,
        policy=json.dumps({"keyChecks": True}),
    )

    for path, stack in found.items():
        text = json.dumps(template_of(stack).to_json())
        assert "arn:aws:" not in text, path


def test_a_delegated_administrator_gets_stacks_for_the_management_account() -> None:
    # StackSets "doesn't deploy stack instances to the organization management account"
    # (CloudFormation API, DeploymentTargets): its reader role and forwarders are stacks the
    # management account deploys itself, given the central stack's outputs.
    found = stacks(**ORGANIZATION, stackSetCallAs="DELEGATED_ADMIN")
    central = template_of(found["S3EncryptionDriftMonitor"])

    management = sorted(path for path in found if path.startswith("ManagementAccount/"))
    assert management == [
        "ManagementAccount/Forwarder-eu-west-1",
        "ManagementAccount/Forwarder-us-east-1",
        "ManagementAccount/Forwarder-us-west-2",
        "ManagementAccount/Reader",
    ]
    reader = template_of(found["ManagementAccount/Reader"]).to_json()
    assert set(reader["Parameters"]) >= {"MonitorAccountId", "MonitorRoleArns", "OrganizationId"}
    outputs = central.to_json()["Outputs"]
    assert {
        "ManagementAccountMonitorAccountId",
        "ManagementAccountMonitorRoleArns",
        "ManagementAccountOrganizationId",
        "ManagementAccountCentralBusArn",
    } <= set(outputs)
    # the sweep says the management account is not covered until those stacks exist
    _, worker = _one(central, "AWS::Lambda::Function", "SweepWorkerFunction")
    assert worker["Properties"]["Environment"]["Variables"]["DELEGATED_ADMIN"] == "true"
    assert "organizations:DescribeOrganization" in _actions(
        _statements(central, "SweepWorkerFunctionRole")
    )


def test_stack_sets_called_as_self_need_no_management_account_stacks(
    organization: dict[str, cdk.Stack],
) -> None:
    assert not [path for path in organization if path.startswith("ManagementAccount/")]
    _, worker = _one(
        template_of(organization["S3EncryptionDriftMonitor"]),
        "AWS::Lambda::Function",
        "SweepWorkerFunction",
    )
    assert "DELEGATED_ADMIN" not in worker["Properties"]["Environment"]["Variables"]


def test_the_discovery_parameter_names_what_the_doctor_checks(
    organization: dict[str, cdk.Stack],
) -> None:
    template = template_of(organization["S3EncryptionDriftMonitor"])
    (parameter,) = template.find_resources("AWS::SSM::Parameter").values()
    properties = parameter["Properties"]

    assert properties["Name"] == "/s3-encryption-drift-monitor/S3EncryptionDriftMonitor"
    assert properties["Tier"] == "Intelligent-Tiering"  # 4 KB free, 8 KB when a policy is long
    parts = properties["Value"]["Fn::Join"][1]
    refs = {part["Ref"] for part in parts if isinstance(part, dict) and "Ref" in part}
    # every function, every rule and every queue that holds failures, by their physical names
    for resource_type in ("AWS::Lambda::Function", "AWS::Events::Rule"):
        assert set(template.find_resources(resource_type)) <= refs, resource_type
    dead_letters = [q for q in template.find_resources("AWS::SQS::Queue") if "Dead" in q]
    assert dead_letters and set(dead_letters) <= refs
    literal = "".join(part for part in parts if isinstance(part, str))
    assert '"stackSets":["S3EncryptionDriftMonitor-MemberReader",' in literal
    assert f'"regions":{json.dumps(REGIONS.split(","), separators=(",", ":"))}' in literal
