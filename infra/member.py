"""What the organization topology deploys in every member account, through StackSets.

Two small templates, synthesized as stacks of their own (``cdk.out/assembly-MemberTemplates``)
and embedded in the central stack's StackSets:
- the reader role, once per account: the S3 reads the monitor's functions make, nothing else,
  assumable only by those functions' roles from within the organization;
- the forwarder, per account and region: the monitor's rule, sending matching events to the
  central bus.
The values known only once the central stack exists (its account, roles and bus) are parameters
that the StackSets fill in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import (
    Acknowledgment,
    BootstraplessSynthesizer,
    CfnParameter,
    Environment,
    Stack,
    Stage,
    Validations,
)
from aws_cdk import aws_iam as iam
from constructs import Construct

from functions.drift_monitor.domain.permissions import (
    FIND_TAGGED_BUCKETS,
    LIST_BUCKETS,
    PUT_ENCRYPTION,
    SWEEP_BUCKET_READS,
)
from functions.drift_monitor.domain.policy import Policy

from .forwarding import EventForwarder
from .functions import (
    ALL_BUCKETS_FINDING,
    acknowledge_key_wildcard,
    acknowledge_other_kinds,
    describe_keys_statement,
    directory_keys_statement,
    other_kinds_statements,
    this_accounts_buckets,
)
from .heartbeat import HeartbeatSource

# Parameter names, shared with the StackSets that fill them in.
MONITOR_ACCOUNT = "MonitorAccountId"
MONITOR_ROLE_ARNS = "MonitorRoleArns"
ORGANIZATION_ID = "OrganizationId"
CENTRAL_BUS_ARN = "CentralBusArn"


class _MemberStack(Stack):
    """Deployed by StackSets into accounts that were never bootstrapped for the CDK (and, for
    the management account, by ``cdk deploy`` with that account's credentials)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        description: str,
        env: Environment | None = None,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description=description,
            synthesizer=BootstraplessSynthesizer(),
            analytics_reporting=False,
            env=env,
        )


class MemberReaderStack(_MemberStack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        role_name: str,
        policy: Policy,
        remediates: bool,
        env: Environment | None = None,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description="S3 Encryption Drift Monitor: the role the monitor reads this account's "
            "bucket encryption with (read only)",
            env=env,
        )
        monitor_account = CfnParameter(
            self,
            MONITOR_ACCOUNT,
            type="String",
            allowed_pattern=r"^\d{12}$",
            description="The account the monitor runs in",
        )
        monitor_roles = CfnParameter(
            self,
            MONITOR_ROLE_ARNS,
            type="CommaDelimitedList",
            description="ARNs of the monitor's function roles, the only principals that may "
            "assume the reader role",
        )
        organization_id = CfnParameter(
            self,
            ORGANIZATION_ID,
            type="String",
            allowed_pattern=r"^o-[a-z0-9]{10,32}$",
            description="The organization both accounts belong to",
        )
        # Trusted: the monitor's account, narrowed to its function roles and the organization.
        self.role = iam.Role(
            self,
            "Reader",
            role_name=role_name,
            assumed_by=iam.AccountPrincipal(monitor_account.value_as_string).with_conditions(
                {
                    "ArnEquals": {"aws:PrincipalArn": monitor_roles.value_as_list},
                    "StringEquals": {"aws:PrincipalOrgID": organization_id.value_as_string},
                }
            ),
            description="Lets the S3 Encryption Drift Monitor read this account's bucket "
            "encryption, tags and locations; no write",
            inline_policies={
                "ReadBucketEncryption": reader_policy(policy=policy, remediates=remediates)
            },
        )
        Validations.of(self.role).acknowledge(
            Acknowledgment(
                id=ALL_BUCKETS_FINDING,
                reason="The monitor reads the encryption, tags and location of every bucket of "
                "the account, and bucket ARNs carry no account; the statement is narrowed to this "
                "account's buckets with the s3:ResourceAccount condition.",
            )
        )
        acknowledge_other_kinds(self.role)
        if policy.key_checks:
            acknowledge_key_wildcard(self.role)
        Validations.of(self.role).acknowledge(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-IAM5[Resource::*]",
                reason="s3:ListAllMyBuckets, s3express:ListAllMyDirectoryBuckets, "
                "s3tables:ListTableBuckets and tag:GetResources support no resource-level "
                "permissions; all only list.",
            )
        )


def reader_policy(*, policy: Policy, remediates: bool) -> iam.PolicyDocument:
    """Exactly what the event function and the sweep call in a member account: reads, and the
    one write remediation makes (with the keys it may set) only when it is ``apply``."""
    remediation = [this_accounts_buckets("RemediateBucketsOfThisAccount", (PUT_ENCRYPTION,))]
    keys = directory_keys_statement(policy)
    if keys is not None:
        remediation.append(keys)
    return iam.PolicyDocument(
        statements=[
            *([describe_keys_statement()] if policy.key_checks else []),
            *(remediation if remediates else []),
            this_accounts_buckets("ReadBucketsOfThisAccount", SWEEP_BUCKET_READS),
            iam.PolicyStatement(
                sid="ListBucketsAndFindExemptOnes",
                actions=[LIST_BUCKETS, FIND_TAGGED_BUCKETS],
                resources=["*"],
            ),
            *other_kinds_statements(lists=True, remediates=remediates),
        ]
    )


class MemberForwarderStack(_MemberStack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        event_names: tuple[str, ...],
        heartbeat: str | None = None,
        env: Environment | None = None,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description="S3 Encryption Drift Monitor: forwards this region's S3 bucket creations "
            "and encryption changes to the monitor",
            env=env,
        )
        if heartbeat is not None:
            HeartbeatSource(self, "Heartbeat", rate=heartbeat)
        central_bus = CfnParameter(
            self,
            CENTRAL_BUS_ARN,
            type="String",
            allowed_pattern=r"^arn:aws[a-z-]*:events:[a-z0-9-]+:\d{12}:event-bus/.+$",
            description="The monitor's event bus, in its account and home region",
        )
        EventForwarder(
            self,
            "Forwarder",
            target_bus_arn=central_bus.value_as_string,
            event_names=event_names,
        )


@dataclass(frozen=True)
class MemberTemplates:
    reader: dict[str, Any]
    forwarder: dict[str, Any]


def synthesize_member_templates(
    stage: Stage,
    role_name: str,
    event_names: tuple[str, ...],
    *,
    policy: Policy,
    remediates: bool,
    heartbeat: str | None = None,
) -> MemberTemplates:
    """Both member stacks in ``stage`` (so ``cdk synth`` writes them and cdk-nag checks them),
    synthesized now because the central stack's StackSets carry their templates."""
    reader = MemberReaderStack(
        stage, "Reader", role_name=role_name, policy=policy, remediates=remediates
    )
    forwarder = MemberForwarderStack(
        stage, "Forwarder", event_names=event_names, heartbeat=heartbeat
    )
    assembly = stage.synth()
    return MemberTemplates(
        reader=assembly.get_stack_by_name(reader.stack_name).template,
        forwarder=assembly.get_stack_by_name(forwarder.stack_name).template,
    )
