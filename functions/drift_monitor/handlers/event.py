"""Lambda entry point: S3 CloudTrail events in, one alert per drift and one notice per fix out.

Thin on purpose: parse the event once, delegate to ``assess`` and the ``Notifier``, count. Events
arrive from EventBridge one at a time, or, for bucket creations held back by the new-bucket grace
period, as an SQS batch from the delay queue.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from ..aws.credentials import RETRY_CONFIG, AccountAccess
from ..aws.publisher import AlertPublisher, FailureQueue
from ..aws.s3_reader import S3Reader
from ..aws.state_store import StateStore
from ..domain.assessment import assess
from ..domain.clock import epoch_ms, parse_iso
from ..domain.events import (
    BucketChange,
    FailedCall,
    InvalidEvent,
    KeyChange,
    NotABucket,
    account_of,
    is_key_event,
    parse_event,
    parse_key_event,
)
from ..domain.heartbeat import EventPath, beat, is_heartbeat, paths_of, silent, silent_paths
from ..domain.lifecycle import Action
from ..domain.models import BucketKind, BucketRef, Finding, Trigger
from ..domain.settings import Mode, load_settings
from .notifier import Notifier, Remediated, Settled
from .telemetry import ACTION_METRIC, STATUS_METRIC, logger, metrics

if TYPE_CHECKING:
    from ..aws.accounts import OrganizationDirectory
    from ..aws.heartbeats import HeartbeatStore
    from ..aws.keys import KeyDirectory
    from ..aws.outputs import Output
    from ..aws.remediation import Remediator
    from ..domain.fix import Remediation

# The heartbeat watchdog's rule sends {"watchdog": "heartbeat", "time": <the event's time>}.
WATCHDOG = "watchdog"
# §15: a key event re-reads up to this many buckets itself; more go through the key queue,
# this many per message, so a key used by 10,000 buckets never meets the function's timeout.
INLINE_BUCKETS = 25
REASSESS = "reassess"
# Beyond the invocation's own deadline, for clocks that differ between containers.
CLAIM_MARGIN_MS = 5_000
# Cold start: configuration validated and clients created once per container. An invalid
# ENCRYPTION_POLICY fails here, so every invocation fails and every event is kept for a retry.
SETTINGS = load_settings(os.environ)
if SETTINGS.policy_from_defaults:
    logger.warning("ENCRYPTION_POLICY is not set: the default policy applies")
_session = boto3.Session()
# Buckets of other accounts (the organization topology) are read through MEMBER_ROLE_NAME there.
READER = S3Reader(AccountAccess(_session, role_name=SETTINGS.member_role_name))
READER.client(READER.home_region)
# Optional parts are imported only when turned on: each module costs its compilation at every
# cold start (Lambda's /var/task holds no bytecode cache).
KEYS: KeyDirectory | None = None
if SETTINGS.policy.key_checks:
    # DescribeKey in the bucket's account, through the same credentials as its reads.
    from ..aws.keys import KeyDirectory

    KEYS = KeyDirectory(READER.access)
ORGANIZATION: OrganizationDirectory | None = None
if SETTINGS.policy.allow_organization_keys:
    from ..aws.accounts import OrganizationDirectory

    ORGANIZATION = OrganizationDirectory.of(READER.access)
FAILURES = FailureQueue(_session.client("sqs", config=RETRY_CONFIG), SETTINGS.failure_queue_url)
_sns = _session.client("sns", config=RETRY_CONFIG)
_outputs: list[Output] = []
CHAT: Output | None = None
if SETTINGS.security_hub_product_arn or SETTINGS.output_event_bus or SETTINGS.chat_topic_arn:
    # Imported only when an output is on: most deployments have none, and each module is
    # compiled at every cold start.
    from ..aws.outputs import ChatOutput, EventBusOutput, SecurityHubOutput

    if SETTINGS.chat_topic_arn:
        CHAT = ChatOutput(_sns, SETTINGS.chat_topic_arn)
        _outputs.append(CHAT)

    if SETTINGS.security_hub_product_arn:
        _outputs.append(
            SecurityHubOutput(
                _session.client("securityhub", config=RETRY_CONFIG),
                SETTINGS.security_hub_product_arn,
            )
        )
    if SETTINGS.output_event_bus:
        _outputs.append(
            EventBusOutput(
                _session.client("events", config=RETRY_CONFIG), SETTINGS.output_event_bus
            )
        )
_dynamodb = _session.client("dynamodb", config=RETRY_CONFIG)
# keyChecks: each evaluation also records the key the bucket uses (the key index, §15).
STATE = StateStore(_dynamodb, SETTINGS.state_table, index_keys=SETTINGS.policy.key_checks)
KEY_QUEUE = (
    _session.client("sqs", config=RETRY_CONFIG)
    if SETTINGS.policy.key_checks and SETTINGS.key_queue_url
    else None
)
HEARTBEATS: HeartbeatStore | None = None
if SETTINGS.heartbeat is not None:
    # Imported only when the heartbeat is on (cold start).
    from ..aws.heartbeats import HeartbeatStore

    HEARTBEATS = HeartbeatStore(_dynamodb, SETTINGS.state_table)
PUBLISHER = AlertPublisher(_sns, SETTINGS.topic_arn)
NOTIFIER = Notifier(STATE, PUBLISHER, _outputs, SETTINGS.policy)
REMEDIATOR: Remediator | None = None
if SETTINGS.remediation is not Mode.OFF:
    # Imported only when remediation is on (cold start).
    from ..aws.remediation import Remediator
    from ..aws.s3_reader import EncryptionWriter

    REMEDIATOR = Remediator(
        SETTINGS.remediation,
        limit_per_hour=SETTINGS.remediation_limit_per_hour,
        policy=SETTINGS.policy,
        writer=EncryptionWriter(READER),
        limit=STATE,
        reassess=lambda drift: _assess(drift.bucket, drift.trigger),
    )


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    READER.access.home_account = account_of(context)
    if _is_sqs_batch(event):
        return _delayed_batch(event["Records"], context)
    if isinstance(event, Mapping) and event.get(WATCHDOG) == "heartbeat":
        return _watch(event, context)
    return _process(event, context)


def _process(event: Any, context: LambdaContext) -> dict[str, Any]:
    if isinstance(event, Mapping) and REASSESS in event:
        return _reassess(event[REASSESS], context)
    try:
        if is_key_event(event):
            return _key_change(parse_key_event(event), context)
        change = parse_event(event)
    except FailedCall as failed:
        logger.info(
            "Ignored a failed API call", event_name=failed.event_name, error_code=failed.error_code
        )
        metrics.add_metric(name="IgnoredFailedCalls", unit=MetricUnit.Count, value=1)
        return {"status": "IGNORED", "reason": str(failed)}
    except NotABucket as other:
        logger.info("Ignored an event about something else than a bucket", reason=str(other))
        metrics.add_metric(name="IgnoredEvents", unit=MetricUnit.Count, value=1)
        return {"status": "IGNORED", "reason": str(other)}
    except InvalidEvent as invalid:
        return _keep_invalid(event, invalid.reason)

    logger.append_keys(bucket=change.bucket.name, account=change.bucket.account)
    if HEARTBEATS is not None and is_heartbeat(change.bucket):
        return _beat(HEARTBEATS, change, context)
    finding, settled = _evaluate(change.bucket, change.trigger, context)
    return {
        "status": finding.status.value,
        "bucket": change.bucket.name,
        "action": settled.action.value,
        "alert": settled.message_id if settled.action is Action.ALERT else None,
        "notice": settled.message_id if settled.action is Action.RESOLVE else None,
    }


def _evaluate(
    bucket: BucketRef, trigger: Trigger, context: LambdaContext
) -> tuple[Finding, Settled]:
    """Read, judge, remediate if on, and settle one bucket through the lifecycle."""
    # Taken before the read: the state recorded is at least as new as this moment.
    evaluated_at = epoch_ms()
    finding = _assess(bucket, trigger)
    metrics.add_metric(name="Evaluations", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name=STATUS_METRIC[finding.status], unit=MetricUnit.Count, value=1)
    remediated = None
    if REMEDIATOR is not None:
        fixed, outcome = REMEDIATOR.attempt(finding, datetime.now(UTC))
        if outcome is not None:
            remediated = Remediated(finding, outcome)
            metrics.add_metric(name=_remediation_metric(outcome), unit=MetricUnit.Count, value=1)
            finding = fixed
    settled = NOTIFIER.settle(
        finding, evaluated_at, remediation=remediated, lease_until=_lease(context)
    )
    if settled.action in ACTION_METRIC:
        metrics.add_metric(name=ACTION_METRIC[settled.action], unit=MetricUnit.Count, value=1)
    logger.info(
        "Bucket evaluated",
        status=finding.status.value,
        action=settled.action.value,
        region=bucket.region,
        kind=bucket.kind.value,
        event_name=trigger.event_name,
        event_id=trigger.event_id,
        violations=[violation.code.value for violation in finding.violations],
        detail=finding.detail,
        alert_message_id=settled.message_id,
    )
    return finding, settled


def _key_change(change: KeyChange, context: LambdaContext) -> dict[str, Any]:
    """A KMS call on a key: re-read exactly the buckets the key index says use it (each through
    the lifecycle), then one summary naming the key, who changed it and how many buckets."""
    logger.append_keys(key=change.key_arn)
    metrics.add_metric(name="KeyEvents", unit=MetricUnit.Count, value=1)
    if KEYS is None:
        logger.info("Key event ignored: keyChecks is off")
        return {"status": "IGNORED", "reason": "keyChecks is off"}
    KEYS.forget(change.key_arn)
    buckets = STATE.buckets_using(change.key_arn)
    if not buckets:
        logger.info("Key event on a key no known bucket uses", event_name=change.trigger.event_name)
        return {"status": "KEY_UNUSED", "key": change.key_arn}
    queued = KEY_QUEUE is not None and len(buckets) > INLINE_BUCKETS
    actions: list[Action] = []
    if queued:
        _queue_reassessment(buckets, change.trigger)
    else:
        actions = [_evaluate(bucket, change.trigger, context)[1].action for bucket in buckets]
    # Imported here, not at every cold start: most events are about buckets, not keys.
    from ..domain.alerts import build_key_summary  # noqa: PLC0415

    summary = build_key_summary(
        change,
        buckets,
        alerted=actions.count(Action.ALERT),
        resolved=actions.count(Action.RESOLVE),
        queued=queued,
    )
    message_id = PUBLISHER.publish(summary)
    if CHAT is not None:
        CHAT.send(summary.document, summary.document["trigger"]["eventTime"] or "")
    metrics.add_metric(name="KeyEventBuckets", unit=MetricUnit.Count, value=len(buckets))
    logger.info(
        "Key event",
        event_name=change.trigger.event_name,
        buckets=len(buckets),
        queued=queued,
        summary_message_id=message_id,
    )
    return {
        "status": "KEY_CHANGE",
        "key": change.key_arn,
        "buckets": len(buckets),
        "queued": queued,
        "summary": message_id,
    }


def _queue_reassessment(buckets: list[BucketRef], trigger: Trigger) -> None:
    assert KEY_QUEUE is not None and SETTINGS.key_queue_url is not None
    for start in range(0, len(buckets), INLINE_BUCKETS):
        chunk = buckets[start : start + INLINE_BUCKETS]
        body = {
            REASSESS: {
                "trigger": trigger.to_dict(),
                "buckets": [[b.name, b.account, b.region, b.kind.value] for b in chunk],
            }
        }
        KEY_QUEUE.send_message(QueueUrl=SETTINGS.key_queue_url, MessageBody=json.dumps(body))


def _reassess(raw: Any, context: LambdaContext) -> dict[str, Any]:
    """A chunk of a key event's buckets, from the key queue."""
    try:
        trigger = Trigger.from_dict(raw["trigger"])
        buckets = [
            BucketRef(name=name, account=account, region=region, kind=BucketKind(kind))
            for name, account, region, kind in raw["buckets"]
        ]
    except (KeyError, TypeError, ValueError, AttributeError) as bad:
        return _keep_invalid({REASSESS: raw}, f"not a key re-evaluation message: {bad!r}")
    actions = [_evaluate(bucket, trigger, context)[1].action for bucket in buckets]
    return {
        "status": "REASSESSED",
        "buckets": len(buckets),
        "alerts": actions.count(Action.ALERT),
        "notices": actions.count(Action.RESOLVE),
    }


