"""The sweep on AWS's own engine: a scheduled starter, a work queue, and a worker function.

The starter queues one item per account; the worker evaluates one listing page per item and
queues the next page, so any number of buckets and accounts is swept in parallel pages that each
finish well within a Lambda timeout. A DynamoDB table counts the run's items, so the worker that
finishes the last one sends the run's single digest; the full report goes to a private,
encrypted, versioned bucket that expires old reports.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_s3 as s3
from constructs import Construct

from functions.drift_monitor.domain.permissions import (
    DESCRIBE_ORGANIZATION,
    FIND_TAGGED_BUCKETS,
    LIST_ACCOUNTS,
    LIST_BUCKETS,
    SWEEP_BUCKET_READS,
)
from functions.drift_monitor.domain.settings import DEFAULT_CONCURRENCY, DEFAULT_MAX_RECEIVES

from .config import MonitorProps
from .functions import FunctionSpec, MonitoredFunction
from .monitor import EncryptionDriftMonitor

STARTER_HANDLER = "drift_monitor.handlers.sweep_starter.lambda_handler"
WORKER_HANDLER = "drift_monitor.handlers.sweep_worker.lambda_handler"
# A work item is one listing page (up to 10,000 buckets); the worker stops starting buckets a
# minute before this and queues the rest of its page.
WORKER_TIMEOUT = Duration.minutes(5)
# Workers running at once, each reading SWEEP_CONCURRENCY buckets at a time.
WORKER_CONCURRENCY = 20
# Lambda's advice for an SQS event source: a visibility timeout of six times the function's.
WORK_VISIBILITY = Duration.minutes(30)
RUN_RETENTION_DAYS = 30


@dataclass(frozen=True)
class SweepAccounts:
    """Which accounts a run covers besides the monitor's own."""

    explicit: tuple[str, ...] = ()
    organization: bool = False  # every active account, from Organizations ListAccounts


