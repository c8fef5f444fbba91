"""The heartbeat (§14): proof that events from each account and region still reach the monitor.

In every watched account and region an EventBridge Scheduler schedule puts the default encryption
of a small bucket of the monitor's own again and again. Its CloudTrail event travels the whole
path (trail, rule, forwarder, central bus, function); the function records the beat. A path whose
last beat is older than two intervals is silent: one EVENT_PATH_SILENT alert (HIGH), and a
RESOLVED notice when beats return, through the same lifecycle as a bucket's drift.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .clock import iso_of_ms
from .models import BucketRef, Code, Finding, Status, Trigger, Violation

# ``s3-encryption-monitor-hb-<account>-<region>``: at most 52 characters, one per account and
# region, found by name so a beat costs no read.
HEARTBEAT_PREFIX = "s3-encryption-monitor-hb-"
# A path is silent after this many intervals without a beat.
MISSED_BEATS = 2
BEAT = "the monitor's heartbeat bucket: its events prove the path, its encryption is not judged"


@dataclass(frozen=True, order=True)
class EventPath:
    """Where events come from: one account and region."""

    account: str
    region: str

    @property
    def label(self) -> str:
        return f"{self.account}/{self.region}"

    @property
    def bucket(self) -> BucketRef:
        name = heartbeat_bucket_name(self.account, self.region)
        return BucketRef(name, self.account, self.region)

    @classmethod
    def parse(cls, label: str) -> EventPath:
        account, _, region = label.partition("/")
        return cls(account, region)


def heartbeat_bucket_name(account: str, region: str) -> str:
    return f"{HEARTBEAT_PREFIX}{account}-{region}"


def is_heartbeat(bucket: BucketRef) -> bool:
    return bucket.name == heartbeat_bucket_name(bucket.account, bucket.region)


def beat(bucket: BucketRef, trigger: Trigger) -> Finding:
    """A beat, as the lifecycle sees it: the path is fine (closing an open silent alert)."""
    return Finding(bucket, Status.COMPLIANT, None, (), trigger, detail=BEAT)


@dataclass(frozen=True)
class Silence:
    path: EventPath
    last_beat_ms: int | None  # None: never beaten since the watchdog began to expect it
    since_ms: int  # the last beat, or when the watchdog first expected one


def silent_paths(
    beats: Mapping[EventPath, int],
    expected_since: Mapping[EventPath, int],
    now_ms: int,
    interval_minutes: int,
) -> list[Silence]:
    """The paths with no beat for ``MISSED_BEATS`` intervals. ``beats``: each path's last beat
    (epoch ms); ``expected_since``: when the watchdog first expected a path that had not beaten."""
    limit = MISSED_BEATS * interval_minutes * 60_000
    silences = []
    for path in sorted({*beats, *expected_since}):
        last = beats.get(path)
        since = last if last is not None else expected_since[path]
        if now_ms - since > limit:
            silences.append(Silence(path, last, since))
    return silences


def silent(silence: Silence, trigger: Trigger, interval_minutes: int) -> Finding:
    path = silence.path
    last = (
        f"its last beat was at {iso_of_ms(silence.last_beat_ms)}"
        if silence.last_beat_ms is not None
        else "it has not beaten since the monitor began expecting it at "
        + iso_of_ms(silence.since_ms)
    )
    message = (
        f"No heartbeat from account {path.account}, region {path.region} for more than "
        f"{MISSED_BEATS} intervals of {interval_minutes} minutes: {last}. Changes to buckets "
        "there may not reach the monitor. Usually a trail stopped logging, a rule or forwarder "
        "was disabled or deleted, or the heartbeat schedule failed: run "
        f"`s3-encryption-monitor doctor --region {path.region}`."
    )
    return Finding(
        path.bucket,
        Status.UNVERIFIABLE,
        None,
        (Violation(Code.EVENT_PATH_SILENT, message),),
        trigger,
        detail=f"event path {path.label} silent",
    )


def paths_of(accounts: Iterable[str], regions: Iterable[str]) -> list[EventPath]:
    region_list = list(regions)
    return [EventPath(account, region) for account in accounts for region in region_list]