def _beat(
    heartbeats: HeartbeatStore, change: BucketChange, context: LambdaContext
) -> dict[str, Any]:
    """A heartbeat's event came the whole way: record it, and close the path's silent alert."""
    path = EventPath(change.bucket.account, change.bucket.region)
    evaluated_at = epoch_ms()
    beaten_at = _epoch_ms_of(change.trigger.event_time) or evaluated_at
    heartbeats.record_beat(path, beaten_at)
    settled = NOTIFIER.settle(
        beat(change.bucket, change.trigger), evaluated_at, lease_until=_lease(context)
    )
    metrics.add_metric(name="Heartbeats", unit=MetricUnit.Count, value=1)
    logger.info("Heartbeat", path=path.label, action=settled.action.value)
    return {
        "status": "HEARTBEAT",
        "bucket": change.bucket.name,
        "action": settled.action.value,
        "notice": settled.message_id if settled.action is Action.RESOLVE else None,
    }


def _watch(event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
    """The watchdog, at every heartbeat interval: one alert per path silent for two intervals
    (the lifecycle sends it once). Paths are those that ever beat and this account's own."""
    heartbeat = SETTINGS.heartbeat
    if heartbeat is None or HEARTBEATS is None:
        logger.warning("Heartbeat watchdog invoked with the heartbeat off")
        return {"status": "IGNORED", "reason": "the heartbeat is off"}
    now_ms = _epoch_ms_of(event.get("time")) or epoch_ms()
    beats, expected = HEARTBEATS.read()
    own = paths_of([account_of(context)], heartbeat.regions)
    unheard = [path for path in own if path not in beats and path not in expected]
    if unheard:
        HEARTBEATS.expect(unheard, now_ms)
        expected.update(dict.fromkeys(unheard, now_ms))
    silences = silent_paths(beats, expected, now_ms, heartbeat.minutes)
    trigger = Trigger(source="heartbeat", event_time=str(event.get("time") or ""))
    alerts = []
    for silence in silences:
        settled = NOTIFIER.settle(
            silent(silence, trigger, heartbeat.minutes), epoch_ms(), lease_until=_lease(context)
        )
        if settled.action is Action.ALERT:
            alerts.append(settled.message_id)
    metrics.add_metric(name="SilentEventPaths", unit=MetricUnit.Count, value=len(silences))
    logger.info(
        "Heartbeat watchdog",
        paths=len({*beats, *expected}),
        silent=[silence.path.label for silence in silences],
    )
    return {
        "status": "WATCHDOG",
        "silent": [silence.path.label for silence in silences],
        "alerts": alerts,
    }


def _epoch_ms_of(text: Any) -> int | None:
    try:
        return epoch_ms(parse_iso(text)) if isinstance(text, str) and text else None
    except ValueError:
        return None


def _lease(context: LambdaContext) -> int:
    """Claims on announcements last as long as this invocation may run (lifecycle.Claim)."""
    return epoch_ms() + context.get_remaining_time_in_millis() + CLAIM_MARGIN_MS


def _assess(bucket: BucketRef, trigger: Trigger) -> Finding:
    return assess(bucket, trigger, SETTINGS.policy, READER, keys=KEYS, organization=ORGANIZATION)


def _remediation_metric(outcome: Remediation) -> str:
    if outcome.applied:
        return "Remediated" if outcome.verified else "RemediationNotVerified"
    return "RemediationsDryRun" if outcome.mode is Mode.DRY_RUN else "RemediationsRefused"


def _is_sqs_batch(event: Any) -> bool:
    records = event.get("Records") if isinstance(event, Mapping) else None
    return isinstance(records, list) and all(
        isinstance(record, Mapping) and record.get("eventSource") == "aws:sqs" for record in records
    )


def _delayed_batch(records: list[dict[str, Any]], context: LambdaContext) -> dict[str, Any]:
    """Bucket creations after the grace period. A record that fails goes back to the queue
    (``ReportBatchItemFailures``); after its last receive the queue keeps it in its dead-letter
    queue. An unparseable body is kept in the failure queue like any invalid event."""
    failures = []
    for record in records:
        try:
            try:
                event = json.loads(record.get("body") or "")
            except ValueError:
                _keep_invalid(record.get("body"), "delay queue message body is not JSON")
                continue
            _process(event, context)
        except Exception:
            logger.exception("Delayed event failed; the queue delivers it again")
            failures.append({"itemIdentifier": str(record.get("messageId", ""))})
    return {"batchItemFailures": failures}


def _keep_invalid(event: Any, reason: str) -> dict[str, Any]:
    logger.error("Invalid event kept in the failure queue", reason=reason)
    metrics.add_metric(name="InvalidEvents", unit=MetricUnit.Count, value=1)
    # If this send fails the exception fails the invocation, and Lambda's own retries and
    # on-failure destination keep the event instead.
    FAILURES.keep(event, reason)
    return {"status": "INVALID", "reason": reason}
