"""The construct that owns the monitor: rule, function, topic, queues, alarms, optional trail."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_cloudtrail as cloudtrail
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
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

from functions.drift_monitor.settings import DEFAULT_CONCURRENCY, METRICS_NAMESPACE, SERVICE_NAME

from .config import MonitorProps

# Must equal the aws-lambda-powertools pin in pyproject.toml: the tests run against that version.
POWERTOOLS_VERSION = "3.37.0"
RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64
FUNCTION_CODE = Path(__file__).resolve().parent.parent / "functions"
HANDLER = "drift_monitor.handler.lambda_handler"
SWEEP_HANDLER = "drift_monitor.sweep_handler.lambda_handler"
# The longest a Lambda function may run; the sweep stops starting buckets a minute before it.
SWEEP_TIMEOUT = Duration.minutes(15)
MONITORED_EVENTS = ("CreateBucket", "PutBucketEncryption", "DeleteBucketEncryption")
LOG_RETENTION = logs.RetentionDays.ONE_YEAR
QUEUE_RETENTION = Duration.days(14)


def powertools_layer_parameter() -> str:
    """The public SSM parameter that Powertools publishes for exactly this release."""
    runtime = RUNTIME.name  # e.g. python3.14
    return f"/aws/service/powertools/python/arm64/{runtime}/{POWERTOOLS_VERSION}"


class EncryptionDriftMonitor(Construct):
    """Watches S3 CloudTrail events and alerts when a bucket's default encryption drifts; sweeps
    every bucket on a schedule (unless turned off) and sends one digest per run."""

    def __init__(self, scope: Construct, construct_id: str, *, props: MonitorProps) -> None:
        super().__init__(scope, construct_id)

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
        self.topic = sns.Topic(
            self,
            "AlertTopic",
            display_name="S3 encryption drift",
            master_key=self.key,
            enforce_ssl=True,
        )
        for address in props.alert_emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(address))

        self.failure_queue = self._queue("FailureQueue")
        self.delivery_dead_letter_queue = self._queue("DeliveryDeadLetterQueue")

        self._powertools = lambda_.LayerVersion.from_layer_version_arn(
            self,
            "Powertools",
            props.powertools_layer_arn
            or ssm.StringParameter.value_for_string_parameter(self, powertools_layer_parameter()),
        )
        self.function = self._event_function(props)
        self.function.configure_async_invoke(
            on_failure=destinations.SqsDestination(self.failure_queue),
            retry_attempts=2,
            max_event_age=Duration.hours(6),
        )

        self.rule = events.Rule(
            self,
            "S3EncryptionChangeRule",
            description="S3 bucket creations and default-encryption changes, successful calls only",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["AWS API Call via CloudTrail"],
                detail={
                    "eventSource": ["s3.amazonaws.com"],
                    "eventName": list(MONITORED_EVENTS),
                    "errorCode": [{"exists": False}],
                },
            ),
        )
        self.rule.add_target(
            targets.LambdaFunction(
                self.function,
                dead_letter_queue=self.delivery_dead_letter_queue,
                retry_attempts=185,
                max_event_age=Duration.hours(24),
            )
        )

        self.sweep_function: lambda_.Function | None = None
        self.sweep_rule: events.Rule | None = None
        if props.sweep_schedule is not None:
            self._sweep(props, props.sweep_schedule)

        self._alarms()
        self.trail = self._trail() if props.create_trail else None

    def _queue(self, construct_id: str) -> sqs.Queue:
        return sqs.Queue(
            self,
            construct_id,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=QUEUE_RETENTION,
        )

    def _event_function(self, props: MonitorProps) -> lambda_.Function:
        role, log_group = self._role_and_logs(
            "Function",
            "Reads S3 default encryption and tags, publishes drift alerts",
            s3_actions=["s3:GetEncryptionConfiguration", "s3:GetBucketTagging"],
        )
        self.failure_queue.grant_send_messages(role)
        return self._lambda(
            "Function",
            description="Evaluates S3 default encryption against the policy on every change",
            handler=HANDLER,
            role=role,
            log_group=log_group,
            memory_size=256,
            timeout=Duration.seconds(60),
            environment={
                "ALERT_TOPIC_ARN": self.topic.topic_arn,
                "FAILURE_QUEUE_URL": self.failure_queue.queue_url,
                "ENCRYPTION_POLICY": props.policy.to_json(),
            },
        )

    def _sweep(self, props: MonitorProps, schedule: str) -> None:
        role, log_group = self._role_and_logs(
            "SweepFunction",
            "Lists every bucket, reads its default encryption, location and tags, publishes "
            "the sweep digest",
            s3_actions=[
                "s3:GetEncryptionConfiguration",
                "s3:GetBucketTagging",
                "s3:GetBucketLocation",
            ],
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ListBucketsOfThisAccount",
                actions=["s3:ListAllMyBuckets"],
                # ListAllMyBuckets supports no resource-level permissions.
                resources=["*"],
            )
        )
        self.sweep_function = self._lambda(
            "SweepFunction",
            description="Evaluates every bucket's default encryption; one digest per run",
            handler=SWEEP_HANDLER,
            role=role,
            log_group=log_group,
            # More memory is more CPU and network for the sweep's concurrent reads.
            memory_size=1024,
            timeout=SWEEP_TIMEOUT,
            environment={
                "ALERT_TOPIC_ARN": self.topic.topic_arn,
                "ENCRYPTION_POLICY": props.policy.to_json(),
                "SWEEP_CONCURRENCY": str(DEFAULT_CONCURRENCY),
                "DIGEST_WHEN_COMPLIANT": str(props.digest_when_compliant).lower(),
            },
        )
        # A failed run is tried once more (it publishes only at its end, so a retry sends at most
        # one digest); after that the next scheduled run covers it, and the errors alarm fires.
        self.sweep_function.configure_async_invoke(
            retry_attempts=1, max_event_age=Duration.hours(1)
        )
        self.sweep_rule = events.Rule(
            self,
            "SweepSchedule",
            description="Runs the S3 encryption sweep over every bucket",
            schedule=events.Schedule.expression(schedule),
        )
        self.sweep_rule.add_target(
            targets.LambdaFunction(
                self.sweep_function,
                dead_letter_queue=self.delivery_dead_letter_queue,
                retry_attempts=3,
                max_event_age=Duration.hours(1),
            )
        )

    def _role_and_logs(
        self, function_id: str, description: str, *, s3_actions: list[str]
    ) -> tuple[iam.Role, logs.LogGroup]:
        """A role of the function's own: its log group, these S3 reads in this account, and
        publishing to the alert topic. Nothing else."""
        log_group = logs.LogGroup(
            self, f"{function_id}Logs", retention=LOG_RETENTION, removal_policy=RemovalPolicy.RETAIN
        )
        role = iam.Role(
            self,
            f"{function_id}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=description,
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteOwnLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_group.log_group_arn],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadBucketsInThisAccount",
                actions=s3_actions,
                resources=["arn:aws:s3:::*"],
                conditions={"StringEquals": {"s3:ResourceAccount": Aws.ACCOUNT_ID}},
            )
        )
        # Not topic.grant_publish: it grants kms:GenerateDataKey*, wider than SNS needs.
        role.add_to_policy(
            iam.PolicyStatement(
                sid="PublishAlerts", actions=["sns:Publish"], resources=[self.topic.topic_arn]
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="EncryptAlertsForTheTopic",
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[self.key.key_arn],
            )
        )
        return role, log_group

    def _lambda(
        self,
        construct_id: str,
        *,
        description: str,
        handler: str,
        role: iam.Role,
        log_group: logs.LogGroup,
        memory_size: int,
        timeout: Duration,
        environment: dict[str, str],
    ) -> lambda_.Function:
        return lambda_.Function(
            self,
            construct_id,
            description=description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=handler,
            code=lambda_.Code.from_asset(
                str(FUNCTION_CODE), exclude=["**/__pycache__", "**/*.pyc", "**/.*"]
            ),
            layers=[self._powertools],
            role=role,
            memory_size=memory_size,
            timeout=timeout,
            tracing=lambda_.Tracing.ACTIVE,
            logging_format=lambda_.LoggingFormat.JSON,
            log_group=log_group,
            environment={
                **environment,
                "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            },
        )

    def _alarms(self) -> None:
        action = cloudwatch_actions.SnsAction(self.topic)
        alarms = {
            "FunctionErrorsAlarm": (
                self.function.metric_errors(period=Duration.minutes(5), statistic="Sum"),
                "The drift monitor function failed; the events are being retried or kept in the "
                "failure queue.",
            ),
            "FailureQueueAlarm": (
                self.failure_queue.metric_approximate_number_of_messages_visible(
                    period=Duration.minutes(5), statistic="Maximum"
                ),
                "Events the drift monitor could not process are waiting in its failure queue.",
            ),
            "DeliveryDeadLetterQueueAlarm": (
                self.delivery_dead_letter_queue.metric_approximate_number_of_messages_visible(
                    period=Duration.minutes(5), statistic="Maximum"
                ),
                "EventBridge could not deliver S3 events or the sweep schedule to the drift "
                "monitor's functions.",
            ),
        }
        if self.sweep_function is not None:
            alarms["SweepErrorsAlarm"] = (
                self.sweep_function.metric_errors(period=Duration.minutes(5), statistic="Sum"),
                "The scheduled S3 encryption sweep failed; no digest was sent for this run.",
            )
        for construct_id, (metric, description) in alarms.items():
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
            alarm.add_alarm_action(action)

    def _private_bucket(self, construct_id: str, **extra: Any) -> s3.Bucket:
        return s3.Bucket(
            self,
            construct_id,
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=RemovalPolicy.RETAIN,
            **extra,
        )

    def _trail(self) -> cloudtrail.Trail:
        access_logs = self._private_bucket("TrailAccessLogs")
        trail_bucket = self._private_bucket(
            "TrailBucket",
            versioned=True,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="trail-bucket/",
        )
        trail_key = kms.Key(
            self,
            "TrailKey",
            description="Encrypts the S3 encryption drift monitor's CloudTrail log files",
            enable_key_rotation=True,
        )
        # The Trail construct does not grant CloudTrail the use of a key it is given.
        cloudtrail_principal = iam.ServicePrincipal("cloudtrail.amazonaws.com")
        trail_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudTrailToEncryptLogs",
                principals=[cloudtrail_principal],
                actions=["kms:GenerateDataKey"],
                resources=["*"],
                conditions={
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                    "StringLike": {
                        "kms:EncryptionContext:aws:cloudtrail:arn": (
                            f"arn:{Aws.PARTITION}:cloudtrail:*:{Aws.ACCOUNT_ID}:trail/*"
                        )
                    },
                },
            )
        )
        trail_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudTrailToDescribeKey",
                principals=[cloudtrail_principal],
                actions=["kms:DescribeKey"],
                resources=["*"],
            )
        )
        return cloudtrail.Trail(
            self,
            "Trail",
            bucket=trail_bucket,
            encryption_key=trail_key,
            is_multi_region_trail=True,
            include_global_service_events=True,
            enable_file_validation=True,
            management_events=cloudtrail.ReadWriteType.WRITE_ONLY,
            send_to_cloud_watch_logs=True,
            cloud_watch_logs_retention=LOG_RETENTION,
        )
