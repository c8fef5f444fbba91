"""Adapter around the heartbeats' one item in the state table: each path's last beat.

One item (key ``heartbeats``) holds an attribute per account and region: ``beat:<account>/<region>``
(epoch ms of the last beat's event) and, for a path the watchdog expects but never heard,
``expected:<account>/<region>`` (when it began to expect it). One item, read with one GetItem by the
watchdog and the digest: an organization of 2,000 accounts in 3 regions is some 200 KB, under
DynamoDB's 400 KB per item. Top-level attributes, so a beat is one SET that needs nothing to
exist before it. The item has no ``openKey``: the sweep's index never sees it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from ..domain.heartbeat import EventPath
from .credentials import error_code
from .state_store import KEY

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

HEARTBEATS_KEY = "heartbeats"
BEAT_PREFIX = "beat:"
EXPECTED_PREFIX = "expected:"
# Attributes set by one UpdateItem, well under DynamoDB's 4 KB expression limit.
_PER_UPDATE = 50


class HeartbeatStore:
    def __init__(self, dynamodb: DynamoDBClient, table: str) -> None:
        self._db = dynamodb
        self._table = table

    def record_beat(self, path: EventPath, at_ms: int) -> bool:
        """Records a beat unless a later one is recorded already (events arrive in any order);
        False if it was older."""
        try:
            self._db.update_item(
                TableName=self._table,
                Key={KEY: {"S": HEARTBEATS_KEY}},
                UpdateExpression="SET #b = :t",
                ConditionExpression="attribute_not_exists(#b) OR #b < :t",
                ExpressionAttributeNames={"#b": BEAT_PREFIX + path.label},
                ExpressionAttributeValues={":t": {"N": str(at_ms)}},
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def read(self) -> tuple[dict[EventPath, int], dict[EventPath, int]]:
        """Each path's last beat, and when each path never heard began to be expected."""
        response = self._db.get_item(
            TableName=self._table, Key={KEY: {"S": HEARTBEATS_KEY}}, ConsistentRead=True
        )
        beats: dict[EventPath, int] = {}
        expected: dict[EventPath, int] = {}
        for name, value in response.get("Item", {}).items():
            if name.startswith(BEAT_PREFIX):
                beats[EventPath.parse(name.removeprefix(BEAT_PREFIX))] = int(value["N"])
            elif name.startswith(EXPECTED_PREFIX):
                expected[EventPath.parse(name.removeprefix(EXPECTED_PREFIX))] = int(value["N"])
        return beats, expected

    def expect(self, paths: Sequence[EventPath], now_ms: int) -> None:
        """From now on ``paths`` must beat (an earlier expectation stands)."""
        for start in range(0, len(paths), _PER_UPDATE):
            chunk = paths[start : start + _PER_UPDATE]
            names = {f"#e{i}": EXPECTED_PREFIX + path.label for i, path in enumerate(chunk)}
            sets = ", ".join(f"{name} = if_not_exists({name}, :now)" for name in names)
            self._db.update_item(
                TableName=self._table,
                Key={KEY: {"S": HEARTBEATS_KEY}},
                UpdateExpression=f"SET {sets}",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={":now": {"N": str(now_ms)}},
            )
