"""The sweep's two functions from the source tree on moto server: the starter queues one item per
account, the worker sweeps a page per item, counts it once, writes the report, and the last
item's worker sends the run's one digest."""

from __future__ import annotations

import csv
import io
import json
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from functions.drift_monitor.domain.settings import ConfigurationError
from functions.drift_monitor.domain.work import WorkItem
from functions.drift_monitor.sweep.settings import (
    load_sweep_starter_settings,
    load_sweep_worker_settings,
)
from infra.functions import FUNCTION_CODE
from infra.sweep_engine import STARTER_HANDLER, WORKER_HANDLER
from local.demo_account import DemoBucket, populate
from local.emulator import (
    ACCOUNT,
    Emulator,
    create_organization,
    create_run_table,
    create_state_table,
    moto_server,
)
from local.function import Invocation, LocalFunction, feed_from_queue, sqs_event

STATUS_METRICS = ("SweptBuckets", "CompliantBuckets", "Drifts", "Unverifiable", "ExemptBuckets",
                  "VanishedBuckets")  # fmt: skip
SCHEDULED = {"id": str(uuid.uuid4()), "time": "2026-11-26T06:00:00Z", "detail": {}}
MIXED = (
    DemoBucket("ledger", algorithm="aws:kms"),
    DemoBucket("assets", algorithm="AES256"),
    DemoBucket("cache", algorithm="AES256", tags={"encryption-monitor:exempt": "true"}),
)


