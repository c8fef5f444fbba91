"""Adapter around the sweep's DynamoDB table: how far each run has got, and its counts.

Queues deliver at least once, so every step is idempotent: an item is counted as queued once and
as done once (a marker item written in the same transaction as the counters), and only one
worker, the one that brings the count of pending items to zero, sends the run's digest.

Items of the table, all under the run id (partition key ``pk``, sort key ``sk``):
- ``RUN``: pending items, status and violation counts, the trigger, the digest's state;
- ``ACCOUNT#<id>``: the account's status counts and, if it could not be swept, why;
- ``QUEUED#<item>`` and ``DONE#<item>``: markers that make counting idempotent.
Every item expires (``expiresAt``, the table's TTL attribute) after ``retention_days``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from ..domain.work import WorkItem
from .credentials import error_code

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

RUN = "RUN"
ACCOUNT_PREFIX = "ACCOUNT#"
_STATUS_PREFIX = "s_"
_VIOLATION_PREFIX = "v_"
_CHANGE_PREFIX = "c_"
DEFAULT_RETENTION_DAYS = 30


@dataclass(frozen=True)
class ItemOutcome:
    """What one work item found: counts by status and by violation code, or why it could not."""

    statuses: Mapping[str, int] = field(default_factory=dict)
    violations: Mapping[str, int] = field(default_factory=dict)
    # Moves since the previous sweep (new drift, resolved, open drift by age band).
    changes: Mapping[str, int] = field(default_factory=dict)
    error: str | None = None  # the account could not be entered or listed, or the item failed
    failed: bool = False  # the item was given up after its last attempt: the run is incomplete


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    started_at: str
    trigger: dict[str, Any]
    pending: int
    statuses: dict[str, int]
    violations: dict[str, int]
    failed_items: int
    finished_at: str | None
    changes: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class AccountRecord:
    account: str
    statuses: dict[str, int]
    error: str | None


class RunStore:
    def __init__(
        self,
        dynamodb: DynamoDBClient,
        table_name: str,
        *,
        retention_days: int = DEFAULT_RETENTION_DAYS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = dynamodb
        self._table = table_name
        self._retention_seconds = retention_days * 86_400
        self._clock = clock

    def _expires_at(self) -> dict[str, str]:
        return {"N": str(int(self._clock()) + self._retention_seconds)}

    def start(
        self, run_id: str, started_at: str, trigger: Mapping[str, Any], accounts: int
    ) -> bool:
        """Records a new run with one pending item per account; False if it was already started
        (a retried invocation of the same schedule event)."""
        try:
            self._db.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": run_id},
                    "sk": {"S": RUN},
                    "startedAt": {"S": started_at},
                    "trigger": {"S": json.dumps(dict(trigger))},
                    "accounts": {"N": str(accounts)},
                    "pending": {"N": str(accounts)},
                    "expiresAt": self._expires_at(),
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def add(self, item: WorkItem) -> bool:
        """Counts ``item`` as pending before it is queued; False if it was counted already."""
        return self._transact(
            [
                self._marker("QUEUED", item),
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": _key(item.run_id, RUN),
                        "UpdateExpression": "ADD pending :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                },
            ]
        )

    def is_done(self, item: WorkItem) -> bool:
        response = self._db.get_item(
            TableName=self._table,
            Key=_key(item.run_id, f"DONE#{item.item_id}"),
            ConsistentRead=True,
            ProjectionExpression="pk",
        )
        return "Item" in response

    def complete(self, item: WorkItem, outcome: ItemOutcome) -> bool:
        """Adds the item's counts to its run and account and counts it done, all or nothing;
        False if it was done already (a duplicate delivery)."""
        run_adds = {"pending": -1, **_counts(outcome)}
        if outcome.failed:
            run_adds["failedItems"] = 1
        account_adds = {"items": 1, **_counts(outcome, violations=False)}
        account_update = _add_expression(account_adds)
        account_update["UpdateExpression"] += " SET expiresAt = if_not_exists(expiresAt, :exp)"
        account_update["ExpressionAttributeValues"][":exp"] = self._expires_at()
        if outcome.error:
            account_update["UpdateExpression"] += ", #error = :error"
            account_update["ExpressionAttributeNames"]["#error"] = "error"
            account_update["ExpressionAttributeValues"][":error"] = {"S": outcome.error[:2000]}
        return self._transact(
            [
                self._marker("DONE", item),
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": _key(item.run_id, RUN),
                        **_add_expression(run_adds),
                    }
                },
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": _key(item.run_id, f"{ACCOUNT_PREFIX}{item.account}"),
                        **account_update,
                    }
                },
            ]
        )

    def run(self, run_id: str) -> RunRecord:
        response = self._db.get_item(
            TableName=self._table, Key=_key(run_id, RUN), ConsistentRead=True
        )
        item = response["Item"]
        return RunRecord(
            run_id=run_id,
            started_at=item["startedAt"]["S"],
            trigger=json.loads(item["trigger"]["S"]),
            pending=int(item["pending"]["N"]),
            statuses=_prefixed(item, _STATUS_PREFIX),
            violations=_prefixed(item, _VIOLATION_PREFIX),
            failed_items=int(item.get("failedItems", {}).get("N", "0")),
            finished_at=item.get("finishedAt", {}).get("S"),
            changes=_prefixed(item, _CHANGE_PREFIX),
        )

    def accounts(self, run_id: str) -> list[AccountRecord]:
        records: list[AccountRecord] = []
        for page in self._db.get_paginator("query").paginate(
            TableName=self._table,
            KeyConditionExpression="pk = :run AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":run": {"S": run_id}, ":prefix": {"S": ACCOUNT_PREFIX}},
            ConsistentRead=True,
        ):
            for item in page.get("Items", []):
                records.append(
                    AccountRecord(
                        account=item["sk"]["S"].removeprefix(ACCOUNT_PREFIX),
                        statuses=_prefixed(item, _STATUS_PREFIX),
                        error=item.get("error", {}).get("S"),
                    )
                )
        return sorted(records, key=lambda record: record.account)

    def claim_digest(self, run_id: str, claimant: str) -> bool:
        """True for exactly one claimant: the first, or the same one again after a failure."""
        try:
            self._db.update_item(
                TableName=self._table,
                Key=_key(run_id, RUN),
                UpdateExpression="SET digestClaimedBy = :me",
                ConditionExpression=(
                    "attribute_not_exists(finishedAt) AND "
                    "(attribute_not_exists(digestClaimedBy) OR digestClaimedBy = :me)"
                ),
                ExpressionAttributeValues={":me": {"S": claimant}},
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def finish(self, run_id: str, finished_at: str, digest_message_id: str | None) -> None:
        values: dict[str, Any] = {":at": {"S": finished_at}}
        expression = "SET finishedAt = :at"
        if digest_message_id:
            expression += ", digestMessageId = :id"
            values[":id"] = {"S": digest_message_id}
        self._db.update_item(
            TableName=self._table,
            Key=_key(run_id, RUN),
            UpdateExpression=expression,
            ExpressionAttributeValues=values,
        )

    def _marker(self, kind: str, item: WorkItem) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self._table,
                "Item": {
                    **_key(item.run_id, f"{kind}#{item.item_id}"),
                    "expiresAt": self._expires_at(),
                },
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    def _transact(self, operations: list[dict[str, Any]]) -> bool:
        """True if applied; False if the first operation's condition (the marker) failed."""
        try:
            self._db.transact_write_items(TransactItems=operations)  # type: ignore[arg-type]
        except ClientError as error:
            reasons = error.response.get("CancellationReasons") or []
            if (
                error_code(error) == "TransactionCanceledException"
                and reasons
                and reasons[0].get("Code") == "ConditionalCheckFailed"
            ):
                return False
            raise
        return True


def _key(run_id: str, sort_key: str) -> dict[str, Any]:
    return {"pk": {"S": run_id}, "sk": {"S": sort_key}}


def _counts(outcome: ItemOutcome, *, violations: bool = True) -> dict[str, int]:
    counts = {f"{_STATUS_PREFIX}{status}": n for status, n in outcome.statuses.items() if n}
    if violations:
        counts.update({f"{_VIOLATION_PREFIX}{code}": n for code, n in outcome.violations.items()})
        counts.update({f"{_CHANGE_PREFIX}{name}": n for name, n in outcome.changes.items() if n})
    return counts


def _add_expression(adds: Mapping[str, int]) -> dict[str, Any]:
    names = {f"#a{index}": name for index, name in enumerate(adds)}
    values = {f":a{index}": {"N": str(value)} for index, value in enumerate(adds.values())}
    clauses = ", ".join(f"#a{index} :a{index}" for index in range(len(adds)))
    return {
        "UpdateExpression": f"ADD {clauses}",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }


def _prefixed(item: Mapping[str, Any], prefix: str) -> dict[str, int]:
    return {
        name.removeprefix(prefix): int(value["N"])
        for name, value in item.items()
        if name.startswith(prefix)
    }
