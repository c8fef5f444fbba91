"""The state table adapter against moto server's DynamoDB: conditions, batches, transactions."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from functions.drift_monitor.lifecycle import next_state
from functions.drift_monitor.models import BucketRef, Finding, Status
from functions.drift_monitor.state_store import StateStore, state_key
from functions.drift_monitor.sweep_states import record_sweep
from local.emulator import Emulator, create_state_table
from tests.unit.test_lifecycle import COMPLIANT, DRIFT, OTHER_DRIFT, VANISHED

NOW = "2026-11-27T12:00:00Z"


@pytest.fixture
def store(emulator: Emulator) -> Iterator[StateStore]:
    name = f"states-{uuid.uuid4().hex[:8]}"
    create_state_table(emulator, name)
    yield StateStore(emulator.client("dynamodb"), name)


def test_each_evaluation_returns_the_row_it_replaced(store: StateStore) -> None:
    first = store.record(DRIFT, 100, NOW)
    second = store.record(OTHER_DRIFT, 200, NOW)

    assert (first.previous, first.superseded) == (None, False)
    assert second.previous is not None
    assert (second.previous.status, second.previous.evaluated_at) == (Status.DRIFT, 100)
    assert second.previous.first_detected == NOW
    assert second.previous.violations == ("ALGORITHM_NOT_ALLOWED",)


def test_an_older_evaluation_never_overwrites_a_newer_one(store: StateStore) -> None:
    store.record(COMPLIANT, 200, NOW)

    late = store.record(DRIFT, 100, NOW)

    assert late.superseded
    now = store.states([DRIFT.bucket])[state_key(DRIFT.bucket)]
    assert (now.status, now.evaluated_at) == (Status.COMPLIANT, 200)


def test_an_announced_drift_stays_open_until_marked_resolved(store: StateStore) -> None:
    store.record(DRIFT, 100, NOW)
    store.mark_alerted(DRIFT.bucket, "f1", NOW)
    fixed = store.record(COMPLIANT, 200, NOW)

    assert fixed.previous is not None and fixed.previous.alerted_fingerprint == "f1"
    assert store.record(COMPLIANT, 300, NOW).previous.alerted_fingerprint == "f1"  # type: ignore[union-attr]
    store.mark_resolved(DRIFT.bucket, NOW)
    row = store.states([DRIFT.bucket])[state_key(DRIFT.bucket)]
    assert (row.alerted_fingerprint, row.last_resolved, row.first_detected) == (None, NOW, None)


def test_a_deleted_bucket_s_row_expires(store: StateStore) -> None:
    store.record(VANISHED, 1_800_000_000_000, NOW)

    item = store._db.get_item(
        TableName=store._table, Key={"bucket": {"S": state_key(VANISHED.bucket)}}
    )["Item"]
    assert int(item["expiresAt"]["N"]) == 1_800_000_000 + 30 * 86_400


def _bucket(index: int) -> Finding:
    """Odd buckets drift, even ones comply."""
    verdict = DRIFT if index % 2 else COMPLIANT
    return replace(verdict, bucket=BucketRef(f"bucket-{index:04d}", "123456789012", "eu-west-1"))


def test_a_sweep_writes_hundreds_of_rows_in_batches_and_counts_its_moves(
    store: StateStore,
) -> None:
    findings = [_bucket(index) for index in range(250)]
    now = datetime(2026, 11, 27, 12, tzinfo=UTC)

    first = record_sweep(store, findings, 1_000, now)
    second = record_sweep(store, [*findings[:10], *findings[11:]], 2_000, now)

    assert first.counts == {"newDrift": 125, "age:<1d": 125}
    assert len(first.new) == 125 and len(first.first_detected) == 125
    assert second.counts == {"age:<1d": 125}  # nothing new, nothing resolved
    rows = store.states([finding.bucket for finding in findings])
    assert len(rows) == 250
    # nothing moved in the second sweep: no row was rewritten
    assert {row.evaluated_at for row in rows.values()} == {1_000}
    assert all(row.swept_status is row.status for row in rows.values())


def test_a_sweep_leaves_rows_an_event_wrote_after_its_page_began(store: StateStore) -> None:
    now = datetime(2026, 11, 27, 12, tzinfo=UTC)
    store.record(COMPLIANT, 5_000, NOW)  # an event, after the sweep's page began at 1,000

    changes = record_sweep(store, [DRIFT], 1_000, now)

    assert changes.counts == {}
    row = store.states([DRIFT.bucket])[state_key(DRIFT.bucket)]
    assert (row.status, row.evaluated_at) == (Status.COMPLIANT, 5_000)


def test_a_row_changed_between_read_and_write_is_left_to_the_newer_writer(
    store: StateStore,
) -> None:
    seen = store.record(DRIFT, 100, NOW)
    assert seen.previous is None
    before = store.states([DRIFT.bucket])[state_key(DRIFT.bucket)]
    store.record(COMPLIANT, 150, NOW)  # lands between the sweep's read and its write

    superseded = store.replace(
        [(OTHER_DRIFT, next_state(before, OTHER_DRIFT, 120, NOW, swept=True), before)], NOW
    )

    assert superseded == {state_key(DRIFT.bucket)}
    row = store.states([DRIFT.bucket])[state_key(DRIFT.bucket)]
    assert (row.status, row.evaluated_at) == (Status.COMPLIANT, 150)


def test_a_table_that_keeps_refusing_fails_the_write(store: StateStore) -> None:
    stubber = Stubber(store._db)
    stubber.add_client_error(
        "put_item",
        service_error_code="ProvisionedThroughputExceededException",
        http_status_code=400,
    )
    with stubber, pytest.raises(ClientError, match="ProvisionedThroughputExceeded"):
        store.replace([(DRIFT, next_state(None, DRIFT, 1, NOW, swept=True), None)], NOW)
    stubber.assert_no_pending_responses()


def test_a_sweep_rewrites_only_rows_whose_verdict_moved(
    store: StateStore, emulator: Emulator
) -> None:
    findings = [_bucket(index) for index in range(20)]
    now = datetime(2026, 11, 27, 12, tzinfo=UTC)
    record_sweep(store, findings, 1_000, now)
    fixed = [*findings[:1], replace(findings[1], status=Status.COMPLIANT, violations=()),
             *findings[2:]]  # fmt: skip

    changes = record_sweep(store, fixed, 2_000, now)

    assert changes.counts == {"resolved": 1, "age:<1d": 9}
    rows = store.states([finding.bucket for finding in findings])
    rewritten = {key for key, row in rows.items() if row.evaluated_at == 2_000}
    assert rewritten == {state_key(findings[1].bucket)}


def test_a_table_that_is_not_there_fails_the_evaluation_rather_than_skipping_it(
    emulator: Emulator,
) -> None:
    missing = StateStore(emulator.client("dynamodb"), "no-such-table")

    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        missing.record(DRIFT, 100, NOW)


def test_keys_dynamodb_leaves_unprocessed_are_read_again(store: StateStore) -> None:
    store.record(DRIFT, 100, NOW)
    key = state_key(DRIFT.bucket)
    item = store._db.get_item(TableName=store._table, Key={"bucket": {"S": key}})["Item"]
    stubber = Stubber(store._db)
    stubber.add_response(
        "batch_get_item",
        {
            "Responses": {store._table: []},
            "UnprocessedKeys": {store._table: {"Keys": [{"bucket": {"S": key}}]}},
        },
    )
    stubber.add_response("batch_get_item", {"Responses": {store._table: [item]}})

    with stubber:
        rows = store.states([DRIFT.bucket])

    assert rows[key].status is Status.DRIFT
    stubber.assert_no_pending_responses()
