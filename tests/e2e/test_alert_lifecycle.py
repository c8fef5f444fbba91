"""The alert lifecycle (SPEC §11) end to end: the synthesized rules, grace queue, state table,
topic and outputs on moto server, driven by CloudTrail-shaped events."""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jsonschema
import pytest

from local.emulator import Emulator
from local.pipeline import LocalPipeline, ReceivedAlert
from tests.conftest import REPO
from tests.e2e.conftest import SynthFactory

pytestmark = pytest.mark.e2e

ACCOUNT = "123456789012"
APPROVED = f"arn:aws:kms:eu-west-1:{ACCOUNT}:alias/approved"
POLICY = {
    "allowedAlgorithms": ["aws:kms"],
    "allowedKmsKeys": [APPROVED],
    "requireBucketKey": True,
    "requireSseCBlocked": False,
    "exemptTag": "team=sandbox",
}
GRACE_SECONDS = 2
CHAT = {"slack": [{"workspaceId": "T07EZ1ABC", "channelId": "C07EZ1ABC23"}]}
CHAT_SCHEMA = json.loads(
    (REPO / "tests" / "schemas" / "chatbot-custom-notification.json").read_text()
)


class Lifecycle:
    def __init__(self, pipeline: LocalPipeline, emulator: Emulator) -> None:
        self.pipeline = pipeline
        self.function = pipeline.start_function()
        assert self.function.init_error is None, self.function.init_error
        self.s3 = pipeline.recorded_s3
        self.dynamodb = emulator.client("dynamodb")
        self.securityhub = emulator.client("securityhub")
        self.table = pipeline.resolve(pipeline.monitor.environment["STATE_TABLE_NAME"])
        # A subscriber of the event bus output: a rule on the account's default bus.
        sqs = emulator.client("sqs")
        events = emulator.client("events")
        self.sqs = sqs
        self.bus_subscriber = sqs.create_queue(QueueName=f"{pipeline.prefix}-bus-output")[
            "QueueUrl"
        ]
        subscriber_arn = sqs.get_queue_attributes(
            QueueUrl=self.bus_subscriber, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        rule = f"{pipeline.prefix}-alerts"
        events.put_rule(
            Name=rule,
            EventPattern=json.dumps({"source": ["s3-encryption-monitor"]}),
            State="ENABLED",
        )
        events.put_targets(Rule=rule, Targets=[{"Id": "subscriber", "Arn": subscriber_arn}])

    def deliver(self) -> tuple[list[Any], list[ReceivedAlert]]:
        invocations = self.pipeline.deliver(self.function)
        assert all(invocation.ok for invocation in invocations), [i.error for i in invocations]
        return invocations, self.pipeline.received_alerts()

    def state(self, bucket: str) -> dict[str, Any]:
        item = self.dynamodb.get_item(
            TableName=self.table,
            Key={"bucket": {"S": f"{ACCOUNT}#eu-west-1#{bucket}"}},
            ConsistentRead=True,
        )["Item"]
        return {name: next(iter(value.values())) for name, value in item.items()}

    def security_hub_findings(self, bucket: str) -> list[dict[str, Any]]:
        findings = self.securityhub.get_findings()["Findings"]
        return [f for f in findings if f["Id"].endswith(f"/{ACCOUNT}/eu-west-1/{bucket}")]

    def bus_events(self, bucket: str) -> list[dict[str, Any]]:
        received = []
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=self.bus_subscriber, MaxNumberOfMessages=10
            ).get("Messages", [])
            if not messages:
                break
            for message in messages:
                received.append(json.loads(message["Body"]))
                self.sqs.delete_message(
                    QueueUrl=self.bus_subscriber, ReceiptHandle=message["ReceiptHandle"]
                )
        return [event for event in received if event["detail"]["bucket"] == bucket]


@pytest.fixture(scope="module")
def lifecycle(synth: SynthFactory, emulator: Emulator) -> Lifecycle:
    emulator.client("securityhub").enable_security_hub()
    monitor = synth(
        POLICY,
        newBucketGraceSeconds=str(GRACE_SECONDS),
        securityHub="true",
        eventBusOutput="true",
        chat=json.dumps(CHAT),
    )
    return Lifecycle(LocalPipeline(monitor, emulator), emulator)


