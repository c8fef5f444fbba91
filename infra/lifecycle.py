"""The alert lifecycle (§11): the state table that makes one alert per drift possible, the delay
queue that gives new buckets their grace period, the optional outputs' permissions, and the
dashboard."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from functions.drift_monitor.aws.state_store import (
    KEY,
    KEY_ARN,
    KEYS_ATTRIBUTES,
    KEYS_INDEX,
    OPEN_ATTRIBUTES,
    OPEN_INDEX,
    OPEN_KEY,
)
from functions.drift_monitor.domain.permissions import (
    HEARTBEAT_READ,
    IMPORT_FINDINGS,
    KEYS_QUERY,
    PUT_EVENTS,
    SEND_MESSAGE,
    STATE_EVENT_WRITES,
    STATE_SWEEP_WRITES,
)
from functions.drift_monitor.domain.settings import (
    DEFAULT_MAX_RECEIVES,
    METRICS_NAMESPACE,
    SERVICE_NAME,
)

from .config import DEFAULT_BUS, MonitorProps
from .functions import MonitoredFunction

# Lambda's advice for an SQS event source: a visibility timeout of six times the function's.
GRACE_VISIBILITY = Duration.minutes(6)
GRACE_BATCH_SIZE = 10


class MonitorCore(Protocol):
    """What the lifecycle builds on, as the core monitor (``infra/monitor.py``) exposes it:
    declared here so that the monitor imports the lifecycle and not the other way round."""

    @property
    def data_key(self) -> kms.IKey: ...

    @property
    def event_function(self) -> MonitoredFunction: ...

    @property
    def function(self) -> lambda_.IFunction: ...

    # How the monitor makes its tables and queues (encrypted with its keys, as the stack needs).
    @property
    def table(self) -> Callable[..., dynamodb.Table]: ...

    @property
    def queue(self) -> Callable[..., sqs.Queue]: ...

    def alarm(self, construct_id: str, metric: cloudwatch.IMetric, description: str) -> None: ...


class AlertLifecycle(Construct):
    """Exposes ``table`` (every reader records its evaluations there) and ``grace_queue`` (None
    when new buckets are evaluated at once)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        props: MonitorProps,
        monitor: MonitorCore,
    ) -> None:
        super().__init__(scope, construct_id)
        self._security_hub = props.security_hub
        # Only rows of deleted buckets carry expiresAt. The open drifts live here: deleting the
        # stack must not forget them.
        self.table = monitor.table(
            self, "StateTable", partition_key=KEY, removal_policy=RemovalPolicy.RETAIN
        )
        # Sparse: only rows with something open carry its key, so a sweep reads an account and
        # region's open drift with one query and nothing of its compliant buckets.
        self.table.add_global_secondary_index(
            index_name=OPEN_INDEX,
            partition_key=dynamodb.Attribute(name=OPEN_KEY, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=KEY, type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.INCLUDE,
            non_key_attributes=list(OPEN_ATTRIBUTES),
        )
        function = monitor.event_function
        function.function.add_environment("STATE_TABLE_NAME", self.table.table_name)
        function.allow("RecordBucketStates", list(STATE_EVENT_WRITES), [self.table.table_arn])
        # §14: beats are recorded in the table; the watchdog and the digest read them back.
        self._heartbeat = _heartbeat_environment(props)
        for name, value in self._heartbeat.items():
            function.function.add_environment(name, value)
        if self._heartbeat:
            function.allow(
                "ReadHeartbeats",
                [HEARTBEAT_READ],
                [f"{self.table.table_arn}/index/{OPEN_INDEX}"],
            )
        function.use_key("UseTheDataKey", monitor.data_key)
        self._outputs(props, function)

        self.grace_queue: sqs.Queue | None = None
        self.grace_dead_letters: sqs.Queue | None = None
        if props.new_bucket_grace_seconds > 0:
            self.grace_queue, self.grace_dead_letters = self._function_queue(
                monitor,
                function,
                "NewBucket",
                batch_size=GRACE_BATCH_SIZE,
                failed="Bucket creations failed every evaluation after the new-bucket grace "
                "period; they wait in the dead-letter queue.",
                delivery_delay=Duration.seconds(props.new_bucket_grace_seconds),
            )

        self.key_queue: sqs.Queue | None = None
        if props.policy.key_checks:
            self.key_queue = self._key_health(monitor, function)

    def _key_health(self, monitor: MonitorCore, function: MonitoredFunction) -> sqs.Queue:
        """§15: the key index (key ARN -> the rows of the buckets using it) and the queue that
        spreads a key event's re-evaluations over invocations when a key has many buckets."""
        self.table.add_global_secondary_index(
            index_name=KEYS_INDEX,
            partition_key=dynamodb.Attribute(name=KEY_ARN, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=KEY, type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.INCLUDE,
            non_key_attributes=list(KEYS_ATTRIBUTES),
        )
        function.allow(
            "FindBucketsByKey", [KEYS_QUERY], [f"{self.table.table_arn}/index/{KEYS_INDEX}"]
        )
        queue, _ = self._function_queue(
            monitor,
            function,
            "KeyEvent",
            batch_size=1,
            failed="Re-evaluations after a KMS key event failed every attempt; they wait in the "
            "dead-letter queue (the next sweep reads those buckets again).",
        )
        function.function.add_environment("KEY_QUEUE_URL", queue.queue_url)
        function.allow("QueueKeyEventReevaluations", [SEND_MESSAGE], [queue.queue_arn])
        return queue

    def _function_queue(
        self,
        monitor: MonitorCore,
        function: MonitoredFunction,
        name: str,
        *,
        batch_size: int,
        failed: str,
        **extra: Any,
    ) -> tuple[sqs.Queue, sqs.Queue]:
        """A queue the event function consumes (failed records return to it), its dead-letter
        queue after the last receive, and an alarm (``failed``) on what waits there."""
        dead_letters = monitor.queue(self, f"{name}DeadLetterQueue")
        queue = monitor.queue(
            self,
            f"{name}Queue",
            visibility_timeout=GRACE_VISIBILITY,
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=dead_letters, max_receive_count=DEFAULT_MAX_RECEIVES
            ),
            **extra,
        )
        function.function.add_event_source(
            event_sources.SqsEventSource(
                queue, batch_size=batch_size, report_batch_item_failures=True
            )
        )
        monitor.alarm(
            f"{name}DeadLetterQueueAlarm",
            dead_letters.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5), statistic="Maximum"
            ),
            failed,
        )
        return queue, dead_letters

    def allow_sweep_writes(self, worker: MonitoredFunction) -> None:
        """The sweep queries the open rows and rewrites those that moved; with Security Hub on,
        it imports the open drifts and those it finds gone."""
        worker.function.add_environment("STATE_TABLE_NAME", self.table.table_name)
        worker.allow(
            "RecordBucketStates",
            list(STATE_SWEEP_WRITES),
            [self.table.table_arn, f"{self.table.table_arn}/index/{OPEN_INDEX}"],
        )
        if self._security_hub:
            self._allow_security_hub(worker)
        # With the heartbeat on, the digest lists silent paths (the same index query).
        for name, value in self._heartbeat.items():
            worker.function.add_environment(name, value)

    def _outputs(self, props: MonitorProps, function: MonitoredFunction) -> None:
        """Each output's permission exists only when it is turned on."""
        if props.security_hub:
            self._allow_security_hub(function)
        if props.event_bus_output is not None:
            bus = props.event_bus_output
            if bus == DEFAULT_BUS:
                bus = f"arn:{Aws.PARTITION}:events:{Aws.REGION}:{Aws.ACCOUNT_ID}:event-bus/default"
            function.function.add_environment("OUTPUT_EVENT_BUS", bus)
            function.allow("PutAlertsOnTheEventBus", [PUT_EVENTS], [bus])

    @staticmethod
    def _allow_security_hub(function: MonitoredFunction) -> None:
        product = (
            f"arn:{Aws.PARTITION}:securityhub:{Aws.REGION}:{Aws.ACCOUNT_ID}:"
            f"product/{Aws.ACCOUNT_ID}/default"
        )
        function.function.add_environment("SECURITY_HUB_PRODUCT_ARN", product)
        function.allow("ImportFindingsIntoSecurityHub", [IMPORT_FINDINGS], [product])


