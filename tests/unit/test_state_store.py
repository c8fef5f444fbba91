"""The state table adapter against moto server's DynamoDB: conditions, batches, transactions."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from functions.drift_monitor.aws.state_store import Recorded, StateStore, state_key, state_of
from functions.drift_monitor.domain.lifecycle import BucketState, Claim, fingerprint, next_state
from functions.drift_monitor.domain.models import (
    BucketRef,
    EncryptionRule,
    Finding,
    ObservedEncryption,
    Status,
    Trigger,
)
from functions.drift_monitor.sweep.states import plan_sweep, record_sweep
from local.emulator import Emulator, create_state_table
from tests.unit.test_lifecycle import COMPLIANT, DRIFT, OTHER_DRIFT, VANISHED

NOW = "2026-11-27T12:00:00Z"


EXPIRED = Claim("earlier", 0)
ACCOUNT = "123456789012"


def row_of(store: StateStore, finding: Finding) -> BucketState:
    item = store._db.get_item(
        TableName=store._table,
        Key={"bucket": {"S": state_key(finding.bucket)}},
        ConsistentRead=True,
    )["Item"]
    return state_of(item)


def open_rows(store: StateStore) -> dict[str, BucketState]:
    return store.open_states(ACCOUNT, ["eu-west-1"])


def record(store: StateStore, finding: Finding, at: int, claim: Claim = EXPIRED) -> Recorded:
    """Records ``finding`` read at ``at``, claiming what it would announce."""
    return store.record(finding, at, NOW, claim, fingerprint(finding))


@pytest.fixture
def store(emulator: Emulator) -> Iterator[StateStore]:
    name = f"states-{uuid.uuid4().hex[:8]}"
    create_state_table(emulator, name)
    yield StateStore(emulator.client("dynamodb"), name)


def test_each_evaluation_returns_the_row_it_replaced(store: StateStore) -> None:
    first = record(store, DRIFT, 100)
    second = record(store, OTHER_DRIFT, 200)

    assert (first.previous, first.superseded) == (None, False)
    assert second.previous is not None
    assert (second.previous.status, second.previous.evaluated_at) == (Status.DRIFT, 100)
    assert second.previous.first_detected == NOW
    assert second.previous.violations == ("ALGORITHM_NOT_ALLOWED",)


def test_an_older_evaluation_never_overwrites_a_newer_one(store: StateStore) -> None:
    record(store, COMPLIANT, 200)

    late = record(store, DRIFT, 100)

    assert late.superseded
    now = row_of(store, DRIFT)
    assert (now.status, now.evaluated_at) == (Status.COMPLIANT, 200)


def test_an_announced_drift_stays_open_until_marked_resolved(store: StateStore) -> None:
    record(store, DRIFT, 100)
    store.mark_alerted(DRIFT.bucket, "f1", NOW)
    fixed = record(store, COMPLIANT, 200)

    assert fixed.previous is not None and fixed.previous.alerted_fingerprint == "f1"
    assert list(open_rows(store)) == [state_key(DRIFT.bucket)]  # still open: not resolved yet
    assert record(store, COMPLIANT, 300).previous.alerted_fingerprint == "f1"  # type: ignore[union-attr]
    store.mark_resolved(DRIFT.bucket, NOW, announced="f1")
    row = row_of(store, DRIFT)
    assert (row.alerted_fingerprint, row.last_resolved, row.first_detected) == (None, NOW, None)
    # still in the sparse index: the next sweep counts it resolved, then closes it
    (swept,) = open_rows(store).values()
    assert swept.alerted_fingerprint is None
    record_sweep(store, ACCOUNT, [COMPLIANT], 1_000, datetime(2026, 11, 27, 12, tzinfo=UTC))
    assert open_rows(store) == {}


def test_of_concurrent_evaluations_only_the_first_finds_the_announcement_unclaimed(
    store: StateStore,
) -> None:
    # Given two containers evaluating the same drift, the second recording after the first
    mine, theirs = Claim("first", 10_000), Claim("second", 10_000)

    first = record(store, DRIFT, 100, mine)
    second = record(store, DRIFT, 100, theirs)

    # Then the first found no claim (it created it), the second found the first's
    assert first.previous is None
    assert second.previous is not None
    assert second.previous.claim_on(fingerprint(DRIFT)) == mine
    assert second.previous.resolving is None


def test_an_expired_claim_is_taken_over_once_and_a_released_one_is_gone(
    store: StateStore,
) -> None:
    drift = fingerprint(DRIFT)
    dead, rescuer, late = Claim("dead", 50), Claim("rescuer", 9_000), Claim("late", 9_000)
    record(store, DRIFT, 100, dead)

    assert store.take_over(DRIFT.bucket, drift, dead, rescuer)
    assert not store.take_over(DRIFT.bucket, drift, dead, late)  # the rescuer got there first
    store.release(DRIFT.bucket, drift, late)  # not late's to give: nothing happens
    assert record(store, DRIFT, 200).previous.claim_on(drift) == rescuer  # type: ignore[union-attr]
    store.release(DRIFT.bucket, drift, rescuer)
    assert record(store, DRIFT, 300).previous.claim_on(drift) is None  # type: ignore[union-attr]


def test_announcing_forgets_stale_claims_and_a_resolution_never_erases_a_newer_drift(
    store: StateStore,
) -> None:
    old, new = fingerprint(DRIFT), fingerprint(OTHER_DRIFT)
    assert old is not None and new is not None
    record(store, DRIFT, 100)
    record(store, COMPLIANT, 150)  # claims the resolution (nothing was announced)
    record(store, OTHER_DRIFT, 200)

    store.mark_alerted(DRIFT.bucket, new, NOW, forget=(old,))
    row = record(store, OTHER_DRIFT, 300).previous
    assert row is not None and [fp for fp, _ in row.claims] == [new] and row.resolving is None

    store.mark_resolved(DRIFT.bucket, NOW, announced=old)  # a resolution of the older drift
    row = record(store, OTHER_DRIFT, 400).previous
    assert row is not None and row.alerted_fingerprint == new and row.last_resolved is None


def test_a_deleted_bucket_s_row_expires(store: StateStore) -> None:
    record(store, VANISHED, 1_800_000_000_000)

    item = store._db.get_item(
        TableName=store._table, Key={"bucket": {"S": state_key(VANISHED.bucket)}}
    )["Item"]
    assert int(item["expiresAt"]["N"]) == 1_800_000_000 + 30 * 86_400


def _bucket(index: int) -> Finding:
    """Odd buckets drift, even ones comply."""
    verdict = DRIFT if index % 2 else COMPLIANT
    return replace(verdict, bucket=BucketRef(f"bucket-{index:04d}", "123456789012", "eu-west-1"))


def test_a_sweep_writes_only_what_drifts_and_counts_its_moves(store: StateStore) -> None:
    findings = [_bucket(index) for index in range(250)]
    now = datetime(2026, 11, 27, 12, tzinfo=UTC)

    first = record_sweep(store, ACCOUNT, findings, 1_000, now)
    second = record_sweep(store, ACCOUNT, [*findings[:10], *findings[11:]], 2_000, now)

    # every drift is news to the sweep: no event had recorded any
    assert first.counts == {"newDrift": 125, "age:<1d": 125, f"missed:{ACCOUNT}/eu-west-1": 125}
    assert first.missed == 125
    assert len(first.new) == 125 and len(first.first_detected) == 125
    assert second.counts == {"age:<1d": 125}  # nothing new, nothing resolved
    opened = open_rows(store)
    assert len(opened) == 125
    # nothing moved in the second sweep: no row was rewritten
    assert {row.evaluated_at for row in opened.values()} == {1_000}
    assert all(row.swept_status is row.status is Status.DRIFT for row in opened.values())
    # a compliant bucket with nothing open costs no write: it has no row at all
    assert store._db.scan(TableName=store._table)["Count"] == 125


def test_a_sweep_reads_nothing_of_buckets_with_nothing_open(store: StateStore) -> None:
    # Given 100 compliant buckets in two regions, and one open drift
    record(store, DRIFT, 100)
    compliant = [
        replace(COMPLIANT, bucket=BucketRef(f"ok-{n:03d}", ACCOUNT, region))
        for n in range(50)
        for region in ("eu-west-1", "us-east-1")
    ]
    stubber = Stubber(store._db)
    for _ in ("eu-west-1", "us-east-1"):  # one query of the sparse index per region
        stubber.add_response("query", {"Items": [], "Count": 0, "ScannedCount": 0})

    # When the sweep finds them compliant and the drift gone from its page
    with stubber:
        changes = record_sweep(store, ACCOUNT, compliant, 1_000, datetime.now(UTC))

    # Then it asked two queries and wrote nothing
    stubber.assert_no_pending_responses()
    assert (changes.rows, changes.counts) == ([], {})


def test_a_sweep_leaves_rows_an_event_wrote_after_its_page_began(store: StateStore) -> None:
    now = datetime(2026, 11, 27, 12, tzinfo=UTC)
    record(store, COMPLIANT, 5_000)  # an event, after the sweep's page began at 1,000

    changes = plan_sweep(store, ACCOUNT, [DRIFT], 1_000, now)
    superseded = store.write_sweep(changes.rows, NOW)

    assert superseded == {state_key(DRIFT.bucket)}
    row = row_of(store, DRIFT)
    assert (row.status, row.evaluated_at) == (Status.COMPLIANT, 5_000)


def test_a_row_changed_between_read_and_write_is_left_to_the_newer_writer(
    store: StateStore,
) -> None:
    seen = record(store, DRIFT, 100)
    assert seen.previous is None
    before = open_rows(store)[state_key(DRIFT.bucket)]
    record(store, COMPLIANT, 150)  # lands between the sweep's read and its write

    superseded = store.write_sweep(
        [(OTHER_DRIFT, next_state(before, OTHER_DRIFT, 120, NOW, swept=True), before)], NOW
    )

    assert superseded == {state_key(DRIFT.bucket)}
    row = row_of(store, DRIFT)
    assert (row.status, row.evaluated_at) == (Status.COMPLIANT, 150)


def test_a_drift_the_sweep_opens_keeps_the_history_it_did_not_read(store: StateStore) -> None:
    # Given a bucket whose earlier drift was resolved (its row holds when), closed by a sweep
    record(store, DRIFT, 100)
    store.mark_alerted(DRIFT.bucket, "f1", NOW)
    record(store, COMPLIANT, 200)
    store.mark_resolved(DRIFT.bucket, "2026-11-20T00:00:00Z", announced="f1")
    record_sweep(store, ACCOUNT, [COMPLIANT], 500, datetime(2026, 11, 26, 12, tzinfo=UTC))
    assert open_rows(store) == {}

    # When the next sweep finds it drifting again, without reading its row
    record_sweep(store, ACCOUNT, [DRIFT], 1_000, datetime(2026, 11, 27, 12, tzinfo=UTC))

    # Then the row is open again and still says when the last drift was resolved
    row = row_of(store, DRIFT)
    assert (row.status, row.alerted_fingerprint) == (Status.DRIFT, fingerprint(DRIFT))
    assert row.last_resolved == "2026-11-20T00:00:00Z"
    assert list(open_rows(store)) == [state_key(DRIFT.bucket)]


def test_a_table_that_keeps_refusing_fails_the_write(store: StateStore) -> None:
    stubber = Stubber(store._db)
    stubber.add_client_error(
        "update_item",
        service_error_code="ProvisionedThroughputExceededException",
        http_status_code=400,
    )
    with stubber, pytest.raises(ClientError, match="ProvisionedThroughputExceeded"):
        store.write_sweep([(DRIFT, next_state(None, DRIFT, 1, NOW, swept=True), None)], NOW)
    stubber.assert_no_pending_responses()


def test_a_sweep_rewrites_only_rows_whose_verdict_moved(
    store: StateStore, emulator: Emulator
) -> None:
    findings = [_bucket(index) for index in range(20)]
    now = datetime(2026, 11, 27, 12, tzinfo=UTC)
    record_sweep(store, ACCOUNT, findings, 1_000, now)
    fixed = [*findings[:1], replace(findings[1], status=Status.COMPLIANT, violations=()),
             *findings[2:]]  # fmt: skip

    changes = record_sweep(store, ACCOUNT, fixed, 2_000, now)

    # the fix no event reported is counted as missed by events
    assert changes.counts == {"resolved": 1, "age:<1d": 9, f"missed:{ACCOUNT}/eu-west-1": 1}
    rows = {f.bucket.name: row_of(store, f) for f in findings if f.alerts}
    rewritten = {name for name, row in rows.items() if row.evaluated_at == 2_000}
    assert rewritten == {findings[1].bucket.name}
    assert state_key(findings[1].bucket) not in open_rows(store)  # closed


def test_a_table_that_is_not_there_fails_the_evaluation_rather_than_skipping_it(
    emulator: Emulator,
) -> None:
    missing = StateStore(emulator.client("dynamodb"), "no-such-table")

    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        record(missing, DRIFT, 100)


def test_the_open_rows_are_read_a_page_at_a_time(store: StateStore) -> None:
    record(store, DRIFT, 100)
    key = state_key(DRIFT.bucket)
    item = store._db.get_item(TableName=store._table, Key={"bucket": {"S": key}})["Item"]
    stubber = Stubber(store._db)
    stubber.add_response("query", {"Items": [], "LastEvaluatedKey": {"bucket": {"S": "a"}}})
    stubber.add_response("query", {"Items": [item]})

    with stubber:
        rows = store.open_states(ACCOUNT, ["eu-west-1"])

    assert rows[key].status is Status.DRIFT
    stubber.assert_no_pending_responses()


KEY_A = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
KEY_B = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/0b8f4ab2-7d3e-4c4a-9a59-5c1f7d0e8a11"


def _on_key(name: str, key: str | None, status: Status = Status.COMPLIANT) -> Finding:
    bucket = BucketRef(name, ACCOUNT, "eu-west-1")
    rule = EncryptionRule("aws:kms", key, True) if key else EncryptionRule("AES256")
    return Finding(bucket, status, ObservedEncryption(bucket, (rule,)), (), Trigger("sweep"))


def test_the_key_index_finds_a_key_s_buckets_and_never_blocks_a_later_evaluation(
    emulator: Emulator,
) -> None:
    """§15: the sweep indexes buckets it writes no row for; the event path keeps the index in
    the same write as the evaluation; a row the index alone wrote never looks newer."""
    name = f"states-{uuid.uuid4().hex[:8]}"
    create_state_table(emulator, name)
    store = StateStore(emulator.client("dynamodb"), name, index_keys=True)
    ledger, logs = _on_key("ledger", KEY_A), _on_key("logs", KEY_A)

    # Given a sweep that read two compliant buckets on key A (no other row written)
    assert store.index_keys([ledger, logs, _on_key("plain", None)]) == 2
    assert store.index_keys([ledger, logs]) == 0  # already known: nothing written again
    assert sorted(b.name for b in store.buckets_using(KEY_A)) == ["ledger", "logs"]

    # When an event evaluates one of them, now on key B
    recorded = record(store, _on_key("ledger", KEY_B), 100)

    # Then it is recorded (not taken for an older read) and the index follows the key
    assert (recorded.previous, recorded.superseded) == (None, False)
    assert [b.name for b in store.buckets_using(KEY_A)] == ["logs"]
    assert [b.name for b in store.buckets_using(KEY_B)] == ["ledger"]
    # and a bucket no longer on KMS, or deleted, leaves the index
    record(store, _on_key("logs", None), 200)
    record(store, replace(VANISHED, bucket=ledger.bucket), 300)
    assert store.buckets_using(KEY_A) == store.buckets_using(KEY_B) == []
    # and the sweep may still write a drift over a row the index alone wrote
    store.index_keys([_on_key("fresh", KEY_A)])
    drift = _on_key("fresh", KEY_A, Status.DRIFT)
    changes = record_sweep(store, ACCOUNT, [drift], 400, datetime.now(UTC))
    assert changes.rows and row_of(store, drift).status is Status.DRIFT