def unique(prefix: str = "bucket") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def test_one_alert_per_drift_and_one_resolved_notice_when_fixed(lifecycle: Lifecycle) -> None:
    # Given a bucket that drifts, changed twice to the same wrong configuration
    bucket = unique()
    lifecycle.s3.create_bucket(bucket, record=False)
    lifecycle.s3.put_encryption(bucket, "AES256")
    lifecycle.s3.put_encryption(bucket, "AES256")

    # When both events are delivered
    invocations, alerts = lifecycle.deliver()

    # Then one alert, and the repeat is counted instead of sent
    assert [i.response["action"] for i in invocations] == ["ALERT", "SUPPRESS"]
    (alert,) = alerts
    assert alert.subject.startswith(f"[DRIFT] s3://{bucket}")
    assert alert.document["firstDetected"] is not None
    assert lifecycle.function.metrics()["SuppressedRepeats"] == 1
    drifting = lifecycle.state(bucket)
    assert drifting["status"] == "DRIFT"
    assert drifting["alertedFingerprint"] == alert.document["fingerprint"]

    # When it is fixed
    lifecycle.s3.put_encryption(bucket, "aws:kms", APPROVED, bucket_key=True)
    (fixed,), (notice,) = lifecycle.deliver()

    # Then one RESOLVED notice saying how long it drifted and what fixed it
    assert fixed.response["action"] == "RESOLVE"
    assert notice.subject == f"[RESOLVED] s3://{bucket} ({ACCOUNT}, eu-west-1)"
    assert notice.attributes["status"] == "RESOLVED"
    assert notice.attributes["severity"] == "INFO"
    document = notice.document
    assert (document["status"], document["severity"], document["violations"]) == (
        "RESOLVED",
        "INFO",
        [],
    )
    assert document["resolution"]["outcome"] == "COMPLIANT"
    assert document["resolution"]["driftedSince"] == alert.document["firstDetected"]
    assert document["resolution"]["previousViolations"] == ["ALGORITHM_NOT_ALLOWED"]
    assert document["trigger"]["eventName"] == "PutBucketEncryption"
    # And the table holds the last state
    resolved = lifecycle.state(bucket)
    assert resolved["status"] == "COMPLIANT"
    assert "alertedFingerprint" not in resolved and "firstDetected" not in resolved
    assert resolved["lastResolved"] == resolved["lastEvaluated"]
    assert json.loads(resolved["lastTrigger"])["eventId"] == document["trigger"]["eventId"]

    # And the same fix seen again sends nothing
    lifecycle.s3.put_encryption(bucket, "aws:kms", APPROVED, bucket_key=True)
    (again,), alerts = lifecycle.deliver()
    assert (again.response["action"], alerts) == ("NONE", [])


def test_security_hub_holds_one_finding_per_bucket_failed_then_resolved(
    lifecycle: Lifecycle,
) -> None:
    bucket = unique()
    lifecycle.s3.create_bucket(bucket, record=False)
    lifecycle.s3.put_encryption(bucket, "AES256")
    lifecycle.s3.put_encryption(bucket, "aws:kms", "arn:aws:kms:eu-west-1:123456789012:key/x")
    lifecycle.deliver()

    (finding,) = lifecycle.security_hub_findings(bucket)
    assert finding["Compliance"]["Status"] == "FAILED"
    assert (finding["RecordState"], finding["Workflow"]["Status"]) == ("ACTIVE", "NEW")
    assert finding["Resources"][0]["Id"] == f"arn:aws:s3:::{bucket}"
    assert finding["ProductFields"]["s3-encryption-drift-monitor/violations"] == (
        "KMS_KEY_NOT_ALLOWED,BUCKET_KEY_DISABLED"
    )

    lifecycle.s3.put_encryption(bucket, "aws:kms", APPROVED, bucket_key=True)
    lifecycle.deliver()

    # Resolved by record state and compliance: the workflow, set when the finding was created,
    # is the customer's afterwards (BatchImportFindings cannot update it)
    (finding,) = lifecycle.security_hub_findings(bucket)
    assert finding["Compliance"]["Status"] == "PASSED"
    assert (finding["RecordState"], finding["Workflow"]["Status"]) == ("ARCHIVED", "NEW")
    assert finding["FindingProviderFields"]["Severity"]["Label"] == "INFORMATIONAL"


