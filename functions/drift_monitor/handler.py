"""Lambda entry point: S3 CloudTrail events in, drift alerts out.

Thin on purpose: parse the event once, delegate to ``assess``, publish, count.
"""

from __future__ import annotations

import os
from typing import Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from .assessment import assess
from .credentials import RETRY_CONFIG, AccountAccess
from .events import FailedCall, InvalidEvent, account_of, parse_event
from .publisher import AlertPublisher, FailureQueue
from .s3_reader import S3Reader
from .settings import load_settings
from .telemetry import STATUS_METRIC, logger, metrics, tracer

# Cold start: configuration validated and clients created once per container. An invalid
# ENCRYPTION_POLICY fails here, so every invocation fails and every event is kept for a retry.
SETTINGS = load_settings(os.environ)
if SETTINGS.policy_from_defaults:
    logger.warning("ENCRYPTION_POLICY is not set: the default policy applies")
_session = boto3.Session()
# Buckets of other accounts (the organization topology) are read through MEMBER_ROLE_NAME there.
READER = S3Reader(AccountAccess(_session, role_name=SETTINGS.member_role_name))
READER.client(READER.home_region)
PUBLISHER = AlertPublisher(_session.client("sns", config=RETRY_CONFIG), SETTINGS.topic_arn)
FAILURES = FailureQueue(_session.client("sqs", config=RETRY_CONFIG), SETTINGS.failure_queue_url)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        change = parse_event(event)
    except FailedCall as failed:
        logger.info(
            "Ignored a failed API call", event_name=failed.event_name, error_code=failed.error_code
        )
        metrics.add_metric(name="IgnoredFailedCalls", unit=MetricUnit.Count, value=1)
        return {"status": "IGNORED", "reason": str(failed)}
    except InvalidEvent as invalid:
        return _keep_invalid(event, invalid.reason)

    READER.access.home_account = account_of(context)
    logger.append_keys(bucket=change.bucket.name, account=change.bucket.account)
    finding = assess(change.bucket, change.trigger, SETTINGS.policy, READER)
    metrics.add_metric(name="Evaluations", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name=STATUS_METRIC[finding.status], unit=MetricUnit.Count, value=1)

    message_id = None
    if finding.alerts:
        # Imported on the first alert, not at every cold start: most events are compliant.
        from .alerts import build_alert  # noqa: PLC0415

        message_id = PUBLISHER.publish(build_alert(finding, SETTINGS.policy))
    logger.info(
        "Bucket evaluated",
        status=finding.status.value,
        region=change.bucket.region,
        event_name=change.trigger.event_name,
        event_id=change.trigger.event_id,
        violations=[violation.code.value for violation in finding.violations],
        detail=finding.detail,
        alert_message_id=message_id,
    )
    return {"status": finding.status.value, "bucket": change.bucket.name, "alert": message_id}


def _keep_invalid(event: Any, reason: str) -> dict[str, Any]:
    logger.error("Invalid event kept in the failure queue", reason=reason)
    metrics.add_metric(name="InvalidEvents", unit=MetricUnit.Count, value=1)
    # If this send fails the exception fails the invocation, and Lambda's own retries and
    # on-failure destination keep the event instead.
    FAILURES.keep(event, reason)
    return {"status": "INVALID", "reason": reason}