class SweepEngine(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        props: MonitorProps,
        schedule: str,
        monitor: EncryptionDriftMonitor,
        accounts: SweepAccounts,
    ) -> None:
        super().__init__(scope, construct_id)
        self.runs = monitor.table(
            self, "Runs", partition_key="pk", sort_key="sk", removal_policy=RemovalPolicy.DESTROY
        )
        self.report_access_logs = monitor.private_bucket(
            self,
            "ReportAccessLogs",
            versioned=True,
            lifecycle_rules=[_expire_after(props.report_retention_days)],
        )
        self.reports = monitor.private_bucket(
            self,
            "Reports",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=monitor.data_key,
            bucket_key_enabled=True,
            versioned=True,
            server_access_logs_bucket=self.report_access_logs,
            server_access_logs_prefix="reports/",
            lifecycle_rules=[_expire_after(props.report_retention_days)],
        )
        self.work_dead_letters = monitor.queue(self, "WorkDeadLetterQueue")
        self.work = monitor.queue(
            self,
            "WorkQueue",
            visibility_timeout=WORK_VISIBILITY,
            dead_letter_queue={
                "queue": self.work_dead_letters,
                "max_receive_count": DEFAULT_MAX_RECEIVES,
            },
        )
        self.starter = self._starter(monitor, accounts)
        self.worker = self._worker(props, monitor)

        self.schedule = events.Rule(
            self,
            "Schedule",
            description="Starts the S3 encryption sweep over every bucket",
            schedule=events.Schedule.expression(schedule),
        )
        self.schedule.add_target(
            targets.LambdaFunction(
                self.starter.function,
                dead_letter_queue=monitor.delivery_dead_letter_queue,
                retry_attempts=3,
                max_event_age=Duration.hours(1),
            )
        )
        monitor.alarm(
            "SweepErrorsAlarm",
            self.starter.function.metric_errors(period=Duration.minutes(5), statistic="Sum"),
            "The scheduled S3 encryption sweep could not start; no digest will come for this run.",
        )
        monitor.alarm(
            "SweepWorkerErrorsAlarm",
            self.worker.function.metric_errors(period=Duration.minutes(5), statistic="Sum"),
            "The sweep worker failed; its work item is being delivered again.",
        )
        monitor.alarm(
            "SweepWorkDeadLetterQueueAlarm",
            self.work_dead_letters.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5), statistic="Maximum"
            ),
            "Sweep work items failed every attempt; their run sends no digest until they are "
            "replayed.",
        )

    def _starter(
        self, monitor: EncryptionDriftMonitor, accounts: SweepAccounts
    ) -> MonitoredFunction:
        environment = {
            "WORK_QUEUE_URL": self.work.queue_url,
            "RUN_TABLE_NAME": self.runs.table_name,
            "SWEEP_ACCOUNTS": ",".join(accounts.explicit),
            "SWEEP_ORGANIZATION": str(accounts.organization).lower(),
        }
        starter = monitor.new_function(
            self,
            "StarterFunction",
            FunctionSpec(
                handler=STARTER_HANDLER,
                description="Starts a sweep run: one work item per account",
                role_description="Lists the accounts to sweep and queues their work items",
                memory_size=256,
                timeout=Duration.minutes(1),
                environment=environment,
            ),
        )
        # A failed start is tried once more (the run id is the schedule event's, so a retry
        # starts no second run); after that the errors alarm fires.
        starter.function.configure_async_invoke(retry_attempts=1, max_event_age=Duration.hours(1))
        starter.allow("StartRuns", ["dynamodb:PutItem"], [self.runs.table_arn])
        starter.use_key("UseTheSweepTableKey", monitor.data_key)
        self.work.grant_send_messages(starter.role)
        if accounts.organization:
            # ListAccounts supports no resource-level permissions.
            starter.allow("ListTheOrganizationsAccounts", [LIST_ACCOUNTS], ["*"])
        return starter

    def _worker(self, props: MonitorProps, monitor: EncryptionDriftMonitor) -> MonitoredFunction:
        environment = {
            "ALERT_TOPIC_ARN": monitor.topic.topic_arn,
            "ENCRYPTION_POLICY": props.policy.to_json(),
            "WORK_QUEUE_URL": self.work.queue_url,
            "RUN_TABLE_NAME": self.runs.table_name,
            "REPORT_BUCKET": self.reports.bucket_name,
            "SWEEP_CONCURRENCY": str(DEFAULT_CONCURRENCY),
            "DIGEST_WHEN_COMPLIANT": str(props.digest_when_compliant).lower(),
            "WORK_MAX_RECEIVES": str(DEFAULT_MAX_RECEIVES),
            # Directory and table buckets are listed per region: the watched ones (by default
            # the function's own region, which Lambda sets as AWS_REGION).
            **({"BUCKET_REGIONS": ",".join(props.regions)} if props.regions else {}),
            **props.reader_environment(),
        }
        delegated = props.organization is not None and props.organization.delegated_admin
        if delegated:
            # StackSets never deploy to the management account: the digest says so until the
            # ManagementAccount stacks exist there.
            environment["DELEGATED_ADMIN"] = "true"
        worker = monitor.new_function(
            self,
            "WorkerFunction",
            FunctionSpec(
                handler=WORKER_HANDLER,
                description="Evaluates one listing page of one account per work item; the last "
                "item of a run sends its digest",
                role_description="Lists and reads buckets, writes the sweep report, publishes "
                "the digest",
                # More memory is more CPU and network for the concurrent reads.
                memory_size=1024,
                timeout=WORKER_TIMEOUT,
                environment=environment,
            ),
        )
        worker.read_buckets("ReadBucketsInThisAccount", SWEEP_BUCKET_READS)
        worker.read_other_kinds(lists=True, remediates=False, policy=props.policy)
        worker.look_up_keys(props.policy)
        # Neither supports resource-level permissions; both only list.
        worker.allow("ListBucketsAndFindExemptOnes", [LIST_BUCKETS, FIND_TAGGED_BUCKETS], ["*"])
        if delegated:
            # No resource-level permissions either: it names the management account.
            worker.allow("FindTheManagementAccount", [DESCRIBE_ORGANIZATION], ["*"])
        worker.allow(
            "CountTheRun",
            [
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:Query",
            ],
            [self.runs.table_arn],
        )
        worker.allow(
            "WriteAndReadTheReport",
            ["s3:PutObject", "s3:GetObject"],
            [self.reports.arn_for_objects("runs/*")],
        )
        worker.allow(
            "ListTheReport",
            ["s3:ListBucket"],
            [self.reports.bucket_arn],
            {"StringLike": {"s3:prefix": ["runs/*"]}},
        )
        worker.use_key("UseTheDataKey", monitor.data_key)
        monitor.lifecycle.allow_sweep_writes(worker)
        monitor.allow_publishing(worker)
        self.work.grant_send_messages(worker.role)
        worker.function.add_event_source(
            event_sources.SqsEventSource(
                self.work,
                batch_size=1,
                max_concurrency=WORKER_CONCURRENCY,
                report_batch_item_failures=True,
            )
        )
        return worker


def _expire_after(days: int) -> s3.LifecycleRule:
    return s3.LifecycleRule(
        id="ExpireOldReports",
        expiration=Duration.days(days),
        noncurrent_version_expiration=Duration.days(30),
        abort_incomplete_multipart_upload_after=Duration.days(7),
    )