def _heartbeat_environment(props: MonitorProps) -> dict[str, str]:
    minutes = props.heartbeat_minutes
    if minutes is None:
        return {}
    regions = ",".join(props.regions) if props.regions else Aws.REGION
    return {"HEARTBEAT_MINUTES": str(minutes), "HEARTBEAT_REGIONS": regions}


class MonitorDashboard(Construct):
    """One page for operators: what was evaluated and decided, what is open, what waits."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        monitor: MonitorCore,
        queues: dict[str, sqs.IQueue],
    ) -> None:
        super().__init__(scope, construct_id)
        period = Duration.hours(1)

        def metric(name: str, label: str, statistic: str = "Sum") -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name=name,
                dimensions_map={"service": SERVICE_NAME},
                statistic=statistic,
                period=period,
                label=label,
            )

        statuses = [
            metric("CompliantBuckets", "compliant"),
            metric("Drifts", "drift"),
            metric("Unverifiable", "unverifiable"),
            metric("ExemptBuckets", "exempt"),
            metric("VanishedBuckets", "deleted"),
        ]
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            default_interval=Duration.days(7),
            widgets=[
                [
                    cloudwatch.GraphWidget(
                        title="Evaluations by status (events and sweeps)",
                        left=statuses,
                        stacked=True,
                        width=12,
                    ),
                    cloudwatch.GraphWidget(
                        title="Alerts sent, repeats suppressed, drifts resolved",
                        left=[
                            metric("AlertsSent", "alerts sent"),
                            metric("SuppressedRepeats", "repeats suppressed"),
                            metric("Resolved", "resolved"),
                        ],
                        width=12,
                    ),
                ],
                [
                    cloudwatch.SingleValueWidget(
                        title="Open drift at the last sweep (drift + unverifiable)",
                        metrics=[
                            metric("SweepOpenDrift", "open drift", statistic="Maximum"),
                        ],
                        width=8,
                    ),
                    cloudwatch.GraphWidget(
                        title="Invalid and ignored events",
                        left=[
                            metric("InvalidEvents", "invalid (kept in the failure queue)"),
                            metric("IgnoredFailedCalls", "failed calls ignored"),
                            metric("SupersededEvaluations", "older than the recorded state"),
                        ],
                        width=16,
                    ),
                ],
                [
                    cloudwatch.GraphWidget(
                        title="Sweep duration (seconds) and coverage (buckets swept)",
                        left=[metric("SweepDurationSeconds", "duration", statistic="Maximum")],
                        right=[
                            metric("SweptBuckets", "buckets swept"),
                            metric("UnreachableAccounts", "accounts not reached"),
                        ],
                        width=12,
                    ),
                    cloudwatch.GraphWidget(
                        title="Queue depths (messages waiting)",
                        left=[
                            queue.metric_approximate_number_of_messages_visible(
                                period=Duration.minutes(5), statistic="Maximum", label=label
                            )
                            for label, queue in queues.items()
                        ],
                        width=12,
                    ),
                ],
                [
                    cloudwatch.GraphWidget(
                        title="Event function errors and throttles",
                        left=[
                            monitor.function.metric_errors(period=period, statistic="Sum"),
                            monitor.function.metric_throttles(period=period, statistic="Sum"),
                        ],
                        width=12,
                    ),
                    cloudwatch.GraphWidget(
                        title="Blind spots: silent event paths, verdicts events missed",
                        left=[
                            metric("SilentEventPaths", "silent paths (heartbeat)", "Maximum"),
                            metric("MissedByEvents", "missed by events (sweep)"),
                        ],
                        width=12,
                    ),
                ],
            ],
        )
