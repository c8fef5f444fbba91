"""The organization topology's central plumbing: the bus member accounts forward to, the right
to read through their reader role, and the StackSets that put those pieces in every account."""

from __future__ import annotations

import json

from aws_cdk import Aws, Stack
from aws_cdk import aws_cloudformation as cloudformation
from aws_cdk import aws_events as events
from constructs import Construct

from functions.drift_monitor.domain.permissions import ASSUME_ROLE

from .config import OrganizationProps
from .functions import MonitoredFunction
from .member import (
    CENTRAL_BUS_ARN,
    MONITOR_ACCOUNT,
    MONITOR_ROLE_ARNS,
    ORGANIZATION_ID,
    MemberTemplates,
)
from .monitor import EncryptionDriftMonitor


class OrganizationPlumbing(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        organization: OrganizationProps,
        regions: tuple[str, ...],
        monitor: EncryptionDriftMonitor,
        readers: list[MonitoredFunction],
        templates: MemberTemplates,
    ) -> None:
        super().__init__(scope, construct_id)
        self.bus = events.EventBus(
            self, "Bus", description="S3 events forwarded by the organization's member accounts"
        )
        # Only accounts of the organization may put events here (the forwarders' roles). Inline
        # in the bus rather than an EventBusPolicy resource, whose deprecated ``principal``
        # property cdk-nag reads (and jsii warns about) on every synth.
        cfn_bus: events.CfnEventBus = self.bus.node.default_child  # type: ignore[assignment]
        cfn_bus.policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "OrganizationMembersForwardS3Events",
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "events:PutEvents",
                    "Resource": (
                        f"arn:{Aws.PARTITION}:events:{Aws.REGION}:{Aws.ACCOUNT_ID}:"
                        f"event-bus/{cfn_bus.name}"
                    ),
                    "Condition": {
                        "StringEquals": {"aws:PrincipalOrgID": organization.organization_id}
                    },
                }
            ],
        }
        # The same rules as on the default bus, for what member accounts forward.
        self.rule, self.new_bucket_rule = monitor.watch(self, "Member", self.bus)

        partition = Aws.PARTITION
        for reader in readers:
            reader.allow(
                "ReadMemberAccountsThroughTheirReaderRole",
                [ASSUME_ROLE],
                [f"arn:{partition}:iam::*:role/{organization.member_role_name}"],
                {"StringEquals": {"aws:ResourceOrgID": organization.organization_id}},
            )

        self.delegated_admin = organization.delegated_admin
        reader_parameters = {
            MONITOR_ACCOUNT: Aws.ACCOUNT_ID,
            MONITOR_ROLE_ARNS: ",".join(reader.role.role_arn for reader in readers),
            ORGANIZATION_ID: organization.organization_id,
        }
        # What the member templates need: the StackSets give it, and the stack outputs it for the
        # management account's own stacks (DELEGATED_ADMIN).
        self.member_parameters = {**reader_parameters, CENTRAL_BUS_ARN: self.bus.event_bus_arn}
        self.reader_stack_set = self._stack_set(
            "ReaderStackSet",
            name_suffix="MemberReader",
            description="S3 Encryption Drift Monitor: the read-only role in every member account",
            template=templates.reader,
            regions=regions[:1],  # IAM is global: once per account
            organization=organization,
            parameters=reader_parameters,
        )
        self.forwarder_stack_set = self._stack_set(
            "ForwarderStackSet",
            name_suffix="MemberForwarders",
            description="S3 Encryption Drift Monitor: the forwarding rule in every member "
            "account and watched region",
            template=templates.forwarder,
            regions=regions,
            organization=organization,
            parameters={CENTRAL_BUS_ARN: self.bus.event_bus_arn},
        )

    def _stack_set(
        self,
        construct_id: str,
        *,
        name_suffix: str,
        description: str,
        template: dict[str, object],
        regions: tuple[str, ...],
        organization: OrganizationProps,
        parameters: dict[str, str],
    ) -> cloudformation.CfnStackSet:
        return cloudformation.CfnStackSet(
            self,
            construct_id,
            stack_set_name=f"{Stack.of(self).stack_name}-{name_suffix}",
            description=description,
            permission_model="SERVICE_MANAGED",
            # Accounts that join the targeted OUs later get the stacks without anyone acting.
            auto_deployment=cloudformation.CfnStackSet.AutoDeploymentProperty(
                enabled=True, retain_stacks_on_account_removal=False
            ),
            call_as=organization.stack_set_call_as,
            capabilities=["CAPABILITY_NAMED_IAM"],
            managed_execution={"Active": True},
            operation_preferences=cloudformation.CfnStackSet.OperationPreferencesProperty(
                failure_tolerance_percentage=10,
                max_concurrent_percentage=25,
                region_concurrency_type="PARALLEL",
            ),
            template_body=json.dumps(template),
            parameters=[
                cloudformation.CfnStackSet.ParameterProperty(
                    parameter_key=key, parameter_value=value
                )
                for key, value in parameters.items()
            ],
            stack_instances_group=[
                cloudformation.CfnStackSet.StackInstancesProperty(
                    deployment_targets=cloudformation.CfnStackSet.DeploymentTargetsProperty(
                        organizational_unit_ids=list(organization.member_targets),
                        # The monitor's own account reads its buckets directly and has its
                        # own rules: no second copy that would alert twice.
                        account_filter_type="DIFFERENCE",
                        accounts=[Aws.ACCOUNT_ID],
                    ),
                    regions=list(regions),
                )
            ],
        )
