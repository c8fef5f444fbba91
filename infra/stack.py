"""The deployable stacks: the monitor in its home region, a forwarder in each other region, and
the reasons for each accepted cdk-nag finding and skipped checkov check."""

from __future__ import annotations

from typing import Any, cast

from aws_cdk import Acknowledgment, Aws, CfnOutput, CfnResource, Stack, Validations
from aws_cdk.aws_events import CfnRule, Rule
from aws_cdk.aws_sqs import IQueue
from constructs import Construct, IConstruct

from .chat import ChatChannels
from .config import DEFAULT_BUS, MonitorProps
from .discovery import DeploymentManifest
from .forwarding import EventForwarder, default_bus_arn
from .functions import ALL_BUCKETS_FINDING
from .heartbeat import HeartbeatSource
from .lifecycle import MonitorDashboard
from .member import MemberTemplates
from .monitor import EncryptionDriftMonitor
from .organization import OrganizationPlumbing
from .sweep_engine import SweepAccounts, SweepEngine

# checkov checks not met on purpose, with why; written into each resource's metadata.
CHECKOV_SKIPS = {
    "AWS::Lambda::Function": [
        ("CKV_AWS_116", "Failures are kept by Lambda on-failure destinations (event function, "
         "starter) or the work queue's dead-letter queue (worker), which checkov does not see."),
        ("CKV_AWS_117", "The functions call only AWS APIs (S3, STS, SNS, SQS, DynamoDB) and "
         "reach no private resource; a VPC would add NAT or endpoints and no protection."),
        ("CKV_AWS_115", "No reserved concurrency: a new account's limit of 10 refuses any "
         "reservation; the worker's concurrency is capped by its event source mapping."),
        ("CKV_AWS_173", "The environment holds ARNs, a queue URL and the policy, no secret; "
         "Lambda encrypts it at rest with a key it owns."),
    ],
    "AWS::SQS::Queue": [
        ("CKV_AWS_27", "Encrypted with SSE-SQS (keys owned by SQS); a customer managed key "
         "would need EventBridge and Lambda grants that CDK writes with wildcard KMS actions."),
    ],
}  # fmt: skip
ACCESS_LOG_BUCKET_SKIPS = [
    ("CKV_AWS_18", "This bucket receives the server access logs; logging it would loop."),
    ("CKV_AWS_145", "S3 server access logging delivers only to SSE-S3 buckets."),
]


class EncryptionDriftMonitorStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        props: MonitorProps,
        member_templates: MemberTemplates | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.props = props
        self.monitor = EncryptionDriftMonitor(self, "Monitor", props=props)
        self.heartbeat = (
            HeartbeatSource(self, "Heartbeat", rate=props.heartbeat) if props.heartbeat else None
        )
        organization = props.organization
        self.sweep: SweepEngine | None = None
        if props.sweep_schedule is not None:
            self.sweep = SweepEngine(
                self,
                "Sweep",
                props=props,
                schedule=props.sweep_schedule,
                monitor=self.monitor,
                accounts=SweepAccounts(
                    explicit=organization.accounts if organization else (),
                    organization=bool(organization and not organization.accounts),
                ),
            )
        # The functions that read buckets, in other accounts too with an organization.
        self.readers = [self.monitor.event_function]
        if self.sweep is not None:
            self.readers.append(self.sweep.worker)
        self.organization: OrganizationPlumbing | None = None
        if organization is not None:
            assert member_templates is not None, "the organization topology needs its templates"
            self.organization = OrganizationPlumbing(
                self,
                "Organization",
                organization=organization,
                regions=props.regions,
                monitor=self.monitor,
                readers=self.readers,
                templates=member_templates,
            )
        self.chat = (
            ChatChannels(
                self,
                "Chat",
                chat=props.chat,
                key=self.monitor.key,
                publisher=self.monitor.event_function,
            )
            if props.chat is not None
            else None
        )
        self.dashboard = MonitorDashboard(
            self, "Operations", monitor=self.monitor, queues=self._queues()
        )
        self._outputs()
        self.manifest = DeploymentManifest(self, "Discovery", manifest=self._manifest())
        self._acknowledge_findings()
        skip_checkov_checks(self)

    def _queues(self) -> dict[str, IQueue]:
        """The queues an operator watches, by what waits in them."""
        monitor = self.monitor
        queues: dict[str, IQueue] = {
            "failed events": monitor.failure_queue,
            "undeliverable events": monitor.delivery_dead_letter_queue,
        }
        lifecycle = monitor.lifecycle
        if lifecycle.grace_queue is not None and lifecycle.grace_dead_letters is not None:
            queues["new buckets in their grace period"] = lifecycle.grace_queue
            queues["new buckets that failed"] = lifecycle.grace_dead_letters
        if self.sweep is not None:
            queues["sweep work items"] = self.sweep.work
            queues["sweep work that failed"] = self.sweep.work_dead_letters
        return queues

    def _manifest(self) -> dict[str, Any]:
        """What the doctor checks, by name: written to the stack's discovery parameter."""
        monitor, props = self.monitor, self.props
        rules = [monitor.rule, monitor.new_bucket_rule, monitor.watchdog]
        functions = {"event": monitor.function.function_name}
        queues = {label: queue.queue_url for label, queue in self._dead_letters().items()}
        if self.sweep is not None:
            rules.append(self.sweep.schedule)
            functions["sweepStarter"] = self.sweep.starter.function.function_name
            functions["sweepWorker"] = self.sweep.worker.function.function_name
        organization = None
        if self.organization is not None and props.organization is not None:
            rules += [self.organization.rule, self.organization.new_bucket_rule]
            organization = {
                "id": props.organization.organization_id,
                "memberTargets": list(props.organization.member_targets),
                "stackSets": [
                    stack_set.stack_set_name
                    for stack_set in (
                        self.organization.reader_stack_set,
                        self.organization.forwarder_stack_set,
                    )
                ],
                "callAs": props.organization.stack_set_call_as,
                "accounts": list(props.organization.accounts),
            }
        return {
            "stack": self.stack_name,
            "account": Aws.ACCOUNT_ID,
            "region": Aws.REGION,
            "regions": list(props.regions) or [Aws.REGION],
            # The bus AWS services put events on: the rules of the home stack and forwarders.
            "defaultBus": DEFAULT_BUS,
            "functions": functions,
            "rules": [
                # Ref of a rule on another bus than the default is "<bus>|<rule>" (CloudFormation
                # User Guide, AWS::Events::Rule, Return values): the doctor splits it.
                {"name": rule.rule_name, "bus": _bus_of(rule)}
                for rule in rules
                if rule is not None
            ],
            "topicArn": monitor.topic.topic_arn,
            "queues": queues,
            "stateTable": monitor.lifecycle.table.table_name,
            "runTable": None if self.sweep is None else self.sweep.runs.table_name,
            "sweepSchedule": props.sweep_schedule,
            "heartbeatMinutes": props.heartbeat_minutes,
            "organization": organization,
            "policy": props.policy.to_dict(),
        }

    def _dead_letters(self) -> dict[str, IQueue]:
        """The queues that hold what failed: each should be empty."""
        monitor = self.monitor
        queues: dict[str, IQueue] = {
            "failed events": monitor.failure_queue,
            "undeliverable events": monitor.delivery_dead_letter_queue,
        }
        if monitor.lifecycle.grace_dead_letters is not None:
            queues["new buckets that failed"] = monitor.lifecycle.grace_dead_letters
        if self.sweep is not None:
            queues["sweep work that failed"] = self.sweep.work_dead_letters
        return queues

    def _outputs(self) -> None:
        monitor = self.monitor
        CfnOutput(self, "AlertTopicArn", value=monitor.topic.topic_arn)
        CfnOutput(self, "StateTableName", value=monitor.lifecycle.table.table_name)
        CfnOutput(self, "DashboardName", value=self.dashboard.dashboard.dashboard_name)
        CfnOutput(self, "FailureQueueUrl", value=monitor.failure_queue.queue_url)
        CfnOutput(self, "FunctionName", value=monitor.function.function_name)
        if self.chat is not None:
            CfnOutput(self, "ChatTopicArn", value=self.chat.topic.topic_arn)
        if self.sweep is not None:
            CfnOutput(self, "SweepFunctionName", value=self.sweep.starter.function.function_name)
            CfnOutput(self, "ReportBucketName", value=self.sweep.reports.bucket_name)
        if self.organization is not None:
            CfnOutput(self, "CentralEventBusArn", value=self.organization.bus.event_bus_arn)
            if self.organization.delegated_admin:
                # The parameters of the ManagementAccount stacks, which cdk deploy gives them.
                for name, value in self.organization.member_parameters.items():
                    CfnOutput(self, f"ManagementAccount{name}", value=value)

    def _acknowledge_findings(self) -> None:
        monitor = self.monitor
        _acknowledge(
            monitor.function.role,
            ALL_BUCKETS_FINDING,
            "The monitor must read the encryption and tags of every bucket in the account, and "
            "bucket ARNs carry no account; the statement is narrowed to this account's buckets "
            "with the s3:ResourceAccount condition.",
        )
        functions = [monitor.function]
        if self.sweep is not None:
            functions += [self.sweep.starter.function, self.sweep.worker.function]
            _acknowledge(
                self.sweep.worker.role,
                ALL_BUCKETS_FINDING,
                "The sweep reads the encryption, location and tags of every bucket in the "
                "account, and bucket ARNs carry no account; the statement is narrowed to this "
                "account's buckets with the s3:ResourceAccount condition.",
            )
            reports = self.get_logical_id(self.sweep.reports.node.default_child)  # type: ignore[arg-type]
            _acknowledge(
                self.sweep.worker.role,
                f"AwsSolutions::AwsSolutions-IAM5[Resource::<{reports}.Arn>/runs/*]",
                "The worker writes and reads the objects of each run's report, whose keys are "
                "only known at run time; limited to the runs/ prefix of the report bucket.",
            )
            _acknowledge(
                self.sweep.report_access_logs,
                "AwsSolutions::AwsSolutions-S1",
                "This bucket receives the report bucket's server access logs; logging it in "
                "turn would loop.",
            )
            _acknowledge(
                self.sweep.work_dead_letters,
                "AwsSolutions::AwsSolutions-SQS3",
                "This queue is itself the dead-letter queue of the sweep's work queue.",
            )
        for function in functions:
            _acknowledge(
                function.role,
                "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
                "X-Ray's PutTraceSegments and PutTelemetryRecords support no resource-level "
                "permissions (added by Tracing.ACTIVE); so do s3:ListAllMyBuckets, "
                "s3express:ListAllMyDirectoryBuckets, s3tables:ListTableBuckets, "
                "tag:GetResources and organizations:ListAccounts (sweep).",
            )
        if self.props.organization is not None:
            for reader in self.readers:
                _acknowledge(
                    reader.role,
                    "AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:iam::*:role/"
                    f"{self.props.organization.member_role_name}]",
                    "The reader role has the same name in every member account, and accounts "
                    "join the organization over time; the statement is narrowed to roles of "
                    "this organization with the aws:ResourceOrgID condition.",
                )
        dead_letter_queues = [monitor.failure_queue, monitor.delivery_dead_letter_queue]
        if monitor.lifecycle.grace_dead_letters is not None:
            dead_letter_queues.append(monitor.lifecycle.grace_dead_letters)
        for queue in dead_letter_queues:
            _acknowledge(
                queue,
                "AwsSolutions::AwsSolutions-SQS3",
                "This queue is itself the dead-letter queue (failure destination) of the monitor.",
            )


