"""Adapter around the heartbeats' rows in the state table: each path's last beat.

One row per account and region (key ``heartbeat#<account>/<region>``): ``lastBeat`` (epoch ms of
the last beat's event) and, for a path the watchdog expects before it ever beat,
``expectedSince``. Each row carries ``openKey = heartbeat``, a partition of the sparse ``open``
index of its own: the watchdog and the digest read every path with one query, and the sweep,
which queries ``<account>#<region>`` partitions, never sees them. A beat writes its own small row
(one write unit), so an organization of thousands of paths costs no more per beat than one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from ..domain.heartbeat import EventPath
from .credentials import error_code
from .state_store import KEY, OPEN_INDEX, OPEN_KEY

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

ROW_PREFIX = "heartbeat#"
HEARTBEATS = "heartbeat"  # their partition of the open index
LAST_BEAT = "lastBeat"
EXPECTED_SINCE = "expectedSince"


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
                Key=_key(path),
                UpdateExpression=f"SET {LAST_BEAT} = :t, {OPEN_KEY} = :hb",
                ConditionExpression=f"attribute_not_exists({LAST_BEAT}) OR {LAST_BEAT} < :t",
                ExpressionAttributeValues={":t": {"N": str(at_ms)}, ":hb": {"S": HEARTBEATS}},
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def read(self) -> tuple[dict[EventPath, int], dict[EventPath, int]]:
        """Each path's last beat, and since when each path that never beat is expected."""
        beats: dict[EventPath, int] = {}
        expected: dict[EventPath, int] = {}
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": OPEN_INDEX,
            "KeyConditionExpression": "#o = :hb",
            "ExpressionAttributeNames": {"#o": OPEN_KEY},
            "ExpressionAttributeValues": {":hb": {"S": HEARTBEATS}},
        }
        while True:
            response = self._db.query(**request)
            for item in response.get("Items", []):
                path = EventPath.parse(item[KEY]["S"].removeprefix(ROW_PREFIX))
                if LAST_BEAT in item:
                    beats[path] = int(item[LAST_BEAT]["N"])
                elif EXPECTED_SINCE in item:
                    expected[path] = int(item[EXPECTED_SINCE]["N"])
            if not response.get("LastEvaluatedKey"):
                return beats, expected
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def expect(self, paths: Sequence[EventPath], now_ms: int) -> None:
        """From now on ``paths`` must beat (an earlier expectation stands)."""
        for path in paths:
            self._db.update_item(
                TableName=self._table,
                Key=_key(path),
                UpdateExpression=(
                    f"SET {EXPECTED_SINCE} = if_not_exists({EXPECTED_SINCE}, :now), "
                    f"{OPEN_KEY} = :hb"
                ),
                ExpressionAttributeValues={":now": {"N": str(now_ms)}, ":hb": {"S": HEARTBEATS}},
            )


def _key(path: EventPath) -> dict[str, Any]:
    return {KEY: {"S": ROW_PREFIX + path.label}}
