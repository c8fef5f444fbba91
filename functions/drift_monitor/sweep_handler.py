"""Lambda entry point of the scheduled sweep: every bucket, one digest per run.

Thin on purpose: ``sweep`` evaluates, ``build_digest`` formats, this module counts and publishes.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from .digest import SweepRun, build_digest, summary
from .events import schedule_trigger
from .models import Finding, Status
from .publisher import AlertPublisher
from .s3_reader import RETRY_CONFIG, S3Reader, sweep_config
from .settings import load_sweep_settings
from .sweep import sweep
from .telemetry import STATUS_METRIC, logger, metrics, tracer

# Kept back from the timeout to let the buckets in flight finish and the digest go out.
FINISH_MARGIN_MS = 60_000

SETTINGS = load_sweep_settings(os.environ)
if SETTINGS.policy_from_defaults:
    logger.warning("ENCRYPTION_POLICY is not set: the default policy applies")
_session = boto3.Session()
READER = S3Reader(_session, config=sweep_config(SETTINGS.concurrency))
READER.client(READER.home_region)
PUBLISHER = AlertPublisher(_session.client("sns", config=RETRY_CONFIG), SETTINGS.topic_arn)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    account = context.invoked_function_arn.split(":")[4]
    trigger = schedule_trigger(event)
    started_at = _now()
    result = sweep(
        account,
        SETTINGS.policy,
        READER,
        trigger,
        keep=lambda finding: finding.alerts,
        concurrency=SETTINGS.concurrency,
        on_finding=_log_finding,
        out_of_time=lambda: context.get_remaining_time_in_millis() < FINISH_MARGIN_MS,
    )
    counts = summary(result.tally)
    metrics.add_metric(name="SweptBuckets", unit=MetricUnit.Count, value=counts["buckets"])
    for status, metric in STATUS_METRIC.items():
        metrics.add_metric(name=metric, unit=MetricUnit.Count, value=result.tally.statuses[status])
    if not result.complete:
        metrics.add_metric(name="IncompleteSweeps", unit=MetricUnit.Count, value=1)
        logger.error(
            "Sweep ran out of time: buckets after the last one started were not evaluated",
            evaluated=counts["buckets"],
            stopped_after=result.stopped_after,
            timeout_margin_ms=FINISH_MARGIN_MS,
        )

    message_id = None
    if result.tally.alerting or not result.complete or SETTINGS.digest_when_compliant:
        run = SweepRun(result, trigger.to_dict(), started_at, _now())
        message_id = PUBLISHER.publish(build_digest(run, SETTINGS.policy))
    logger.info(
        "Sweep finished", complete=result.complete, digest_message_id=message_id, summary=counts
    )
    return {"complete": result.complete, "summary": counts, "digest": message_id}


def _log_finding(finding: Finding) -> None:
    # Compliant buckets are only counted: a million log lines a day would say nothing new.
    if finding.status is not Status.COMPLIANT:
        logger.info(
            "Bucket evaluated",
            bucket=finding.bucket.name,
            region=finding.bucket.region,
            status=finding.status.value,
            violations=[violation.code.value for violation in finding.violations],
            detail=finding.detail,
        )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