class Account:
    """A moto server of its own (the sweep lists every bucket) with what the sweep needs: the
    topic and a subscriber, the work queue and its dead-letter queue, the table, the report
    bucket."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        session = boto3.Session(region_name=emulator.region)
        client = lambda service: session.client(service, endpoint_url=emulator.endpoint)  # noqa: E731
        self.sns, self.sqs, self.s3, self.dynamodb = (
            client(name) for name in ("sns", "sqs", "s3", "dynamodb")
        )
        self.topic_arn = self.sns.create_topic(Name="alerts")["TopicArn"]
        self.subscriber = self._queue("subscriber")
        self.sns.subscribe(
            TopicArn=self.topic_arn, Protocol="sqs", Endpoint=self._arn(self.subscriber)
        )
        self.dead_letters = self._queue("work-dead-letters")
        self.work = self._queue("work")
        self.sqs.set_queue_attributes(
            QueueUrl=self.work,
            Attributes={
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": self._arn(self.dead_letters), "maxReceiveCount": 3}
                )
            },
        )
        create_run_table(emulator, "runs")
        create_state_table(emulator, "states")
        self.s3.create_bucket(
            Bucket="sweep-reports", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        # As the stack deploys it: SSE-KMS, so it does not drift from the default policy itself.
        self.s3.put_bucket_encryption(
            Bucket="sweep-reports",
            ServerSideEncryptionConfiguration={
                "Rules": [
                    {
                        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"},
                        "BlockedEncryptionTypes": {"EncryptionType": ["SSE-C"]},
                    }
                ]
            },
        )

    def _queue(self, name: str) -> str:
        return str(self.sqs.create_queue(QueueName=name)["QueueUrl"])

    def _arn(self, url: str) -> str:
        attributes = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return str(attributes["Attributes"]["QueueArn"])

    def _start(self, handler: str, timeout: int, environment: dict[str, str]) -> LocalFunction:
        function = LocalFunction(
            FUNCTION_CODE,
            handler,
            {
                **self.emulator.environment(),
                "POWERTOOLS_TRACE_DISABLED": "true",
                "WORK_QUEUE_URL": self.work,
                "RUN_TABLE_NAME": "runs",
                "STATE_TABLE_NAME": "states",
                **environment,
            },
            function_arn=f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:sweep",
            timeout_seconds=timeout,
        )
        assert function.init_error is None, function.init_error
        return function

    def starter(self, **environment: str) -> LocalFunction:
        return self._start(STARTER_HANDLER, 60, environment)

    def worker(self, **environment: str) -> LocalFunction:
        return self._start(
            WORKER_HANDLER,
            300,
            {"ALERT_TOPIC_ARN": self.topic_arn, "REPORT_BUCKET": "sweep-reports", **environment},
        )

    def run(
        self, starter: dict[str, str] | None = None, **worker_environment: str
    ) -> tuple[LocalFunction, list[Invocation]]:
        """A run from start to digest. The worker starts after the starter has run: containers
        in one process share Powertools' logger, so only the newest one's logs are captured."""
        started = self.starter(**(starter or {})).invoke(SCHEDULED)
        assert started.ok, started.error
        worker = self.worker(**worker_environment)
        return worker, feed_from_queue(worker, self.sqs, self.work, self.emulator.region)

    def digests(self) -> list[dict[str, Any]]:
        messages = self.sqs.receive_message(
            QueueUrl=self.subscriber, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        ).get("Messages", [])
        return [json.loads(message["Body"]) for message in messages]

    def report(self) -> dict[str, str]:
        listed = self.s3.list_objects_v2(Bucket="sweep-reports").get("Contents", [])
        return {
            entry["Key"]: self.s3.get_object(Bucket="sweep-reports", Key=entry["Key"])["Body"]
            .read()
            .decode()
            for entry in listed
        }


@pytest.fixture
def account() -> Iterator[Account]:
    with moto_server() as emulator:
        yield Account(emulator)


def logged(function: LocalFunction, message: str) -> list[dict[str, Any]]:
    return [record for record in function.log_records() if record.get("message") == message]


def test_a_run_over_one_account_counts_logs_reports_and_sends_one_digest(account: Account) -> None:
    # Given an account with a compliant, a drifted and an exempt bucket
    populate(account.emulator, MIXED)

    # When the schedule starts a run and the worker takes its items
    worker, invocations = account.run()

    # Then two items swept the account (its listing page, and its directory and table buckets),
    # and one digest lists the drift
    assert [i.response for i in invocations] == [{"batchItemFailures": []}] * 2
    (digest,) = account.digests()
    document = json.loads(digest["Message"])
    assert [entry["bucket"] for entry in document["findings"]] == ["assets"]
    assert document["trigger"]["eventId"] == SCHEDULED["id"]
    assert document["account"] == ACCOUNT  # from the function's ARN, no STS call
    assert document["summary"]["buckets"] == 4  # the three, and the report bucket itself
    assert document["accounts"][ACCOUNT]["drift"] == 1
    assert document["report"]["uri"].startswith("s3://sweep-reports/runs/2026-11-26T06-00-00Z-")
    metrics = worker.metrics()
    assert {name: metrics[name] for name in STATUS_METRICS} == {
        "SweptBuckets": 4,  # the report bucket too
        "CompliantBuckets": 2,
        "Drifts": 1,
        "Unverifiable": 0,
        "ExemptBuckets": 1,
        "VanishedBuckets": 0,
    }
    assert metrics["SweepRunsFinished"] == 1
    assert "SweepDurationSeconds" in metrics
    # compliant buckets are counted, not logged one by one
    assert sorted(r["bucket"] for r in logged(worker, "Bucket evaluated")) == ["assets", "cache"]
    (finished,) = logged(worker, "Sweep finished")
    assert finished["complete"] is True


def test_the_report_holds_every_bucket_as_json_lines_and_csv(account: Account) -> None:
    populate(account.emulator, MIXED)
    account.run()

    report = account.report()
    # One part per item: the listing page's, and the (empty) one of the other kinds of bucket
    parts = sorted(key.rsplit("/", 1)[1] for key in report if "/buckets/" in key)
    assert parts == ["000000-000.csv", "000000-000.jsonl", "regional-000.csv", "regional-000.jsonl"]
    jsonl = "".join(body for key, body in report.items() if key.endswith(".jsonl"))
    csv_text = report[next(key for key in report if key.endswith("000000-000.csv"))]
    (manifest_key,) = [key for key in report if key.endswith("manifest.json")]
    lines = [json.loads(line) for line in jsonl.splitlines()]
    assert {line["bucket"]: line["status"] for line in lines} == {
        "assets": "DRIFT",
        "cache": "EXEMPT",
        "ledger": "COMPLIANT",
        "sweep-reports": "COMPLIANT",
    }
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    assert {row["bucket"]: row["violations"] for row in rows}["assets"] == "ALGORITHM_NOT_ALLOWED"
    assert {row["account"] for row in rows} == {ACCOUNT}
    manifest = json.loads(report[manifest_key])
    assert manifest["summary"]["buckets"] == 4
    assert sorted(manifest["files"]) == sorted(
        f"s3://sweep-reports/{key}" for key in report if "/buckets/" in key
    )
    (digest,) = account.digests()
    assert (
        json.loads(digest["Message"])["report"]["manifest"] == f"s3://sweep-reports/{manifest_key}"
    )


def test_pages_are_chained_and_each_counted_once(account: Account) -> None:
    # Given seven buckets and pages of three
    populate(account.emulator, tuple(DemoBucket(f"b-{i}", algorithm="aws:kms") for i in range(7)))

    _, invocations = account.run(SWEEP_PAGE_SIZE="3", DIGEST_WHEN_COMPLIANT="true")

    # Then three items (3 + 3 + 2 buckets, the report bucket among them) and the account's
    # other kinds of bucket make one run
    assert len(invocations) == 4
    (digest,) = account.digests()
    document = json.loads(digest["Message"])
    assert (document["summary"]["buckets"], document["summary"]["compliant"]) == (8, 8)


def test_a_duplicate_delivery_is_counted_once(account: Account) -> None:
    # Given a run's item delivered twice (queues deliver at least once)
    populate(account.emulator, MIXED)
    account.starter().invoke(SCHEDULED)
    (message,) = account.sqs.receive_message(QueueUrl=account.work, MaxNumberOfMessages=10)[
        "Messages"
    ]
    worker = account.worker()
    event = sqs_event(message, "arn:aws:sqs:eu-west-1:123456789012:work", "eu-west-1")

    first, second = worker.invoke(event), worker.invoke(event)
    feed_from_queue(worker, account.sqs, account.work, "eu-west-1")  # the other kinds' item

    # Then the second changes nothing and no second digest goes out
    assert first.ok and second.ok
    assert len(account.digests()) == 1
    assert logged(worker, "Duplicate delivery of a completed work item")


def test_an_item_out_of_time_queues_the_rest_of_its_page(account: Account) -> None:
    # Given a worker whose clock runs out after the first two buckets it starts
    populate(account.emulator, tuple(DemoBucket(f"b-{i}", algorithm="aws:kms") for i in range(5)))
    account.starter().invoke(SCHEDULED)
    worker = account.worker(DIGEST_WHEN_COMPLIANT="true")
    (message,) = account.sqs.receive_message(QueueUrl=account.work)["Messages"]

    @dataclass
    class ShortContext:
        invoked_function_arn: str = f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:sweep"
        function_name: str = "sweep"
        function_version: str = "$LATEST"
        memory_limit_in_mb: int = 1024
        aws_request_id: str = "r"
        calls: int = 0

        def get_remaining_time_in_millis(self) -> int:
            self.calls += 1
            return 100_000 if self.calls <= 2 else 1_000

    first = worker.invoke(sqs_event(message, "arn", "eu-west-1"), ShortContext())
    account.sqs.delete_message(QueueUrl=account.work, ReceiptHandle=message["ReceiptHandle"])

    # Then it stops early and the rest of the page becomes a new item, resumed where it stopped
    assert first.ok, first.error
    queued = account.sqs.receive_message(QueueUrl=account.work, MaxNumberOfMessages=10)["Messages"]
    items = sorted((WorkItem.from_json(m["Body"]) for m in queued), key=lambda i: i.listing)
    assert [(i.listing, i.page, i.part, i.after) for i in items] == [
        ("buckets", 0, 1, "b-2"),
        ("regional", 0, 0, None),  # the account's directory and table buckets, never cut short
    ]
    assert account.digests() == []
    for message in queued:
        account.sqs.change_message_visibility(
            QueueUrl=account.work, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )
    feed_from_queue(worker, account.sqs, account.work, "eu-west-1")
    (digest,) = account.digests()
    counts = json.loads(digest["Message"])["summary"]
    assert (counts["buckets"], counts["compliant"]) == (6, 6)


def test_an_account_whose_role_is_refused_is_reported_not_retried(account: Account) -> None:
    # Given a run over this account and one with no reader role
    populate(account.emulator, MIXED)

    worker, invocations = account.run(
        {"SWEEP_ACCOUNTS": "222222222222"}, MEMBER_ROLE_NAME="S3EncryptionMonitorReader"
    )

    # Then the other account is in the digest with the reason, and nothing was retried
    assert len(invocations) == 3  # this account's page and other kinds, the refused account
    (digest,) = account.digests()
    document = json.loads(digest["Message"])
    unreachable = document["accounts"]["222222222222"]
    assert "arn:aws:iam::222222222222:role/S3EncryptionMonitorReader" in unreachable["error"]
    assert document["unreachableAccounts"] == 1
    assert "1 unreachable" in digest["Subject"]
    assert worker.metrics()["UnreachableAccounts"] == 1


def test_an_item_failing_every_attempt_makes_the_run_incomplete(account: Account) -> None:
    # Given a listing that keeps failing after the client's retries
    populate(account.emulator, MIXED)
    account.starter().invoke(SCHEDULED)
    worker = account.worker()
    reader = sys.modules["drift_monitor.handlers.sweep_worker"].READER

    def failing(*_: Any, **__: Any) -> Any:
        raise ClientError({"Error": {"Code": "SlowDown", "Message": "slow"}}, "ListBuckets")

    reader.list_page = failing

    invocations = feed_from_queue(worker, account.sqs, account.work, "eu-west-1")

    # Then it is tried three times (the queue's maxReceiveCount), given up, and reported
    assert [bool(i.response["batchItemFailures"]) for i in invocations] == [True, True, False]
    (digest,) = account.digests()
    document = json.loads(digest["Message"])
    assert document["run"] == document["run"] | {"complete": False, "failedItems": 1}
    assert "(incomplete)" in digest["Subject"]
    assert worker.metrics()["FailedWorkItems"] == 1
    assert "failed after 3 attempts" in document["accounts"][ACCOUNT]["error"]


def test_a_message_that_is_no_work_item_goes_back_to_the_queue(account: Account) -> None:
    worker = account.worker()
    event = {"Records": [{"messageId": "m-1", "body": "{not json", "attributes": {}}]}

    invocation = worker.invoke(event)

    assert invocation.response == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}


@pytest.mark.parametrize(
    "accounts", [None, "222222222222", ["2222"], [f"{n:012d}" for n in range(1001)]]
)
def test_the_reader_probe_refuses_what_is_not_a_list_of_accounts(
    account: Account, accounts: Any
) -> None:
    invocation = account.worker().invoke({"probe": "readerRoles", "accounts": accounts})

    assert invocation.response == {"error": "accounts must be a list of at most 1000 account ids"}


def test_the_reader_probe_says_which_role_the_monitor_cannot_assume(account: Account) -> None:
    worker = account.worker(MEMBER_ROLE_NAME="S3EncryptionMonitorReader")

    invocation = worker.invoke({"probe": "readerRoles", "accounts": ["222222222222"]})

    assert invocation.ok, invocation.error
    (result,) = invocation.response["accounts"].values()
    assert result == {
        "ok": False,
        "error": "cannot assume arn:aws:iam::222222222222:role/S3EncryptionMonitorReader: "
        "AccessDenied",
    }


def test_the_organization_s_active_accounts_are_swept(account: Account) -> None:
    (member_id,) = create_organization(account.emulator, ["m"])
    starter = account.starter(SWEEP_ORGANIZATION="true")

    invocation = starter.invoke(SCHEDULED)

    assert invocation.ok, invocation.error
    assert invocation.response["accounts"] == 2
    bodies = account.sqs.receive_message(QueueUrl=account.work, MaxNumberOfMessages=10)["Messages"]
    assert sorted(WorkItem.from_json(m["Body"]).account for m in bodies) == sorted(
        [ACCOUNT, member_id]
    )


def test_a_retried_start_starts_no_second_run(account: Account) -> None:
    starter = account.starter()

    first, second = starter.invoke(SCHEDULED), starter.invoke(SCHEDULED)

    assert first.response["run"] == second.response["run"]
    assert (first.response["retried"], second.response["retried"]) == (False, True)


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({}, "environment variable WORK_QUEUE_URL is not set"),
        ({"WORK_QUEUE_URL": "q"}, "environment variable RUN_TABLE_NAME is not set"),
        ({"WORK_QUEUE_URL": "q", "RUN_TABLE_NAME": "t", "SWEEP_ACCOUNTS": "12345"},
         "SWEEP_ACCOUNTS must be comma-separated 12-digit account ids"),
        ({"WORK_QUEUE_URL": "q", "RUN_TABLE_NAME": "t", "SWEEP_ORGANIZATION": "yes"},
         "SWEEP_ORGANIZATION must be true or false"),
    ],
)  # fmt: skip
def test_starter_settings_name_the_bad_variable(environment: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_sweep_starter_settings(environment)


WORKER_BASE = {"ALERT_TOPIC_ARN": "t", "WORK_QUEUE_URL": "q", "RUN_TABLE_NAME": "r",
               "REPORT_BUCKET": "b", "STATE_TABLE_NAME": "s",
               "AWS_REGION": "eu-west-1"}  # fmt: skip


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({**WORKER_BASE, "REPORT_BUCKET": ""}, "REPORT_BUCKET is not set"),
        ({**WORKER_BASE, "BUCKET_REGIONS": "eu-west-1,Mars"}, "BUCKET_REGIONS: 'Mars' is not"),
        ({**WORKER_BASE, "AWS_REGION": ""}, "must name at least one region"),
        ({**WORKER_BASE, "STATE_TABLE_NAME": ""}, "STATE_TABLE_NAME is not set"),
        ({**WORKER_BASE, "SWEEP_CONCURRENCY": "many"}, "SWEEP_CONCURRENCY must be"),
        ({**WORKER_BASE, "SWEEP_CONCURRENCY": "65"}, "SWEEP_CONCURRENCY must be"),
        ({**WORKER_BASE, "SWEEP_PAGE_SIZE": "20000"}, "SWEEP_PAGE_SIZE must be"),
        ({**WORKER_BASE, "DIGEST_WHEN_COMPLIANT": "yes"}, "DIGEST_WHEN_COMPLIANT must"),
        ({**WORKER_BASE, "MEMBER_ROLE_NAME": "no spaces"}, "MEMBER_ROLE_NAME 'no spaces'"),
        ({**WORKER_BASE, "ENCRYPTION_POLICY": "{"}, "ENCRYPTION_POLICY is invalid"),
    ],
)
def test_worker_settings_name_the_bad_variable(environment: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_sweep_worker_settings(environment)


def test_worker_settings_defaults() -> None:
    settings = load_sweep_worker_settings(WORKER_BASE)

    assert (settings.concurrency, settings.digest_when_compliant) == (16, False)
    assert (settings.page_size, settings.max_receives, settings.member_role_name) == (
        10_000,
        3,
        None,
    )
    assert settings.policy_from_defaults is True
    assert settings.regions == ("eu-west-1",)  # the function's own region
    with_regions = load_sweep_worker_settings(
        {**WORKER_BASE, "BUCKET_REGIONS": "us-east-1, eu-west-1"}
    )
    assert with_regions.regions == ("us-east-1", "eu-west-1")


def test_a_member_account_that_may_not_list_names_its_role(account: Account) -> None:
    (member,) = create_organization(account.emulator, ["m"])
    account.starter(SWEEP_ACCOUNTS=member).invoke(SCHEDULED)
    worker = account.worker(MEMBER_ROLE_NAME="Reader", DIGEST_WHEN_COMPLIANT="true")

    # The container's own class: it imported drift_monitor from the asset folder, not this tree.
    listing_denied = sys.modules["drift_monitor.aws.s3_reader"].ListingDenied

    def denied(owner: str | None = None, *_: Any) -> Any:
        if owner == member:
            raise listing_denied("AccessDenied on s3:ListAllMyBuckets")
        return original(owner, *_)

    reader = sys.modules["drift_monitor.handlers.sweep_worker"].READER
    original = reader.list_page
    reader.list_page = denied

    feed_from_queue(worker, account.sqs, account.work, "eu-west-1")

    (digest,) = account.digests()
    error = json.loads(digest["Message"])["accounts"][member]["error"]
    assert error == (
        f"AccessDenied on s3:ListAllMyBuckets; arn:aws:iam::{member}:role/Reader needs "
        "s3:ListAllMyBuckets"
    )


def test_with_security_hub_the_sweep_imports_what_it_announces_and_closes(
    account: Account,
) -> None:
    # Given an account whose "assets" bucket drifted with no event, and Security Hub turned on
    populate(account.emulator, MIXED)
    product = f"arn:aws:securityhub:eu-west-1:{ACCOUNT}:product/{ACCOUNT}/default"
    hub = account.emulator.client("securityhub")

    # When a sweep runs, then that drift is a FAILED finding
    worker, _ = account.run(SECURITY_HUB_PRODUCT_ARN=product)
    (finding,) = hub.get_findings()["Findings"]
    assert finding["Resources"][0]["Id"] == "arn:aws:s3:::assets"
    assert (finding["Compliance"]["Status"], finding["RecordState"]) == ("FAILED", "ACTIVE")
    assert worker.metrics()["SecurityHubImports"] == 1

    # When the next sweep finds it still open, it imports it again: Security Hub deletes a
    # finding not updated for 90 days, while the drift lasts
    def sweep(day: str) -> LocalFunction:
        run = {**SCHEDULED, "id": str(uuid.uuid4()), "time": f"{day}T06:00:00Z"}
        assert account.starter().invoke(run).ok
        worker = account.worker(SECURITY_HUB_PRODUCT_ARN=product)
        feed_from_queue(worker, account.sqs, account.work, account.emulator.region)
        return worker

    assert sweep("2026-11-27").metrics()["SecurityHubImports"] == 1
    (finding,) = hub.get_findings()["Findings"]
    assert (finding["Compliance"]["Status"], finding["RecordState"]) == ("FAILED", "ACTIVE")

    # When the bucket is fixed and the next sweep runs, the same finding is closed
    account.s3.put_bucket_encryption(
        Bucket="assets",
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"},
                    "BlockedEncryptionTypes": {"EncryptionType": ["SSE-C"]},
                }
            ]
        },
    )
    worker = sweep("2026-11-28")
    (finding,) = hub.get_findings()["Findings"]
    assert (finding["Compliance"]["Status"], finding["RecordState"]) == ("PASSED", "ARCHIVED")
    assert worker.metrics()["SecurityHubImports"] == 1
