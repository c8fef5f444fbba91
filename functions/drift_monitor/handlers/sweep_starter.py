"""Lambda entry point of the scheduled sweep: starts a run with one work item per account.

Thin on purpose: the accounts come from the settings or Organizations, the run's bookkeeping from
``RunStore``, and the sweep worker (``sweep_worker``) does the reading, page by page.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from ..aws.accounts import accounts_to_sweep, organization_accounts
from ..aws.credentials import RETRY_CONFIG
from ..aws.run_store import RunStore
from ..aws.work_queue import WorkQueue
from ..domain.clock import iso
from ..domain.events import account_of, schedule_trigger
from ..domain.models import Trigger
from ..domain.work import WorkItem
from ..sweep.settings import load_sweep_starter_settings
from .telemetry import logger, metrics

SETTINGS = load_sweep_starter_settings(os.environ)
_session = boto3.Session()
STORE = RunStore(_session.client("dynamodb", config=RETRY_CONFIG), SETTINGS.run_table)
QUEUE = WorkQueue(_session.client("sqs", config=RETRY_CONFIG), SETTINGS.work_queue_url)
ORGANIZATIONS = (
    _session.client("organizations", config=RETRY_CONFIG) if SETTINGS.organization else None
)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    trigger = schedule_trigger(event)
    started_at = trigger.event_time or iso()
    members = organization_accounts(ORGANIZATIONS) if ORGANIZATIONS is not None else []
    accounts = accounts_to_sweep(account_of(context), SETTINGS.accounts, members)
    run_id = run_id_of(trigger, started_at)
    # A retried invocation finds its run started: it queues the same items again, and the
    # worker counts each item once however often it arrives.
    new = STORE.start(run_id, started_at, trigger.to_dict(), len(accounts))
    QUEUE.send_all(WorkItem(run_id, started_at, account) for account in accounts)
    metrics.add_metric(name="SweepRunsStarted", unit=MetricUnit.Count, value=1 if new else 0)
    metrics.add_metric(name="SweptAccounts", unit=MetricUnit.Count, value=len(accounts))
    logger.info("Sweep started", run=run_id, accounts=len(accounts), retried=not new)
    return {"run": run_id, "accounts": len(accounts), "retried": not new}


def run_id_of(trigger: Trigger, started_at: str) -> str:
    """Sortable by start time, and the same for every retry of one schedule event."""
    suffix = (trigger.event_id or uuid.uuid4().hex)[:8]
    return f"{started_at.replace(':', '-')}-{suffix}"
