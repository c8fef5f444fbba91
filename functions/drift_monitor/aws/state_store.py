"""The state table: one row per bucket (account, region, name), written by every event's
evaluation and by the sweep where a verdict changed.

Each write is conditional on the row not holding a newer evaluation, so an event retried late, or
a sweep that read a bucket before an event did, never overwrites what a later read saw. Rows are
ordered by the time of the read they record (epoch milliseconds, taken before the read).

A row with something open carries ``openKey`` (``account#region``), the partition key of the
sparse index ``open``: a sweep reads the open rows of an account and region with one query, and
nothing of the buckets that have nothing open. A drift opens the row (an event's evaluation, or a
sweep's); only a sweep closes it, once it finds nothing open any more, so a drift an event
resolved in between is still read by the next sweep, which counts it resolved in its digest.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import ClientError

from ..domain.evaluation import key_in_use
from ..domain.lifecycle import BucketState, Claim, fingerprint
from ..domain.models import BucketKind, BucketRef, Finding, Status
from .credentials import error_code

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

R = TypeVar("R")
T = TypeVar("T")
KEY = "bucket"
# One attribute per claimed announcement: ``claim:<fingerprint>`` for a drift, and this one for
# the resolution of the drift announced.
CLAIM_PREFIX = "claim:"
RESOLUTION_CLAIM = CLAIM_PREFIX + "resolution"
# Rows of deleted buckets are kept this long, so a late event still finds the deletion.
VANISHED_RETENTION_SECONDS = 30 * 86_400
# The sparse index of open rows, and its partition key.
OPEN_INDEX = "open"
OPEN_KEY = "openKey"
# What the index projects: what the sweep's decisions need (see ``state_of``).
OPEN_ATTRIBUTES = (
    "status",
    "fingerprint",
    "evaluatedAt",
    "violations",
    "firstDetected",
    "alertedFingerprint",
    "lastAlerted",
    "lastResolved",
    "sweptStatus",
    # The heartbeats' rows (``heartbeats``), in a partition of their own.
    "lastBeat",
    "expectedSince",
)


# §15 key health (``keyChecks``): the sparse index from a key's ARN to the rows of the buckets
# whose default encryption uses it, projecting what makes a ``BucketRef``.
KEYS_INDEX = "keys"
KEY_ARN = "keyArn"
KEYS_ATTRIBUTES = ("account", "region", "name", "kind")
# No row, a row the key index alone wrote (no evaluation in it), or an older evaluation.
NOT_NEWER = "attribute_not_exists(#b) OR attribute_not_exists(evaluatedAt) OR evaluatedAt <= :t"


def _hour_epoch(hour: str) -> int:
    return int(datetime.strptime(hour, "%Y-%m-%dT%H").replace(tzinfo=UTC).timestamp())


def open_key(account: str, region: str) -> str:
    return f"{account}#{region}"


def state_key(bucket: BucketRef) -> str:
    # A table or vector bucket may share its name with a general purpose bucket; directory
    # bucket names cannot (the --x-s3 suffix is reserved), so they need no mark of their own.
    name = bucket.name
    if bucket.kind in (BucketKind.TABLE, BucketKind.VECTOR):
        name = f"{bucket.kind.value}:{bucket.name}"
    return f"{bucket.account}#{bucket.region}#{name}"


@dataclass(frozen=True)
class Recorded:
    """The outcome of recording one evaluation: the row before it, or that it was too old."""

    previous: BucketState | None
    superseded: bool = False


class StateStore:
    def __init__(self, dynamodb: DynamoDBClient, table: str, *, index_keys: bool = False) -> None:
        self._db = dynamodb
        self._table = table
        # keyChecks: every evaluation that read the bucket records the key it uses (same write).
        self._index_keys = index_keys

    # -- the event path: one write per evaluation, one more when a message was sent ------------

    def record(
        self,
        finding: Finding,
        evaluated_at: int,
        now: str,
        claim: Claim,
        claiming: str | None,
    ) -> Recorded:
        """Writes the evaluation unless a newer one is recorded; returns the row it replaced.

        The same write claims, for ``claim``'s holder, the announcement of the drift
        ``claiming`` (a fingerprint), or with None the resolution of the drift announced, unless
        a claim is there already (``if_not_exists``: DynamoDB applies an update atomically, so of
        concurrent evaluations exactly one creates it; the row returned shows which).

        Whether a drift was announced is written only after the message is sent
        (``mark_alerted``/``mark_resolved``), so a failed publish is retried, never remembered
        as sent."""
        names = {
            "#b": KEY,
            "#s": "status",
            "#r": "region",
            "#n": "name",
            "#claim": claim_attribute(claiming),
        }
        values: dict[str, Any] = {
            ":s": {"S": finding.status.value},
            ":t": {"N": str(evaluated_at)},
            ":now": {"S": now},
            ":trigger": {"S": json.dumps(finding.trigger.to_dict())},
            ":a": {"S": finding.bucket.account},
            ":r": {"S": finding.bucket.region},
            ":n": {"S": finding.bucket.name},
            ":v": {"L": [{"S": violation.code.value} for violation in finding.violations]},
            ":claim": {"S": claim.encode()},
        }
        sets = [
            "#s = :s",
            "evaluatedAt = :t",
            "lastEvaluated = :now",
            "lastTrigger = :trigger",
            "account = :a",
            "#r = :r",
            "#n = :n",
            "violations = :v",
            "#claim = if_not_exists(#claim, :claim)",
        ]
        removes = []
        current = fingerprint(finding)
        if current is None:
            removes += ["fingerprint", "firstDetected"]
        else:
            # Open from now on, until a sweep finds nothing open any more.
            sets += [
                "fingerprint = :fp",
                "firstDetected = if_not_exists(firstDetected, :now)",
                f"{OPEN_KEY} = :open",
            ]
            values[":fp"] = {"S": current}
            values[":open"] = {"S": open_key(finding.bucket.account, finding.bucket.region)}
        if finding.status is Status.VANISHED:
            sets.append("expiresAt = :exp")
            values[":exp"] = {"N": str(_vanished_expiry(evaluated_at))}
        else:
            removes.append("expiresAt")
        if self._index_keys and (finding.observed is not None or finding.status is Status.VANISHED):
            key = key_in_use(finding)
            if key is None:
                removes.append(KEY_ARN)
            else:
                sets += [f"{KEY_ARN} = :key", "#kind = :kind"]
                names["#kind"] = "kind"
                values.update({":key": {"S": key}, ":kind": {"S": finding.bucket.kind.value}})
        expression = "SET " + ", ".join(sets) + " REMOVE " + ", ".join(removes)
        try:
            response = self._db.update_item(
                TableName=self._table,
                Key=_key(finding.bucket),
                UpdateExpression=expression,
                ConditionExpression=NOT_NEWER,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_OLD",
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return Recorded(previous=None, superseded=True)
            raise
        attributes = response.get("Attributes")
        # A row the key index alone wrote (``index_keys``) holds no evaluation yet.
        evaluated = attributes is not None and "status" in attributes
        return Recorded(previous=state_of(attributes) if evaluated else None)

    def take_over(
        self, bucket: BucketRef, claiming: str | None, expired: Claim, claim: Claim
    ) -> bool:
        """Replaces an expired claim with ``claim``; False when another evaluation did first."""
        try:
            self._db.update_item(
                TableName=self._table,
                Key=_key(bucket),
                UpdateExpression="SET #claim = :mine",
                ConditionExpression="#claim = :expired",
                ExpressionAttributeNames={"#claim": claim_attribute(claiming)},
                ExpressionAttributeValues={
                    ":mine": {"S": claim.encode()},
                    ":expired": {"S": expired.encode()},
                },
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def release(self, bucket: BucketRef, claiming: str | None, claim: Claim) -> None:
        """Gives up ``claim`` after failing to announce, so the retry can claim it at once."""
        try:
            self._db.update_item(
                TableName=self._table,
                Key=_key(bucket),
                UpdateExpression="REMOVE #claim",
                ConditionExpression="#claim = :mine",
                ExpressionAttributeNames={"#claim": claim_attribute(claiming)},
                ExpressionAttributeValues={":mine": {"S": claim.encode()}},
            )
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise

    def mark_alerted(
        self, bucket: BucketRef, fingerprint: str, now: str, forget: tuple[str, ...] = ()
    ) -> None:
        """The drift ``fingerprint`` was announced: a later fix may claim its resolution anew.
        ``forget``: fingerprints of stale claims to remove from the row."""
        names = {f"#f{index}": claim_attribute(old) for index, old in enumerate(forget)}
        self._db.update_item(
            TableName=self._table,
            Key=_key(bucket),
            UpdateExpression="SET alertedFingerprint = :fp, lastAlerted = :now REMOVE "
            + ", ".join(["#resolution", *names]),
            ExpressionAttributeNames={"#resolution": RESOLUTION_CLAIM, **names},
            ExpressionAttributeValues={":fp": {"S": fingerprint}, ":now": {"S": now}},
        )

    def mark_resolved(
        self,
        bucket: BucketRef,
        now: str,
        announced: str | None = None,
        forget: tuple[str, ...] = (),
    ) -> None:
        """The drift ``announced`` (when one was) is resolved, unless a newer drift was announced
        meanwhile (its announcement stands). ``forget``: fingerprints of claims to remove."""
        names = {f"#f{index}": claim_attribute(old) for index, old in enumerate(forget)}
        values: dict[str, Any] = {":now": {"S": now}}
        condition = "attribute_not_exists(alertedFingerprint)"
        if announced is not None:
            condition += " OR alertedFingerprint = :announced"
            values[":announced"] = {"S": announced}
        request: dict[str, Any] = {
            "TableName": self._table,
            "Key": _key(bucket),
            "UpdateExpression": "SET lastResolved = :now REMOVE "
            + ", ".join(["alertedFingerprint", *names]),
            "ConditionExpression": condition,
            "ExpressionAttributeValues": values,
        }
        if names:
            request["ExpressionAttributeNames"] = names
        try:
            self._db.update_item(**request)
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise

    def take(self, hour: str, limit: int) -> bool:
        """One of ``limit`` remediations of ``hour`` (``YYYY-MM-DDTHH``), atomically; False when
        they are all taken. The counter row expires two days later."""
        try:
            self._db.update_item(
                TableName=self._table,
                Key={KEY: {"S": f"remediations#{hour}"}},
                UpdateExpression="ADD used :one SET expiresAt = if_not_exists(expiresAt, :exp)",
                ConditionExpression="attribute_not_exists(used) OR used < :limit",
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":limit": {"N": str(limit)},
                    ":exp": {"N": str(_hour_epoch(hour) + 2 * 86_400)},
                },
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    # -- the sweep: the open rows read by one query, rows written only where they moved -------

    def open_states(self, account: str, regions: Iterable[str]) -> dict[str, BucketState]:
        """The open rows of ``account`` in ``regions``, by ``state_key``: one query of the sparse
        index per region (a page of 1 MB at a time); a bucket missing here has nothing open."""
        found: dict[str, BucketState] = {}
        for region in dict.fromkeys(regions):
            request: dict[str, Any] = {
                "TableName": self._table,
                "IndexName": OPEN_INDEX,
                "KeyConditionExpression": "#o = :o",
                "ExpressionAttributeNames": {"#o": OPEN_KEY},
                "ExpressionAttributeValues": {":o": {"S": open_key(account, region)}},
            }
            while True:
                response = self._db.query(**request)
                for item in response.get("Items", []):
                    found[item[KEY]["S"]] = state_of(item)
                if not response.get("LastEvaluatedKey"):
                    break
                request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return found

    def buckets_using(self, key_arn: str) -> list[BucketRef]:
        """The buckets whose last read default encryption uses ``key_arn`` (the key index)."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": KEYS_INDEX,
            "KeyConditionExpression": "#k = :k",
            "ExpressionAttributeNames": {"#k": KEY_ARN},
            "ExpressionAttributeValues": {":k": {"S": key_arn}},
        }
        found: list[BucketRef] = []
        while True:
            response = self._db.query(**request)
            for item in response.get("Items", []):
                found.append(
                    BucketRef(
                        name=item["name"]["S"],
                        account=item["account"]["S"],
                        region=item["region"]["S"],
                        kind=BucketKind(item.get("kind", {}).get("S", BucketKind.GENERAL_PURPOSE)),
                    )
                )
            if not response.get("LastEvaluatedKey"):
                return found
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def index_keys(self, findings: Sequence[Finding], concurrency: int = 16) -> int:
        """A sweep's part of the key index: the key each read bucket uses, written only where
        the row does not say so already (a refused condition writes nothing). Returns the
        number of rows that changed."""
        rows = [
            (finding, key)
            for finding in findings
            if finding.observed is not None and (key := key_in_use(finding)) is not None
        ]

        def write(row: tuple[Finding, str]) -> bool:
            finding, key = row
            bucket = finding.bucket
            try:
                self._db.update_item(
                    TableName=self._table,
                    Key=_key(bucket),
                    UpdateExpression="SET #k = :k, #kind = :kind, account = :a, #r = :r, #n = :n",
                    ConditionExpression="attribute_not_exists(#k) OR #k <> :k",
                    ExpressionAttributeNames={
                        "#k": KEY_ARN,
                        "#kind": "kind",
                        "#r": "region",
                        "#n": "name",
                    },
                    ExpressionAttributeValues={
                        ":k": {"S": key},
                        ":kind": {"S": bucket.kind.value},
                        ":a": {"S": bucket.account},
                        ":r": {"S": bucket.region},
                        ":n": {"S": bucket.name},
                    },
                )
            except ClientError as error:
                if error_code(error) == "ConditionalCheckFailedException":
                    return False
                raise
            return True

        return sum(_each(write, rows, concurrency))

    def write_sweep(
        self,
        rows: Sequence[tuple[Finding, BucketState, BucketState | None]],
        now: str,
        concurrency: int = 16,
    ) -> set[str]:
        """Writes each row whose verdict moved, unless the bucket's row changed since the sweep
        looked (a concurrent, newer evaluation wins), a few at a time. Returns the keys that were
        superseded. A row the sweep did not read (nothing was open) keeps what it does not know
        (when its last drift was resolved)."""

        def write(row: tuple[Finding, BucketState, BucketState | None]) -> str | None:
            finding, state, previous = row
            try:
                self._db.update_item(**self._sweep_update(finding, state, previous, now))
            except ClientError as error:
                if error_code(error) == "ConditionalCheckFailedException":
                    return state_key(finding.bucket)
                raise
            return None

        return {key for key in _each(write, rows, concurrency) if key is not None}

    def _sweep_update(
        self, finding: Finding, state: BucketState, previous: BucketState | None, now: str
    ) -> dict[str, Any]:
        bucket = finding.bucket
        names = {"#s": "status", "#r": "region", "#n": "name"}
        values: dict[str, Any] = {
            ":s": {"S": state.status.value},
            ":v": {"L": [{"S": code} for code in state.violations]},
            ":t": {"N": str(state.evaluated_at)},
            ":now": {"S": now},
            ":trigger": {"S": json.dumps(finding.trigger.to_dict())},
            ":a": {"S": bucket.account},
            ":r": {"S": bucket.region},
            ":n": {"S": bucket.name},
        }
        sets = [
            "#s = :s",
            "violations = :v",
            "evaluatedAt = :t",
            "lastEvaluated = :now",
            "lastTrigger = :trigger",
            "account = :a",
            "#r = :r",
            "#n = :n",
        ]
        removes: list[str] = []
        optional = {
            "fingerprint": state.fingerprint,
            "firstDetected": state.first_detected,
            "alertedFingerprint": state.alerted_fingerprint,
            "lastAlerted": state.last_alerted,
            "sweptStatus": None if state.swept_status is None else state.swept_status.value,
            OPEN_KEY: (
                open_key(bucket.account, bucket.region) if state.alerted_fingerprint else None
            ),
        }
        if previous is not None or state.last_resolved:
            optional["lastResolved"] = state.last_resolved
        for index, (name, value) in enumerate(optional.items()):
            names[f"#x{index}"] = name
            if value:
                sets.append(f"#x{index} = :x{index}")
                values[f":x{index}"] = {"S": value}
            else:
                removes.append(f"#x{index}")
        update = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        if previous is None:
            # Nothing was open when the sweep looked: nothing may have opened since, and no
            # newer evaluation may have been recorded.
            condition = f"attribute_not_exists(#o) AND ({NOT_NEWER})"
            names.update({"#b": KEY, "#o": OPEN_KEY})
        else:
            condition = "evaluatedAt = :seen"
            values[":seen"] = {"N": str(previous.evaluated_at)}
        return {
            "TableName": self._table,
            "Key": _key(bucket),
            "UpdateExpression": update,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }


def _each(write: Callable[[R], T], rows: Sequence[R], concurrency: int) -> list[T]:
    """``write`` for every row, a few at a time (the sweep's writes of one page)."""
    if not rows:
        return []
    with ThreadPoolExecutor(max_workers=min(concurrency, len(rows))) as pool:
        return list(pool.map(write, rows))


def _vanished_expiry(evaluated_at: int) -> int:
    """When a deleted bucket's row expires (DynamoDB TTL, epoch seconds)."""
    return evaluated_at // 1000 + VANISHED_RETENTION_SECONDS


def _key(bucket: BucketRef) -> dict[str, Any]:
    return {KEY: {"S": state_key(bucket)}}


def claim_attribute(claiming: str | None) -> str:
    """The attribute holding the claim on announcing drift ``claiming``, or (None) on resolving."""
    return RESOLUTION_CLAIM if claiming is None else CLAIM_PREFIX + claiming


def state_of(item: Mapping[str, Any]) -> BucketState:
    def text(name: str) -> str | None:
        value = item.get(name, {}).get("S")
        return str(value) if value else None

    claims = []
    for name in item:
        claim = Claim.decode(text(name) or "") if name.startswith(CLAIM_PREFIX) else None
        if claim is not None and name != RESOLUTION_CLAIM:
            claims.append((name.removeprefix(CLAIM_PREFIX), claim))
    resolving = text(RESOLUTION_CLAIM)
    swept = text("sweptStatus")
    return BucketState(
        status=Status(item["status"]["S"]),
        fingerprint=text("fingerprint"),
        evaluated_at=int(item["evaluatedAt"]["N"]),
        violations=tuple(value["S"] for value in item.get("violations", {}).get("L", [])),
        first_detected=text("firstDetected"),
        alerted_fingerprint=text("alertedFingerprint"),
        last_alerted=text("lastAlerted"),
        last_resolved=text("lastResolved"),
        swept_status=Status(swept) if swept else None,
        claims=tuple(sorted(claims)),
        resolving=Claim.decode(resolving) if resolving else None,
    )
