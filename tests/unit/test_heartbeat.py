"""The heartbeat's pure rules (which paths are silent, what the alert says) and its one item."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from functions.drift_monitor.aws.heartbeats import HeartbeatStore
from functions.drift_monitor.aws.state_store import StateStore
from functions.drift_monitor.domain.alerts import build_alert
from functions.drift_monitor.domain.assessment import assess
from functions.drift_monitor.domain.heartbeat import (
    EventPath,
    Silence,
    heartbeat_bucket_name,
    is_heartbeat,
    silent,
    silent_paths,
)
from functions.drift_monitor.domain.models import BucketRef, Severity, Status, Trigger
from functions.drift_monitor.domain.policy import Policy
from local.emulator import Emulator, create_state_table

MINUTE = 60_000
IRELAND = EventPath("111111111111", "eu-west-1")
VIRGINIA = EventPath("222222222222", "us-east-1")
TRIGGER = Trigger(source="heartbeat", event_time="2026-11-29T03:00:00Z")


@pytest.mark.parametrize(
    ("beats", "expected", "now", "silent_labels"),
    [
        ({IRELAND: 0}, {}, 30 * MINUTE, []),  # exactly two intervals: not yet
        ({IRELAND: 0}, {}, 30 * MINUTE + 1, ["111111111111/eu-west-1"]),
        ({IRELAND: 0, VIRGINIA: 25 * MINUTE}, {}, 31 * MINUTE, ["111111111111/eu-west-1"]),
        ({}, {VIRGINIA: 0}, 10 * MINUTE, []),  # expected only recently: give it time
        ({}, {VIRGINIA: 0}, 31 * MINUTE, ["222222222222/us-east-1"]),  # never beat
        ({VIRGINIA: 20 * MINUTE}, {VIRGINIA: 0}, 31 * MINUTE, []),  # a beat beats the expectation
    ],
)
def test_a_path_is_silent_after_two_intervals_without_a_beat(
    beats: dict[EventPath, int], expected: dict[EventPath, int], now: int, silent_labels: list[str]
) -> None:
    silences = silent_paths(beats, expected, now, interval_minutes=15)

    assert [silence.path.label for silence in silences] == silent_labels


def test_the_heartbeat_bucket_is_found_by_name_in_its_own_account_and_region() -> None:
    name = heartbeat_bucket_name("111111111111", "eu-west-1")

    assert name == "s3-encryption-monitor-hb-111111111111-eu-west-1"
    assert len(heartbeat_bucket_name("111111111111", "ap-southeast-5")) <= 63
    assert is_heartbeat(BucketRef(name, "111111111111", "eu-west-1"))
    assert not is_heartbeat(BucketRef(name, "222222222222", "eu-west-1"))  # someone else's
    assert not is_heartbeat(BucketRef("payments-ledger", "111111111111", "eu-west-1"))


def test_a_silent_path_is_a_high_alert_naming_the_path_and_its_last_beat() -> None:
    finding = silent(Silence(IRELAND, 1_795_000_000_000, 1_795_000_000_000), TRIGGER, 15)

    alert = build_alert(finding, Policy())

    assert finding.severity is Severity.HIGH
    assert alert.document["bucket"] == "s3-encryption-monitor-hb-111111111111-eu-west-1"
    assert alert.document["remediation"] is None  # nothing to run on the bucket itself
    message = alert.document["violations"][0]["message"]
    assert "account 111111111111, region eu-west-1" in message
    assert "its last beat was at 2026-11-18T" in message
    assert alert.email.startswith(
        "The S3 Encryption Drift Monitor stopped hearing from account 111111111111, "
        "region eu-west-1"
    )
    assert "Trigger:   the heartbeat's watchdog at 2026-11-29T03:00:00Z" in alert.email
    assert "Observed default encryption" not in alert.email  # never read: nothing to show


def test_a_path_never_heard_says_since_when_it_was_expected() -> None:
    finding = silent(Silence(VIRGINIA, None, 1_795_000_000_000), TRIGGER, 60)

    message = finding.violations[0].message
    assert "not beaten since the monitor began expecting it at 2026-11-18T" in message
    assert "2 intervals of 60 minutes" in message


class _NoReads:
    def read_encryption(self, bucket: BucketRef) -> None:
        raise AssertionError("a heartbeat bucket is never read")

    def read_tags(self, bucket: BucketRef) -> dict[str, str]:
        raise AssertionError("a heartbeat bucket is never read")


def test_the_sweep_and_the_scanner_never_judge_a_heartbeat_bucket() -> None:
    bucket = IRELAND.bucket

    finding = assess(bucket, TRIGGER, Policy(), _NoReads())  # type: ignore[arg-type]

    assert finding.status is Status.EXEMPT
    assert "heartbeat" in (finding.detail or "")


@pytest.fixture
def heartbeats(emulator: Emulator) -> Iterator[HeartbeatStore]:
    name = f"states-{uuid.uuid4().hex[:8]}"
    create_state_table(emulator, name)
    yield HeartbeatStore(emulator.client("dynamodb"), name)


def test_a_late_beat_never_replaces_a_newer_one(heartbeats: HeartbeatStore) -> None:
    assert heartbeats.record_beat(IRELAND, 2_000)
    assert not heartbeats.record_beat(IRELAND, 1_000)  # delivered late
    assert heartbeats.record_beat(VIRGINIA, 1_500)

    beats, expected = heartbeats.read()

    assert (beats, expected) == ({IRELAND: 2_000, VIRGINIA: 1_500}, {})


def test_an_expectation_keeps_its_first_time_and_a_beat_ends_it(
    heartbeats: HeartbeatStore,
) -> None:
    paths = [EventPath(f"{n:012d}", "eu-west-1") for n in range(30)]
    heartbeats.expect(paths, 1_000)
    heartbeats.expect(paths[:1], 9_000)
    heartbeats.record_beat(paths[1], 5_000)

    beats, expected = heartbeats.read()

    assert beats == {paths[1]: 5_000}
    assert len(expected) == 29 and set(expected.values()) == {1_000}


def test_the_heartbeats_rows_are_never_seen_by_the_sweep(
    heartbeats: HeartbeatStore, emulator: Emulator
) -> None:
    heartbeats.record_beat(IRELAND, 2_000)
    states = StateStore(emulator.client("dynamodb"), heartbeats._table)

    assert states.open_states("111111111111", ["eu-west-1"]) == {}