def test_every_alert_and_notice_reaches_the_event_bus(lifecycle: Lifecycle) -> None:
    bucket = unique()
    lifecycle.s3.create_bucket(bucket, record=False)
    lifecycle.s3.put_encryption(bucket, "AES256")
    _, (alert,) = lifecycle.deliver()
    lifecycle.s3.put_encryption(bucket, "aws:kms", APPROVED, bucket_key=True)
    _, (notice,) = lifecycle.deliver()

    events = lifecycle.bus_events(bucket)

    assert [(e["source"], e["detail-type"]) for e in events] == [
        ("s3-encryption-monitor", "S3 Encryption Drift"),
        ("s3-encryption-monitor", "S3 Encryption Drift Resolved"),
    ]
    assert [e["detail"] for e in events] == [alert.document, notice.document]


def test_a_new_bucket_configured_within_the_grace_period_never_alerts(
    lifecycle: Lifecycle,
) -> None:
    # Given a bucket created (SSE-S3 by default: drift under this policy) and configured at once
    configured, forgotten = unique("configured"), unique("forgotten")
    lifecycle.s3.create_bucket(configured)
    lifecycle.s3.put_encryption(configured, "aws:kms", APPROVED, bucket_key=True)
    lifecycle.s3.create_bucket(forgotten)

    # Then the configuration change is evaluated at once, the creations are not yet
    (change,), alerts = lifecycle.deliver()
    assert (change.response["status"], alerts) == ("COMPLIANT", [])
    assert lifecycle.pipeline.deliver_new_buckets(lifecycle.function) == []

    # When the grace period has passed, the creations are evaluated
    time.sleep(GRACE_SECONDS + 0.5)
    delayed = lifecycle.pipeline.deliver_new_buckets(lifecycle.function)

    # Then only the bucket nobody configured alerts
    assert [i.response["batchItemFailures"] for i in delayed] == [[], []]
    (alert,) = lifecycle.pipeline.received_alerts()
    assert alert.document["bucket"] == forgotten
    assert alert.document["trigger"]["eventName"] == "CreateBucket"
    assert lifecycle.state(configured)["status"] == "COMPLIANT"


def test_removing_the_exempt_tag_from_a_drifting_bucket_alerts(lifecycle: Lifecycle) -> None:
    # Given a drifting bucket tagged exempt: evaluated, not alerted
    bucket = unique()
    lifecycle.s3.create_bucket(bucket, tags={"team": "sandbox"}, record=False)
    lifecycle.s3.put_encryption(bucket, "AES256")
    (exempt,), alerts = lifecycle.deliver()
    assert (exempt.response["status"], alerts) == ("EXEMPT", [])

    # When the tag is removed
    lifecycle.s3.delete_tags(bucket)
    (untagged,), (alert,) = lifecycle.deliver()

    # Then it alerts, triggered by the tag change
    assert untagged.response["action"] == "ALERT"
    assert alert.document["trigger"]["eventName"] == "DeleteBucketTagging"

    # And tagging it exempt again closes the alert
    lifecycle.s3.put_tags(bucket, {"team": "sandbox"})
    (tagged,), (notice,) = lifecycle.deliver()
    assert tagged.response["action"] == "RESOLVE"
    assert notice.document["resolution"]["outcome"] == "EXEMPT"
    assert notice.document["resolution"]["detail"] == "bucket tagged team=sandbox"


