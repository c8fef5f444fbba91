"""The notifier against moto server's DynamoDB and SNS: record, decide, send, remember."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from functions.drift_monitor.aws.publisher import AlertPublisher
from functions.drift_monitor.aws.state_store import StateStore
from functions.drift_monitor.domain.lifecycle import Action, Claim, fingerprint
from functions.drift_monitor.domain.policy import Policy
from functions.drift_monitor.handlers.notifier import Notifier
from local.emulator import Emulator, create_state_table
from tests.unit.test_lifecycle import COMPLIANT, DRIFT, VANISHED

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


class RecordingOutput:
    """Stands in for Security Hub or a bus: the notifier's contract is one send per message."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.created: list[bool] = []

    def send(self, document: dict[str, Any], now: str, *, created: bool = False) -> None:
        self.sent.append(document)
        self.created.append(created)


def notifier(emulator: Emulator, topic: str | None = None) -> tuple[Notifier, RecordingOutput]:
    table = f"states-{uuid.uuid4().hex[:8]}"
    create_state_table(emulator, table)
    topic = topic or emulator.client("sns").create_topic(Name=table)["TopicArn"]
    output = RecordingOutput()
    store = StateStore(emulator.client("dynamodb"), table)
    return Notifier(
        store, AlertPublisher(emulator.client("sns"), topic), [output], Policy()
    ), output


def test_a_drift_is_sent_once_and_its_fix_once(emulator: Emulator) -> None:
    settle, output = notifier(emulator)

    actions = [
        settle.settle(DRIFT, 100, NOW),
        settle.settle(DRIFT, 200, NOW),
        settle.settle(COMPLIANT, 300, NOW),
        settle.settle(COMPLIANT, 400, NOW),
    ]

    assert [a.action for a in actions] == [
        Action.ALERT,
        Action.SUPPRESS,
        Action.RESOLVE,
        Action.NONE,
    ]
    assert [a.message_id is not None for a in actions] == [True, False, True, False]
    assert [d["status"] for d in output.sent] == ["DRIFT", "RESOLVED"]
    assert output.sent[1]["resolution"]["driftedSince"] == output.sent[0]["firstDetected"]
    # The first message about the bucket creates its finding; the notice updates it.
    assert output.created == [True, False]


def test_concurrent_deliveries_of_a_drift_and_of_its_fix_announce_each_once(
    emulator: Emulator,
) -> None:
    # Given 16 evaluations of one drift at once, as duplicate deliveries in parallel containers
    settle, output = notifier(emulator)
    with ThreadPoolExecutor(max_workers=16) as pool:
        drifts = list(pool.map(lambda i: settle.settle(DRIFT, 100 + i, NOW), range(16)))
        # When the bucket is fixed and the fix is delivered 16 times at once as well
        fixes = list(pool.map(lambda i: settle.settle(COMPLIANT, 1_000 + i, NOW), range(16)))

    # Then one alert, one notice; every other evaluation was counted or found older
    assert [a.action for a in drifts].count(Action.ALERT) == 1
    assert [a.action for a in fixes].count(Action.RESOLVE) == 1
    assert {a.action for a in drifts + fixes} <= {
        Action.ALERT, Action.RESOLVE, Action.SUPPRESS, Action.SUPERSEDED, Action.NONE
    }  # fmt: skip
    assert [d["status"] for d in output.sent] == ["DRIFT", "RESOLVED"]


def test_a_claim_whose_holder_died_is_taken_over_once_its_lease_ends(emulator: Emulator) -> None:
    # Given a container that claimed the drift and died before publishing it
    settle, output = notifier(emulator)
    dies_at = NOW + timedelta(seconds=60)
    dead = Claim("dead", int(dies_at.timestamp() * 1000))
    settle._store.record(DRIFT, 100, "2026-11-27T12:00:00Z", dead, fingerprint(DRIFT))

    # Then a duplicate while it could still be running announces nothing, one after it does
    during = settle.settle(DRIFT, 200, NOW)
    after = settle.settle(DRIFT, 300, dies_at + timedelta(seconds=1))

    assert (during.action, after.action) == (Action.SUPPRESS, Action.ALERT)
    assert [d["status"] for d in output.sent] == ["DRIFT"]


def test_an_older_evaluation_sends_nothing(emulator: Emulator) -> None:
    settle, output = notifier(emulator)
    settle.settle(COMPLIANT, 500, NOW)

    late = settle.settle(DRIFT, 100, NOW)

    assert (late.action, late.message_id, output.sent) == (Action.SUPERSEDED, None, [])


def test_a_deleted_bucket_closes_its_open_drift(emulator: Emulator) -> None:
    settle, output = notifier(emulator)
    settle.settle(DRIFT, 100, NOW)

    assert settle.settle(VANISHED, 200, NOW).action is Action.RESOLVE
    assert output.sent[-1]["resolution"]["outcome"] == "VANISHED"


def test_a_failed_publish_is_not_remembered_as_sent(emulator: Emulator) -> None:
    gone = "arn:aws:sns:eu-west-1:123456789012:no-such-topic"
    failing, output = notifier(emulator, topic=gone)

    with pytest.raises(ClientError, match="NotFound"):
        failing.settle(DRIFT, 100, NOW)

    assert output.sent == []
    # the same table, a working topic: the retry announces it
    working = Notifier(
        failing._store,
        AlertPublisher(
            emulator.client("sns"), emulator.client("sns").create_topic(Name="t")["TopicArn"]
        ),
        [output],
        Policy(),
    )
    assert working.settle(DRIFT, 200, NOW).action is Action.ALERT
