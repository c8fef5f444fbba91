"""End to end, `s3-encryption-monitor doctor` (§14) against a deployment on the emulator: PASS on
a healthy organization deployment, then each piece broken on purpose and the FAIL that names it.

One deployment for the module (deploying costs seconds); each test breaks one piece and repairs
it, so the next test starts healthy again. The pieces that cannot be repaired come last."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner

from local.emulator import Emulator, moto_server
from local.pipeline import LocalPipeline
from local.template import SynthesizedMonitor
from scanner.cli import main
from scanner.doctor import Check, Doctor, Verdict
from tests.e2e.conftest import SynthFactory
from tests.e2e.test_organization import POLICY, Organization, organization_of

pytestmark = pytest.mark.e2e

ORGANIZATION_ID = "o-e2edoctor0"
REGIONS = ("eu-west-1", "us-east-1")


@pytest.fixture(scope="module")
def monitor(synth: SynthFactory) -> SynthesizedMonitor:
    return synth(
        POLICY,
        organizationId=ORGANIZATION_ID,
        memberTargets="r-e2ed",
        regions=",".join(REGIONS),
        heartbeat="rate(15 minutes)",
    )


@dataclass
class Deployment:
    org: Organization
    lambda_url: str

    @property
    def pipeline(self) -> LocalPipeline:
        return self.org.pipeline

    @property
    def emulator(self) -> Emulator:
        return self.org.emulator

    def doctor(self, *args: str) -> tuple[int, dict[str, Any]]:
        """The command as a user runs it (JSON report), against the emulator."""
        result = CliRunner().invoke(
            main,
            [
                "doctor",
                "--stack",
                self.pipeline.stack_name,
                "--region",
                self.emulator.region,
                "--format",
                "json",
                *args,
            ],
            env={**self.emulator.environment(), "AWS_ENDPOINT_URL_LAMBDA": self.lambda_url},
            catch_exceptions=False,
        )
        report = json.loads(result.stdout) if result.stdout.startswith("{") else {}
        return result.exit_code, {**report, "stderr": result.stderr}

    def checks(self, now: datetime | None = None) -> list[Check]:
        """The same checks in process, at another moment (the clock of time-based checks)."""
        session = self.emulator.session()

        def clients(service: str, region: str) -> Any:
            if service == "lambda":
                return session.client(service, region_name=region, endpoint_url=self.lambda_url)
            return session.client(service, region_name=region, endpoint_url=self.emulator.endpoint)

        return Doctor(clients, self.pipeline.manifest, now=now).run()


@pytest.fixture(scope="module")
def deployment(monitor: SynthesizedMonitor) -> Iterator[Deployment]:
    with moto_server(organization_id=ORGANIZATION_ID) as emulator:
        org = organization_of(monitor, emulator, members=1)
        # Healthy and used: every heartbeat delivered, one sweep run to its digest
        org.pipeline.beat()
        assert all(i.ok for i in org.pipeline.deliver(org.function))
        assert all(i.ok for i in org.pipeline.run_sweep())
        org.pipeline.received_alerts()
        with org.pipeline.lambda_service() as url:
            yield Deployment(org, url)


def failing(report: dict[str, Any], check: str) -> list[dict[str, Any]]:
    return [c for c in report["checks"] if c["check"] == check and c["verdict"] == "FAIL"]


def only_failures(checks: list[Check]) -> set[str]:
    return {check.check for check in checks if check.verdict is Verdict.FAIL}


def test_a_healthy_deployment_passes_every_check(deployment: Deployment) -> None:
    code, report = deployment.doctor()

    assert code == 0, json.dumps(report, indent=1)
    verdicts = {(c["check"], c["verdict"]) for c in report["checks"]}
    assert {verdict for _, verdict in verdicts} == {"PASS"}
    # every check ran, none skipped: the organization topology with the heartbeat and sweep on
    assert {check for check, _ in verdicts} == {
        "stacks", "functions", "rules", "trail", "subscriptions", "queues", "sweep",
        "stack sets", "reader roles", "heartbeat",
    }  # fmt: skip
    member = deployment.org.members[0]
    subjects = {c["subject"] for c in report["checks"]}
    assert member in subjects  # its reader role, probed by the deployed worker
    assert f"{member}/us-east-1" in subjects  # its heartbeat
    assert report["summary"]["FAIL"] == 0


def test_live_runs_a_canary_round_trip_and_cleans_up(deployment: Deployment) -> None:
    # Given AWS running by itself: CloudTrail logging any client's calls, Lambda delivering
    s3 = deployment.emulator.client("s3")
    sqs = deployment.emulator.client("sqs")
    with deployment.pipeline.serve(deployment.org.function):
        # When the doctor runs its canary
        code, report = deployment.doctor("--live", "--live-timeout", "60")

    # Then the DRIFT alert and the RESOLVED notice came through the deployed monitor, timed
    assert code == 0, json.dumps(report, indent=1)
    (canary,) = [c for c in report["checks"] if c["check"] == "canary"]
    assert canary["verdict"] == "PASS"
    assert re.fullmatch(
        r"DRIFT alert \d+\.\d s after the API call; RESOLVED \d+\.\d s after the policy's fix",
        canary["detail"],
    ), canary["detail"]
    # And nothing of it is left: no bucket, no queue, no subscription
    assert not [b for b in s3.list_buckets()["Buckets"] if b["Name"] == canary["subject"]]
    assert not sqs.list_queues(QueueNamePrefix=canary["subject"]).get("QueueUrls")
    topic = deployment.pipeline.manifest["topicArn"]
    subscriptions = deployment.emulator.client("sns").list_subscriptions_by_topic(TopicArn=topic)
    assert [s["Protocol"] for s in subscriptions["Subscriptions"]] == ["sqs"]  # the pipeline's


def test_a_disabled_rule_fails_naming_it(deployment: Deployment) -> None:
    pipeline = deployment.pipeline
    events = deployment.emulator.client("events")
    rule = f"{pipeline.prefix}-{pipeline.monitor.rule_id}"
    events.disable_rule(Name=rule, EventBusName=pipeline.bus_name)
    try:
        code, report = deployment.doctor()
    finally:
        events.enable_rule(Name=rule, EventBusName=pipeline.bus_name)

    assert code == 1
    (failure,) = failing(report, "rules")
    assert failure["subject"].startswith(rule)
    assert "DISABLED" in failure["detail"]
    assert f"aws events enable-rule --name {rule}" in failure["fix"]


def test_a_disabled_forwarder_fails_naming_its_region(deployment: Deployment) -> None:
    pipeline = deployment.pipeline
    pipeline.switch_forwarder(pipeline.account, "us-east-1", enabled=False)
    try:
        code, report = deployment.doctor()
    finally:
        pipeline.switch_forwarder(pipeline.account, "us-east-1", enabled=True)

    assert code == 1
    (failure,) = failing(report, "rules")
    assert "us-east-1" in failure["subject"]


def test_a_subscription_pending_confirmation_fails(deployment: Deployment) -> None:
    sns = deployment.emulator.client("sns")
    topic = deployment.pipeline.manifest["topicArn"]
    arn = sns.subscribe(
        TopicArn=topic, Protocol="email", Endpoint="secops@example.com", ReturnSubscriptionArn=True
    )["SubscriptionArn"]
    try:
        code, report = deployment.doctor()
    finally:
        sns.unsubscribe(SubscriptionArn=arn)

    assert code == 1
    (failure,) = failing(report, "subscriptions")
    assert failure["subject"] == "email secops@example.com"
    assert "pending confirmation" in failure["detail"]


def test_a_stopped_or_missing_trail_fails_in_every_region(deployment: Deployment) -> None:
    cloudtrail = deployment.emulator.client("cloudtrail")
    trail = deployment.pipeline.trail_name
    cloudtrail.stop_logging(Name=trail)
    try:
        stopped = only_failures(deployment.checks())
        stopped_report = [c for c in deployment.checks() if c.check == "trail"]
    finally:
        cloudtrail.start_logging(Name=trail)
    assert stopped == {"trail"}
    assert {c.subject for c in stopped_report} == set(REGIONS)
    assert all("stopped or logs no write" in c.detail for c in stopped_report)

    bucket = cloudtrail.get_trail(Name=trail)["Trail"]["S3BucketName"]
    cloudtrail.delete_trail(Name=trail)
    try:
        missing = [c for c in deployment.checks() if c.check == "trail"]
    finally:
        cloudtrail.create_trail(Name=trail, S3BucketName=bucket, IsMultiRegionTrail=True)
        cloudtrail.start_logging(Name=trail)
    assert [c.verdict for c in missing] == [Verdict.FAIL, Verdict.FAIL]
    assert all(c.detail.startswith("no trail covers it") for c in missing)


def test_messages_waiting_in_the_failure_queue_fail(deployment: Deployment) -> None:
    # Given an event the function cannot use: it is kept in the failure queue
    invocation = deployment.org.function.invoke({"detail-type": "not a CloudTrail event"})
    assert invocation.response["status"] == "INVALID"
    try:
        code, report = deployment.doctor()
    finally:
        deployment.pipeline.failure_queue_messages()  # drained

    assert code == 1
    (failure,) = failing(report, "queues")
    assert failure["subject"].startswith("failed events")
    assert failure["detail"].startswith("1 message(s) waiting")


def test_a_stack_set_instance_not_current_fails_naming_account_and_region(
    deployment: Deployment,
) -> None:
    pipeline = deployment.pipeline
    member = deployment.org.members[0]
    forwarders = pipeline.manifest["organization"]["stackSets"][1]
    pipeline.set_stack_instance(
        forwarders, member, "us-east-1", "OUTDATED", "ResourceLogicalId:ForwarderRule, AccessDenied"
    )
    try:
        code, report = deployment.doctor()
    finally:
        pipeline.set_stack_instance(forwarders, member, "us-east-1", "CURRENT")

    assert code == 1
    (failure,) = failing(report, "stack sets")
    assert failure["subject"] == f"{forwarders}: {member} us-east-1"
    assert failure["detail"] == "OUTDATED: ResourceLogicalId:ForwarderRule, AccessDenied"


def test_a_deleted_forwarder_stack_fails(deployment: Deployment) -> None:
    pipeline = deployment.pipeline
    stack = pipeline.forwarder_stack("us-east-1")
    cloudformation = deployment.emulator.client("cloudformation", "us-east-1")
    cloudformation.delete_stack(StackName=stack)
    try:
        checks = deployment.checks()
    finally:
        pipeline.create_stack(stack, "us-east-1")

    (failure,) = [c for c in checks if c.check == "stacks" and c.verdict is Verdict.FAIL]
    assert failure.subject == f"{stack} (us-east-1)"
    assert "does not exist" in failure.detail


def test_a_silent_heartbeat_fails_after_two_intervals(deployment: Deployment) -> None:
    later = datetime.now(UTC) + timedelta(minutes=31)

    heartbeat = [c for c in deployment.checks(now=later) if c.check == "heartbeat"]

    assert len(heartbeat) == 2 * len(REGIONS)  # two accounts, two regions
    assert {c.verdict for c in heartbeat} == {Verdict.FAIL}
    assert all("the event path is silent" in c.detail for c in heartbeat)


def test_no_sweep_for_two_scheduled_periods_fails(deployment: Deployment) -> None:
    after_two_days = datetime.now(UTC) + timedelta(hours=49)

    (sweep,) = [c for c in deployment.checks(now=after_two_days) if c.check == "sweep"]

    assert sweep.verdict is Verdict.FAIL
    assert "no sweep in two scheduled periods" in sweep.detail


def test_nothing_deployed_under_that_name_exits_2(deployment: Deployment) -> None:
    code, report = deployment.doctor("--stack", "NotTheMonitor")

    assert code == 2
    assert "no S3 Encryption Drift Monitor stack 'NotTheMonitor' here" in report["stderr"]


def test_an_account_the_stack_sets_never_reached_fails(deployment: Deployment) -> None:
    # Given an account that joins the organization and gets no StackSet instance
    joined = deployment.emulator.client("organizations").create_account(
        AccountName="late", Email="late@example.com"
    )["CreateAccountStatus"]["AccountId"]

    code, report = deployment.doctor()

    assert code == 1
    missing = failing(report, "stack sets")
    assert sorted(c["subject"].rsplit(": ", 1)[1] for c in missing) == [joined, joined]
    assert all("has no instance" in c["detail"] for c in missing)
    # and the monitor itself cannot read it either
    assert [c["subject"] for c in failing(report, "reader roles")] == [joined]


def test_a_failing_function_fails_with_its_errors_of_the_day(deployment: Deployment) -> None:
    # Given the event function failing (its state table gone from its configuration)
    broken = deployment.pipeline.start_function({"STATE_TABLE_NAME": "no-such-table"})
    deployment.pipeline.beat(deployment.pipeline.account, "eu-west-1")
    (event,) = deployment.pipeline.delivered_events()
    assert not broken.invoke(event).ok

    code, report = deployment.doctor()

    assert code == 1
    (failure,) = failing(report, "functions")
    assert failure["subject"].startswith("event function")
    assert ", 1 errors" in failure["detail"]
    assert "/aws/lambda/" in failure["fix"]


def test_a_deleted_reader_role_fails_as_the_monitor_sees_it(deployment: Deployment) -> None:
    member = deployment.org.members[0]
    deployment.pipeline.delete_reader_role(member)

    code, report = deployment.doctor()

    assert code == 1
    (failure,) = [c for c in failing(report, "reader roles") if c["subject"] == member]
    assert f"cannot assume arn:aws:iam::{member}:role/" in failure["detail"]
