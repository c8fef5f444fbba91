"""The core of the monitor: the alert topic and its key, the event function and its rule, the
queues that keep what could not be processed, the alarms, and the optional trail."""

from __future__ import annotations

from typing import Any

from aws_cdk import Aws, Duration, RemovalPolicy, Tags
from aws_cdk import aws_cloudtrail as cloudtrail
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from functions.drift_monitor.domain.permissions import EVENT_BUCKET_READS, PUT_ENCRYPTION
from functions.drift_monitor.domain.settings import Mode

from .config import MonitorProps
from .forwarding import CREATIONS, s3_change_pattern
from .functions import (
    LOG_RETENTION,
    FunctionSpec,
    MonitoredFunction,
    data_key,
    powertools_layer_parameter,
)
from .lifecycle import AlertLifecycle

HANDLER = "drift_monitor.handlers.event.lambda_handler"
QUEUE_RETENTION = Duration.days(14)


class EncryptionDriftMonitor(Construct):
    """Watches S3 CloudTrail events on this account's default bus and alerts when a bucket's
    default encryption drifts. Exposes what the sweep and the organization plumbing build on:
    the topic, the keys, the event function, its layer and the alarm helper."""

    def __init__(self, scope: Construct, construct_id: str, *, props: MonitorProps) -> None:
        super().__init__(scope, construct_id)
        self.policy = props.policy

        self.key = kms.Key(
            self,
            "AlertKey",
            description="Encrypts the S3 encryption drift monitor's alert topic",
            enable_key_rotation=True,
        )
        # CloudWatch alarms publish to the topic, so CloudWatch must be able to use its key.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            )
        )
        self.data_key = data_key(
            self,
            "DataKey",
            "Encrypts the S3 encryption drift monitor's logs, sweep table and reports",
        )
        self.topic = sns.Topic(
            self,
            "AlertTopic",
            display_name="S3 encryption drift",
            master_key=self.key,
            enforce_ssl=True,
        )
        for address in props.alert_emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(address))
        self._alarm_action = cloudwatch_actions.SnsAction(self.topic)

        self.failure_queue = self.queue(self, "FailureQueue")
        self.delivery_dead_letter_queue = self.queue(self, "DeliveryDeadLetterQueue")

        self.layer = lambda_.LayerVersion.from_layer_version_arn(
            self,
            "Powertools",
            props.powertools_layer_arn
            or ssm.StringParameter.value_for_string_parameter(self, powertools_layer_parameter()),
        )
        self.event_function = self._event_function(props)
        self.function = self.event_function.function
        self.function.configure_async_invoke(
            on_failure=destinations.SqsDestination(self.failure_queue),
            retry_attempts=2,
            max_event_age=Duration.hours(6),
        )

        self.watched_events = props.watched_events
        self.lifecycle = AlertLifecycle(self, "Lifecycle", props=props, monitor=self)
        self.rule, self.new_bucket_rule = self.watch(self)
        self.watchdog = self._watchdog(props.heartbeat) if props.heartbeat else None
        self._alarms()
        self.trail = self._trail() if props.create_trail else None

    def queue(self, scope: Construct, construct_id: str, **extra: Any) -> sqs.Queue:
        # SSE-SQS rather than a customer managed key: EventBridge, Lambda destinations and the
        # event source mapping would all need grants that CDK writes with wildcard KMS actions.
        return sqs.Queue(
            scope,
            construct_id,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=QUEUE_RETENTION,
            **extra,
        )

    def table(
        self,
        scope: Construct,
        construct_id: str,
        *,
        partition_key: str,
        sort_key: str | None = None,
        removal_policy: RemovalPolicy,
    ) -> dynamodb.Table:
        """On demand, point-in-time recovery, encrypted with the data key; rows expire at their
        ``expiresAt`` (DynamoDB's TTL)."""
        return dynamodb.Table(
            scope,
            construct_id,
            partition_key=dynamodb.Attribute(
                name=partition_key, type=dynamodb.AttributeType.STRING
            ),
            sort_key=(
                None
                if sort_key is None
                else dynamodb.Attribute(name=sort_key, type=dynamodb.AttributeType.STRING)
            ),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=self.data_key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute="expiresAt",
            removal_policy=removal_policy,
        )

    def new_function(
        self, scope: Construct, function_id: str, spec: FunctionSpec
    ) -> MonitoredFunction:
        """A function from the monitor's asset and layer, logging with its key."""
        return MonitoredFunction(scope, function_id, spec, layer=self.layer, data_key=self.data_key)

    def watch(
        self, scope: Construct, prefix: str = "", bus: events.IEventBus | None = None
    ) -> tuple[events.Rule, events.Rule | None]:
        """The rules on ``bus`` (default: this account's default bus) that bring S3 changes to
        the event function: bucket creations through the grace queue when there is one, the
        rest at once. Returns the immediate rule and the creations' rule (or None)."""
        grace = self.lifecycle.grace_queue
        immediate = [name for name in self.watched_events if grace is None or name not in CREATIONS]
        rule = events.Rule(
            scope,
            f"{prefix}S3EncryptionChangeRule",
            description="S3 bucket changes that can change a default-encryption verdict, "
            "successful calls only",
            event_bus=bus,
            event_pattern=s3_change_pattern(immediate),
        )
        self.route_to_function(rule)
        if grace is None:
            return rule, None
        creations = events.Rule(
            scope,
            f"{prefix}NewBucketRule",
            description="S3 bucket creations, evaluated after the new-bucket grace period",
            event_bus=bus,
            event_pattern=s3_change_pattern(CREATIONS),
        )
        creations.add_target(
            targets.SqsQueue(
                grace,
                dead_letter_queue=self.delivery_dead_letter_queue,
                retry_attempts=185,
                max_event_age=Duration.hours(24),
            )
        )
        return rule, creations

    def route_to_function(self, rule: events.Rule) -> None:
        """Events matched by ``rule`` reach the event function, retried for a day, then kept."""
        rule.add_target(
            targets.LambdaFunction(
                self.function,
                dead_letter_queue=self.delivery_dead_letter_queue,
                retry_attempts=185,
                max_event_age=Duration.hours(24),
            )
        )

    def allow_publishing(self, monitored: MonitoredFunction) -> None:
        # Not topic.grant_publish: it grants kms:GenerateDataKey*, wider than SNS needs.
        monitored.allow("PublishAlerts", ["sns:Publish"], [self.topic.topic_arn])
        monitored.use_key("EncryptAlertsForTheTopic", self.key)

    def alarm(self, construct_id: str, metric: cloudwatch.IMetric, description: str) -> None:
        """Fires on the first occurrence in five minutes and notifies the alert topic."""
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        alarm.add_alarm_action(self._alarm_action)

    def _event_function(self, props: MonitorProps) -> MonitoredFunction:
        environment = {
            "ALERT_TOPIC_ARN": self.topic.topic_arn,
            "FAILURE_QUEUE_URL": self.failure_queue.queue_url,
            "ENCRYPTION_POLICY": props.policy.to_json(),
            **props.reader_environment(),
        }
        monitored = self.new_function(
            self,
            "Function",
            FunctionSpec(
                handler=HANDLER,
                description="Evaluates S3 default encryption against the policy on every change",
                role_description="Reads S3 default encryption and tags, publishes drift alerts",
                memory_size=256,
                timeout=Duration.seconds(60),
                environment=environment,
            ),
        )
        monitored.read_buckets("ReadBucketsInThisAccount", EVENT_BUCKET_READS)
        monitored.read_other_kinds(lists=False, remediates=props.remediates, policy=props.policy)
        monitored.look_up_keys(props.policy)
        if props.remediation is not Mode.OFF:
            monitored.function.add_environment("REMEDIATION", props.remediation.value)
            monitored.function.add_environment(
                "REMEDIATION_LIMIT_PER_HOUR", str(props.remediation_limit_per_hour)
            )
        if props.remediates:
            monitored.read_buckets("RemediateBucketsInThisAccount", (PUT_ENCRYPTION,))
        self.allow_publishing(monitored)
        self.failure_queue.grant_send_messages(monitored.role)
        return monitored

    def _watchdog(self, rate: str) -> events.Rule:
        """At every heartbeat interval the event function looks for silent paths; the event's
        time is its clock (a late delivery judges the moment it was meant for)."""
        rule = events.Rule(
            self,
            "HeartbeatWatchdogRule",
            description="Looks for accounts and regions whose heartbeat stopped reaching the "
            "S3 encryption drift monitor",
            schedule=events.Schedule.expression(rate),
        )
        rule.add_target(
            targets.LambdaFunction(
                self.function,
                event=events.RuleTargetInput.from_object(
                    {"watchdog": "heartbeat", "time": events.EventField.time}
                ),
                dead_letter_queue=self.delivery_dead_letter_queue,
                retry_attempts=2,
                max_event_age=Duration.hours(1),
            )
        )
        return rule

    def _alarms(self) -> None:
        self.alarm(
            "FunctionErrorsAlarm",
            self.function.metric_errors(period=Duration.minutes(5), statistic="Sum"),
            "The drift monitor function failed; the events are being retried or kept in the "
            "failure queue.",
        )
        self.alarm(
            "FailureQueueAlarm",
            self.failure_queue.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5), statistic="Maximum"
            ),
            "Events the drift monitor could not process are waiting in its failure queue.",
        )
        self.alarm(
            "DeliveryDeadLetterQueueAlarm",
            self.delivery_dead_letter_queue.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5), statistic="Maximum"
            ),
            "EventBridge could not deliver S3 events or the sweep schedule to the drift "
            "monitor's functions.",
        )

    def private_bucket(self, scope: Construct, construct_id: str, **extra: Any) -> s3.Bucket:
        """Blocked from public access, SSL-only, owner-enforced, kept on stack deletion, and
        tagged with the policy's exempt tag: the stack sets these buckets' encryption (server
        access logs, for one, can only go to SSE-S3), and a policy listing only your own keys
        should not report the monitor's buckets."""
        settings: dict[str, Any] = {"encryption": s3.BucketEncryption.S3_MANAGED, **extra}
        bucket = s3.Bucket(
            scope,
            construct_id,
            # As S3 sets new buckets up since April 2026 (requireSseCBlocked's default).
            blocked_encryption_types=[s3.BlockedEncryptionType.SSE_C],
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=RemovalPolicy.RETAIN,
            **settings,
        )
        tag = self.policy.exempt_tag
        if tag is not None:
            Tags.of(bucket).add(tag.key, tag.value or "true")
        return bucket

    def _trail(self) -> cloudtrail.Trail:
        access_logs = self.private_bucket(self, "TrailAccessLogs", versioned=True)
        trail_key = kms.Key(
            self,
            "TrailKey",
            description="Encrypts the S3 encryption drift monitor's CloudTrail log files",
            enable_key_rotation=True,
        )
        trail_bucket = self.private_bucket(
            self,
            "TrailBucket",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=trail_key,
            bucket_key_enabled=True,
            versioned=True,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="trail-bucket/",
        )
        # The Trail construct does not grant CloudTrail the use of a key it is given. As the
        # CloudTrail User Guide ("Configure AWS KMS key policies for CloudTrail") has it:
        # kms:GenerateDataKey* to encrypt, kms:Decrypt because the trail bucket uses an S3 Bucket
        # Key, each for this trail only (aws:SourceArn), and DescribeKey.
        trail_name = f"{Aws.STACK_NAME}-s3-encryption-monitor"
        trail_arn = (
            f"arn:{Aws.PARTITION}:cloudtrail:{Aws.REGION}:{Aws.ACCOUNT_ID}:trail/{trail_name}"
        )
        cloudtrail_principal = iam.ServicePrincipal("cloudtrail.amazonaws.com")
        trail_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudTrailToEncryptLogs",
                principals=[cloudtrail_principal],
                actions=["kms:GenerateDataKey*"],
                resources=["*"],
                conditions={
                    "StringEquals": {"aws:SourceArn": trail_arn},
                    "StringLike": {
                        "kms:EncryptionContext:aws:cloudtrail:arn": (
                            f"arn:{Aws.PARTITION}:cloudtrail:*:{Aws.ACCOUNT_ID}:trail/*"
                        )
                    },
                },
            )
        )
        for sid, action in (
            ("AllowCloudTrailToDecryptWithTheBucketKey", "kms:Decrypt"),
            ("AllowCloudTrailToDescribeKey", "kms:DescribeKey"),
        ):
            trail_key.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=sid,
                    principals=[cloudtrail_principal],
                    actions=[action],
                    resources=["*"],
                    conditions={"StringEquals": {"aws:SourceArn": trail_arn}},
                )
            )
        trail_logs = logs.LogGroup(
            self,
            "TrailLogs",
            retention=LOG_RETENTION,
            encryption_key=self.data_key,
            removal_policy=RemovalPolicy.RETAIN,
        )
        return cloudtrail.Trail(
            self,
            "Trail",
            trail_name=trail_name,
            bucket=trail_bucket,
            encryption_key=trail_key,
            is_multi_region_trail=True,
            include_global_service_events=True,
            enable_file_validation=True,
            management_events=cloudtrail.ReadWriteType.WRITE_ONLY,
            send_to_cloud_watch_logs=True,
            cloud_watch_log_group=trail_logs,
        )