def test_untagging_through_s3_control_is_watched_like_bucket_tagging(lifecycle: Lifecycle) -> None:
    # S3 Control's UntagResource on a bucket ARN changes the bucket's tags too (s3control model)
    bucket = unique()
    lifecycle.s3.create_bucket(bucket, tags={"team": "sandbox", "cost": "1"}, record=False)
    lifecycle.s3.put_encryption(bucket, "AES256")
    (exempt,), _ = lifecycle.deliver()
    assert exempt.response["status"] == "EXEMPT"

    lifecycle.s3.untag_resource(bucket, ["team"])
    (untagged,), (alert,) = lifecycle.deliver()

    assert untagged.response["action"] == "ALERT"
    assert alert.document["trigger"]["eventName"] == "UntagResource"
    assert alert.document["bucket"] == bucket


def test_deleting_a_drifting_bucket_resolves_its_alert(lifecycle: Lifecycle) -> None:
    bucket = unique()
    lifecycle.s3.create_bucket(bucket, record=False)
    lifecycle.s3.put_encryption(bucket, "AES256")
    lifecycle.deliver()

    lifecycle.s3.delete_bucket(bucket)
    (deleted,), (notice,) = lifecycle.deliver()

    assert (deleted.response["status"], deleted.response["action"]) == ("VANISHED", "RESOLVE")
    assert notice.document["resolution"]["outcome"] == "VANISHED"
    assert lifecycle.state(bucket)["status"] == "VANISHED"
    assert int(lifecycle.state(bucket)["expiresAt"]) > time.time()


def test_an_unavailable_state_table_fails_the_invocation_and_keeps_the_event(
    lifecycle: Lifecycle,
) -> None:
    # Given a container whose state table does not answer
    broken = lifecycle.pipeline.start_function({"STATE_TABLE_NAME": "no-such-table"})
    bucket = unique()
    lifecycle.s3.create_bucket(bucket, record=False)
    lifecycle.s3.put_encryption(bucket, "AES256")

    # When the drift is delivered to it
    (invocation,) = lifecycle.pipeline.deliver(broken)

    # Then nothing is sent and the event waits in the failure queue instead of going silent
    assert not invocation.ok and "ResourceNotFoundException" in str(invocation.error)
    assert lifecycle.pipeline.received_alerts() == []
    (kept,) = lifecycle.pipeline.failure_queue_messages()
    assert kept["body"]["requestPayload"]["detail"]["requestParameters"]["bucketName"] == bucket


def test_a_failed_publish_is_retried_not_remembered_as_sent(lifecycle: Lifecycle) -> None:
    # Given a drift whose first delivery cannot publish
    bucket = unique()
    lifecycle.s3.create_bucket(bucket, record=False)
    lifecycle.s3.put_encryption(bucket, "AES256")
    (event,) = lifecycle.pipeline.delivered_events()
    no_topic = f"arn:aws:sns:eu-west-1:{ACCOUNT}:no-such-topic"
    failing = lifecycle.pipeline.start_function({"ALERT_TOPIC_ARN": no_topic})
    assert not failing.invoke(event).ok

    # When Lambda retries the event (the state was already written)
    retried = lifecycle.function.invoke(event)

    # Then the alert goes out: the state only says "sent" once it was
    assert retried.response["action"] == "ALERT"
    (alert,) = lifecycle.pipeline.received_alerts()
    assert alert.document["bucket"] == bucket


def test_the_sweep_keeps_security_hub_in_step_with_what_it_finds(lifecycle: Lifecycle) -> None:
    # Given a bucket that drifted with no event reaching the monitor
    bucket = unique("quiet")
    lifecycle.s3.create_bucket(bucket, record=False)
    raw_s3 = lifecycle.pipeline.s3
    raw_s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )

    # When the sweep runs, then its finding is in Security Hub
    assert all(i.ok for i in lifecycle.pipeline.run_sweep())
    (finding,) = lifecycle.security_hub_findings(bucket)
    assert (finding["Compliance"]["Status"], finding["RecordState"]) == ("FAILED", "ACTIVE")
    lifecycle.pipeline.received_alerts()  # the digest

    # When it is fixed, again with no event, the next sweep closes the same finding
    raw_s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {
                        "SSEAlgorithm": "aws:kms",
                        "KMSMasterKeyID": APPROVED,
                    },
                    "BucketKeyEnabled": True,
                }
            ]
        },
    )
    assert all(i.ok for i in lifecycle.pipeline.run_sweep())
    (finding,) = lifecycle.security_hub_findings(bucket)
    assert (finding["Compliance"]["Status"], finding["RecordState"]) == ("PASSED", "ARCHIVED")
    assert lifecycle.state(bucket)["sweptStatus"] == "COMPLIANT"
    lifecycle.pipeline.received_alerts()