class RegionalForwarderStack(Stack):
    """In each watched region but the home one: this account's S3 events, sent home."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        home_region: str,
        event_names: tuple[str, ...],
        heartbeat: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.forwarder = EventForwarder(
            self,
            "Forwarder",
            target_bus_arn=default_bus_arn(home_region),
            event_names=event_names,
        )
        self.heartbeat = (
            HeartbeatSource(self, "Heartbeat", rate=heartbeat) if heartbeat is not None else None
        )


def _bus_of(rule: Rule) -> str | None:
    """The rule's bus as the template gives it: None for the default bus that AWS services put
    events on, ``default`` for schedules (only the default bus has them)."""
    resource = cast(CfnRule, rule.node.default_child)
    if resource.schedule_expression is not None:
        return DEFAULT_BUS
    bus = resource.event_bus_name
    return None if bus in (None, DEFAULT_BUS) else bus


def _acknowledge(scope: IConstruct | None, finding_id: str, reason: str) -> None:
    assert scope is not None
    Validations.of(scope).acknowledge(Acknowledgment(id=finding_id, reason=reason))


def skip_checkov_checks(scope: IConstruct) -> None:
    """Writes ``Metadata.checkov.skip`` (check id and reason) on every resource it applies to."""
    for construct in scope.node.find_all():
        if not isinstance(construct, CfnResource):
            continue
        skips = list(CHECKOV_SKIPS.get(construct.cfn_resource_type, []))
        if construct.cfn_resource_type == "AWS::S3::Bucket" and "AccessLogs" in construct.node.path:
            skips += ACCESS_LOG_BUCKET_SKIPS
        if skips:
            construct.add_metadata(
                "checkov", {"skip": [{"id": check, "comment": why} for check, why in skips]}
            )
