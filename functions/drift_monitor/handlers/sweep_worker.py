"""Lambda entry point of the sweep's worker: one work item (an account's listing page) at a time.

For each item it lists the page, queues the next page at once, evaluates the page's buckets with
the event path's own ``assess`` (in the bucket's account, through its reader role), writes them
to the report, and records the counts. The worker that completes a run's last item sends the
run's one digest.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from ..aws.accounts import OrganizationDirectory, management_account
from ..aws.credentials import RETRY_CONFIG, AccountAccess, error_code, sweep_config
from ..aws.heartbeats import HeartbeatStore
from ..aws.keys import KeyDirectory
from ..aws.outputs import SecurityHubOutput
from ..aws.publisher import AlertPublisher
from ..aws.run_store import ItemOutcome, RunRecord, RunStore
from ..aws.s3_reader import S3Reader
from ..aws.state_store import StateStore, state_key
from ..aws.tag_index import exempt_index
from ..aws.work_queue import WorkQueue
from ..domain.alerts import SCHEMA_VERSION, alert_document, build_notice
from ..domain.clock import epoch_ms, iso, iso_of_ms, parse_iso
from ..domain.errors import ListingDenied, RoleRefused
from ..domain.events import account_of
from ..domain.heartbeat import silent_paths
from ..domain.lifecycle import drift_seconds, first_announcement
from ..domain.models import ACCOUNT_ID, Finding, Status, Trigger
from ..domain.work import InvalidWorkItem, WorkItem
from ..sweep.digest import (
    SweepRun,
    build_digest,
    digest_candidates,
    digest_entry,
    has_exceptions_to_report,
    summary,
)
from ..sweep.engine import cannot_sweep, list_regional, sweep
from ..sweep.report import ReportStore
from ..sweep.settings import load_sweep_worker_settings
from ..sweep.states import SweepChanges, plan_sweep
from .telemetry import STATUS_METRIC, logger, metrics

# Kept back from the timeout to finish the buckets in flight, write the report and, for the last
# item of a run, send the digest; the rest of the page is queued as a new item.
FINISH_MARGIN_MS = 60_000
# Each item keeps this many of its most severe findings for the digest, which holds fewer.
CANDIDATES_PER_ITEM = 200

# ``s3-encryption-monitor doctor`` asks the worker to try each member's reader role as the sweep
# would, with its own role: {"probe": "readerRoles", "accounts": [...]}.
READER_PROBE = "readerRoles"
MAX_PROBED_ACCOUNTS = 1000

SETTINGS = load_sweep_worker_settings(os.environ)
if SETTINGS.policy_from_defaults:
    logger.warning("ENCRYPTION_POLICY is not set: the default policy applies")
_session = boto3.Session()
ACCESS = AccountAccess(_session, role_name=SETTINGS.member_role_name)
READER = S3Reader(ACCESS, config=sweep_config(SETTINGS.concurrency))
READER.client(READER.home_region)
KEYS = KeyDirectory(ACCESS) if SETTINGS.policy.key_checks else None
ORGANIZATION = OrganizationDirectory.of(ACCESS) if SETTINGS.policy.allow_organization_keys else None
_dynamodb = _session.client("dynamodb", config=RETRY_CONFIG)
STORE = RunStore(_dynamodb, SETTINGS.run_table)
STATE = StateStore(_dynamodb, SETTINGS.state_table)
SECURITY_HUB = (
    SecurityHubOutput(
        _session.client("securityhub", config=RETRY_CONFIG), SETTINGS.security_hub_product_arn
    )
    if SETTINGS.security_hub_product_arn
    else None
)
REPORTS = ReportStore(_session.client("s3", config=RETRY_CONFIG), SETTINGS.report_bucket)
QUEUE = WorkQueue(_session.client("sqs", config=RETRY_CONFIG), SETTINGS.work_queue_url)
HEARTBEATS = HeartbeatStore(_dynamodb, SETTINGS.state_table) if SETTINGS.heartbeat else None
PUBLISHER = AlertPublisher(_session.client("sns", config=RETRY_CONFIG), SETTINGS.topic_arn)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """An SQS batch; the items that failed go back to the queue (``ReportBatchItemFailures``)."""
    ACCESS.home_account = account_of(context)
    if event.get("probe") == READER_PROBE:
        return _probe_readers(event.get("accounts"))
    failures = []
    for record in event.get("Records", []):
        try:
            _process(record, context)
        except InvalidWorkItem as invalid:
            # Never processable: after the queue's last delivery it waits in the dead-letter queue.
            logger.error("Not a work item", record=_id(record), reason=str(invalid))
            metrics.add_metric(name="InvalidWorkItems", unit=MetricUnit.Count, value=1)
            failures.append({"itemIdentifier": _id(record)})
        except Exception:
            logger.exception("Work item failed; the queue delivers it again", record=_id(record))
            metrics.add_metric(name="WorkItemRetries", unit=MetricUnit.Count, value=1)
            failures.append({"itemIdentifier": _id(record)})
    return {"batchItemFailures": failures}


def _probe_readers(accounts: Any) -> dict[str, Any]:
    """Assumes each account's reader role and lists one page of its buckets, as the sweep does.
    Read-only; answers per account ``{"ok": true}`` or what failed."""
    if (
        not isinstance(accounts, list)
        or len(accounts) > MAX_PROBED_ACCOUNTS
        or not all(isinstance(a, str) and ACCOUNT_ID.match(a) for a in accounts)
    ):
        return {"error": f"accounts must be a list of at most {MAX_PROBED_ACCOUNTS} account ids"}

    # Fresh credentials: the role as it is now, not as an earlier sweep assumed it.
    access = AccountAccess(
        _session, role_name=SETTINGS.member_role_name, home_account=ACCESS.home_account
    )

    def probe(account: str) -> dict[str, Any]:
        try:
            s3 = access.client("s3", READER.home_region, account)
            s3.list_buckets(MaxBuckets=1)
        except RoleRefused as refused:
            return {"ok": False, "error": f"cannot assume {refused.role_arn}: {refused.error_code}"}
        except ClientError as error:
            return {"ok": False, "error": f"ListBuckets: {error_code(error)}"}
        return {"ok": True}

    with ThreadPoolExecutor(max_workers=SETTINGS.concurrency) as pool:
        results = dict(zip(accounts, pool.map(probe, accounts), strict=True))
    failed = [account for account, result in results.items() if not result["ok"]]
    logger.info("Reader roles probed", accounts=len(accounts), failed=failed)
    return {"probe": READER_PROBE, "accounts": results}


def _process(record: dict[str, Any], context: LambdaContext) -> None:
    item = WorkItem.from_json(record.get("body", ""))
    receives = int(record.get("attributes", {}).get("ApproximateReceiveCount", "1"))
    logger.append_keys(run=item.run_id, item=item.item_id, sweep_account=item.account)
    if STORE.is_done(item):
        logger.info("Duplicate delivery of a completed work item")
        metrics.add_metric(name="DuplicateWorkItems", unit=MetricUnit.Count, value=1)
    else:
        try:
            outcome = _sweep_page(item, context)
        except (RoleRefused, ListingDenied) as refused:
            # The account cannot be entered or listed: reported in the digest, never retried.
            logger.warning("Account could not be swept", reason=str(refused))
            metrics.add_metric(name="UnreachableAccounts", unit=MetricUnit.Count, value=1)
            outcome = ItemOutcome(error=_cannot_sweep(item.account, refused))
        except Exception as error:
            if receives < SETTINGS.max_receives:
                raise
            # The last delivery: record the failure, so the run still ends with a digest.
            logger.exception("Work item given up after its last attempt", attempts=receives)
            metrics.add_metric(name="FailedWorkItems", unit=MetricUnit.Count, value=1)
            outcome = ItemOutcome(
                error=f"page {item.page} failed after {receives} attempts: {error}", failed=True
            )
        STORE.complete(item, outcome)
    _finish_if_last(item)


def _sweep_page(item: WorkItem, context: LambdaContext) -> ItemOutcome:
    listing_errors: tuple[str, ...] = ()
    if item.regional:
        # A few hundred buckets at most (S3's quotas: 100 directory and 10 table buckets per
        # region by default): the item never stops early, so it never resumes by name.
        regional = list_regional(READER, item.account, SETTINGS.regions)
        buckets, listing_errors = list(regional.buckets), regional.errors
        if regional.not_offered:
            logger.info("Not offered in these regions", listings=list(regional.not_offered))
        if regional.skipped:
            logger.warning("Listed entries skipped", listings=list(regional.skipped))
        may_stop_early = False
    else:
        page = READER.list_page(item.account, item.token, SETTINGS.page_size)
        if item.page == 0 and item.part == 0:
            _queue(item.other_kinds())
        if page.next_token and item.part == 0:
            _queue(item.next_page(page.next_token))
        buckets = [b for b in page.buckets if item.after is None or b.name > item.after]
        may_stop_early = True

    # Taken before the reads: the rows written are at least as new as this moment.
    evaluated_at = epoch_ms()
    result = sweep(
        item.account,
        SETTINGS.policy,
        READER,
        Trigger(source="sweep", event_time=item.started_at, event_id=item.run_id),
        keep=lambda _finding: True,
        buckets=buckets,
        exempt_tags=exempt_index(ACCESS, item.account, SETTINGS.policy),
        keys=KEYS,
        organization=ORGANIZATION,
        concurrency=SETTINGS.concurrency,
        on_finding=_log_finding,
        out_of_time=lambda: (
            may_stop_early and context.get_remaining_time_in_millis() < FINISH_MARGIN_MS
        ),
    )
    if not result.complete:
        logger.warning("Out of time: the rest of the page is queued", after=result.stopped_after)
        _queue(item.resumed_after(result.stopped_after))
    findings = sorted(
        result.tally.kept, key=lambda finding: (finding.bucket.kind, finding.bucket.name)
    )
    now = datetime.now(UTC)
    changes = plan_sweep(STATE, item.account, findings, evaluated_at, now)
    if SECURITY_HUB is not None:
        # Before the rows say so: a failed import fails the item, and its retry imports again.
        _import_findings(SECURITY_HUB, findings, changes, now)
    STATE.write_sweep(changes.rows, iso(now), SETTINGS.concurrency)
    if SETTINGS.policy.key_checks:
        # §15: the key index knows every swept bucket's key, compliant ones included, so a KMS
        # event re-reads buckets no event has touched since the deployment.
        indexed = STATE.index_keys(findings, SETTINGS.concurrency)
        metrics.add_metric(name="KeyIndexWrites", unit=MetricUnit.Count, value=indexed)

    def entry(finding: Finding) -> dict[str, Any]:
        key = state_key(finding.bucket)
        return digest_entry(
            finding,
            SETTINGS.policy,
            first_detected=changes.first_detected.get(key),
            new=key in changes.new if finding.alerts else None,
        )

    REPORTS.write_part(item, [entry(finding) for finding in findings])
    REPORTS.write_candidates(
        item, digest_candidates(findings, SETTINGS.policy, CANDIDATES_PER_ITEM, entry)
    )
    metrics.add_metric(name="SweptBuckets", unit=MetricUnit.Count, value=result.tally.evaluated)
    metrics.add_metric(name="MissedByEvents", unit=MetricUnit.Count, value=changes.missed)
    for status, metric in STATUS_METRIC.items():
        metrics.add_metric(name=metric, unit=MetricUnit.Count, value=result.tally.statuses[status])
    if listing_errors:
        logger.warning("Some listings failed", errors=list(listing_errors))
    return ItemOutcome(
        statuses={status.value: n for status, n in result.tally.statuses.items()},
        violations={code.value: n for code, n in result.tally.violations.items()},
        changes=dict(changes.counts),
        error="; ".join(listing_errors) or None,
    )


def _import_findings(
    output: SecurityHubOutput, findings: list[Finding], changes: SweepChanges, now: datetime
) -> None:
    """Every open drift of the page (Security Hub deletes a finding not updated for 90 days, so
    each sweep imports the open ones again) and the drifts it finds gone, as Security Hub
    findings: one finding per bucket, whether an event or the sweep saw it first."""
    announced = {state_key(finding.bucket): before for finding, _, before in changes.announced}
    documents: list[tuple[dict[str, Any], bool]] = []
    for finding in findings:
        if not finding.alerts:
            continue
        key = state_key(finding.bucket)
        document = alert_document(finding, SETTINGS.policy)
        document["firstDetected"] = changes.first_detected.get(key)
        created = key in announced and first_announcement(announced[key])
        documents.append((document, created))
    for finding, _, previous in changes.closed:
        assert previous is not None
        notice = build_notice(finding, previous, SETTINGS.policy, drift_seconds(previous, now))
        documents.append((notice.document, False))
    if documents:
        output.send_many(documents, iso(now))
        metrics.add_metric(name="SecurityHubImports", unit=MetricUnit.Count, value=len(documents))


def _queue(item: WorkItem) -> None:
    # Counted as pending before it is sent, so the run cannot look finished in between.
    STORE.add(item)
    QUEUE.send(item)


def _finish_if_last(item: WorkItem) -> None:
    run = STORE.run(item.run_id)
    if run.pending > 0 or run.finished_at or not STORE.claim_digest(run.run_id, item.item_id):
        return
    finished_at = iso()
    accounts = {
        record.account: {**summary(record.statuses), "error": record.error}
        for record in STORE.accounts(run.run_id)
    }
    counts = summary(run.statuses)
    manifest = {
        "schemaVersion": SCHEMA_VERSION,
        "run": run.run_id,
        "startedAt": run.started_at,
        "finishedAt": finished_at,
        "trigger": run.trigger,
        "summary": counts,
        "violationCounts": run.violations,
        "changes": run.changes,
        "failedItems": run.failed_items,
        "accounts": accounts,
        "files": [REPORTS.uri(key) for key in REPORTS.parts(run.run_id)],
        "policy": SETTINGS.policy.to_dict(),
    }
    sweep_run = SweepRun(
        account=str(ACCESS.home_account),
        trigger=run.trigger,
        started_at=run.started_at,
        finished_at=finished_at,
        counts=counts,
        violation_counts=run.violations,
        entries=REPORTS.candidates(run.run_id),
        failed_items=run.failed_items,
        accounts=accounts,
        report={
            "uri": REPORTS.uri(REPORTS.prefix(run.run_id)),
            "manifest": REPORTS.write_manifest(run.run_id, manifest),
        },
        changes=run.changes,
        silent_paths=_silent_paths(),
    )
    message_id = None
    digest = build_digest(sweep_run, SETTINGS.policy)
    if (
        sweep_run.alerting
        or sweep_run.silent_paths
        or not sweep_run.complete
        or sweep_run.unreachable
        or has_exceptions_to_report(digest.document)
        or SETTINGS.digest_when_compliant
    ):
        message_id = PUBLISHER.publish(digest)
    STORE.finish(run.run_id, finished_at, message_id)
    metrics.add_metric(name="SweepRunsFinished", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="SweepDurationSeconds", unit=MetricUnit.Seconds, value=_seconds(run))
    metrics.add_metric(name="SweepOpenDrift", unit=MetricUnit.Count, value=sweep_run.alerting)
    if not sweep_run.complete:
        metrics.add_metric(name="IncompleteSweeps", unit=MetricUnit.Count, value=1)
    logger.info(
        "Sweep finished",
        complete=sweep_run.complete,
        accounts=len(accounts),
        unreachable=len(sweep_run.unreachable),
        digest_message_id=message_id,
        report=sweep_run.report,
        summary=counts,
    )


def _silent_paths() -> list[dict[str, Any]] | None:
    """The event paths silent now (the heartbeat's view), for the digest; None when it is off."""
    if SETTINGS.heartbeat is None or HEARTBEATS is None:
        return None
    beats, expected = HEARTBEATS.read()
    silences = silent_paths(beats, expected, epoch_ms(), SETTINGS.heartbeat.minutes)
    return [
        {
            "account": silence.path.account,
            "region": silence.path.region,
            "lastBeat": None if silence.last_beat_ms is None else iso_of_ms(silence.last_beat_ms),
        }
        for silence in silences
    ]


def _cannot_sweep(account: str, refused: Exception) -> str:
    unreached_management = (
        isinstance(refused, RoleRefused)
        and SETTINGS.delegated_admin
        and account == _management_account()
    )
    return cannot_sweep(
        refused,
        role_arn=None if ACCESS.reads_directly(account) else ACCESS.role_arn(account),
        management_account=unreached_management,
    )


@cache
def _management_account() -> str | None:
    return management_account(ACCESS.client("organizations", ACCESS.home_region))


def _log_finding(finding: Finding) -> None:
    # Compliant buckets are only counted: a million log lines a day would say nothing new.
    if finding.status is not Status.COMPLIANT:
        logger.info(
            "Bucket evaluated",
            bucket=finding.bucket.name,
            region=finding.bucket.region,
            kind=finding.bucket.kind.value,
            status=finding.status.value,
            violations=[violation.code.value for violation in finding.violations],
            detail=finding.detail,
        )


def _seconds(run: RunRecord) -> float:
    try:
        started = parse_iso(run.started_at)
    except ValueError:
        return 0.0
    return max((datetime.now(UTC) - started).total_seconds(), 0.0)


def _id(record: dict[str, Any]) -> str:
    return str(record.get("messageId", ""))