CONTAINERS, DELIVERIES = 8, 5


def test_concurrent_duplicate_deliveries_announce_a_drift_once_and_its_fix_once(
    lifecycle: Lifecycle,
) -> None:
    # Given 8 warm containers of the deployed function, as Lambda runs concurrent deliveries
    with ThreadPoolExecutor(max_workers=CONTAINERS) as pool:
        containers = list(pool.map(lambda _: lifecycle.pipeline.start_function(), range(8)))
    assert [c.init_error for c in containers] == [None] * CONTAINERS
    bucket = unique("raced")
    lifecycle.s3.create_bucket(bucket, record=False)

    def deliver_everywhere(event: dict[str, Any]) -> list[str]:
        """Each container gets the event 5 times (EventBridge delivers at least once, and
        Lambda retries), all containers at once."""

        def five_times(container: Any) -> list[str]:
            invocations = [container.invoke(event) for _ in range(DELIVERIES)]
            assert all(i.ok for i in invocations), [i.error for i in invocations]
            return [i.response["action"] for i in invocations]

        with ThreadPoolExecutor(max_workers=CONTAINERS) as pool:
            return [action for actions in pool.map(five_times, containers) for action in actions]

    # When the bucket drifts and the event reaches all of them, 40 times in all
    lifecycle.s3.put_encryption(bucket, "AES256")
    (drift,) = lifecycle.pipeline.delivered_events()
    drift_actions = deliver_everywhere(drift)
    drift_alerts = lifecycle.pipeline.received_alerts()

    # Then exactly one DRIFT alert
    assert drift_actions.count("ALERT") == 1
    assert [a.document["status"] for a in drift_alerts if a.document["bucket"] == bucket] == [
        "DRIFT"
    ]

    # When it is fixed and the fix reaches all of them 40 times, exactly one RESOLVED notice
    lifecycle.s3.put_encryption(bucket, "aws:kms", APPROVED, bucket_key=True)
    (fix,) = lifecycle.pipeline.delivered_events()
    fix_actions = deliver_everywhere(fix)
    notices = lifecycle.pipeline.received_alerts()
    assert fix_actions.count("RESOLVE") == 1
    assert [a.document["status"] for a in notices if a.document["bucket"] == bucket] == ["RESOLVED"]
    for container in containers:
        container.close()


def test_chat_gets_the_alert_and_its_resolved_notice_in_one_thread(lifecycle: Lifecycle) -> None:
    """§15: the chat topic receives each alert and notice as a custom notification."""
    lifecycle.pipeline.chat_messages()  # what earlier cases sent
    bucket = unique("chat")
    lifecycle.s3.create_bucket(bucket, record=False)
    lifecycle.s3.put_encryption(bucket, "AES256")
    _, (alert,) = lifecycle.deliver()

    (opened,) = lifecycle.pipeline.chat_messages()
    assert opened["id"] == alert.document["fingerprint"]

    jsonschema.validate(opened, CHAT_SCHEMA)
    assert opened["content"]["title"].startswith(f":red_circle: DRIFT MEDIUM: {bucket}")
    assert opened["metadata"]["relatedResources"] == [f"arn:aws:s3:::{bucket}"]
    assert opened["content"]["nextSteps"][0].startswith("Fix: `aws s3api put-bucket-encryption")

    lifecycle.s3.put_encryption(bucket, "aws:kms", APPROVED, bucket_key=True)
    lifecycle.deliver()
    (closed,) = lifecycle.pipeline.chat_messages()

    jsonschema.validate(closed, CHAT_SCHEMA)
    assert closed["content"]["title"].startswith(f":large_green_circle: RESOLVED: {bucket}")
    assert closed["metadata"]["threadId"] == opened["metadata"]["threadId"]
