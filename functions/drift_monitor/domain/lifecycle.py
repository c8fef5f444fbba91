"""What to tell people about an evaluation, given what they were told before: pure decisions.

A drift is announced once. The state table remembers, per bucket, the fingerprint of the last
drift announced; the same drift seen again is counted, not re-sent, and a bucket whose announced
drift is gone (compliant, exempt or deleted) gets one RESOLVED notice.

EventBridge delivers at least once and Lambda runs duplicates in parallel containers, so "not
announced yet" is not enough to announce: each announcement (a drift's fingerprint, or the
resolution of the announced drift) is claimed by the write that records the evaluation, and only
the evaluation whose write created the claim announces it. A claim lasts as long as its holder's
invocation may run (a lease): one whose holder died before announcing may be taken over.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from .clock import parse_iso
from .models import Finding, Status

RESOLVED = "RESOLVED"
FINGERPRINT_LENGTH = 16
# Open drift by how long it has lasted, for the digest (upper bounds in days, exclusive).
AGE_BANDS = (("<1d", 1), ("1-7d", 7), ("7-30d", 30), (">=30d", None))
# The sweep's counters of moves since the previous sweep.
NEW_DRIFT = "newDrift"
RESOLVED_SINCE = "resolved"
AGE_PREFIX = "age:"
# Verdicts the sweep found changed that no event had seen, by ``<account>/<region>``.
MISSED_PREFIX = "missed:"


class Action(StrEnum):
    ALERT = "ALERT"  # a drift (or unverifiable bucket) not announced yet: publish it
    SUPPRESS = "SUPPRESS"  # already announced, or being announced by another evaluation: count it
    RESOLVE = "RESOLVE"  # the announced drift is gone: publish one RESOLVED notice
    NONE = "NONE"  # nothing was or is wrong
    SUPERSEDED = "SUPERSEDED"  # a newer evaluation of the bucket was already recorded


@dataclass(frozen=True)
class Claim:
    """Who announces a drift or a resolution, and until when the claim holds."""

    holder: str  # one evaluation's own id
    until: int  # epoch milliseconds: the holder's invocation cannot run past it

    def encode(self) -> str:
        return f"{self.holder}@{self.until}"

    @classmethod
    def decode(cls, text: str) -> Claim | None:
        holder, _, until = text.rpartition("@")
        return cls(holder, int(until)) if holder and until.isdigit() else None


@dataclass(frozen=True)
class Decision:
    action: Action
    take_over: Claim | None = None  # an expired claim to replace before announcing


@dataclass(frozen=True)
class BucketState:
    """One bucket's row of the state table, as the last evaluation left it."""

    status: Status
    fingerprint: str | None
    evaluated_at: int  # epoch milliseconds of the read the status is based on
    violations: tuple[str, ...] = ()
    first_detected: str | None = None  # when the open drift began (ISO 8601)
    alerted_fingerprint: str | None = None  # the drift announced and not resolved yet
    last_alerted: str | None = None
    last_resolved: str | None = None
    swept_status: Status | None = None  # what the last sweep saw, for the digest's deltas
    # Announcements claimed (by fingerprint), and the claim on resolving the announced drift.
    claims: tuple[tuple[str, Claim], ...] = field(default=(), compare=False)
    resolving: Claim | None = field(default=None, compare=False)

    def claim_on(self, fingerprint: str | None) -> Claim | None:
        return next((claim for claimed, claim in self.claims if claimed == fingerprint), None)


def fingerprint(finding: Finding) -> str | None:
    """What makes two drifts the same drift: the status, the violation codes and the observed
    rules (algorithm, key, bucket key, blocked types). Not the trigger, the time or the messages:
    the same broken configuration seen by another event, the sweep or after a redeploy that only
    rewords messages is the same drift. A different wrong key, or a violation added by a policy
    change, is a new one. None for findings that do not alert."""
    if not finding.alerts:
        return None
    material = {
        "status": finding.status.value,
        "violations": sorted({violation.code.value for violation in finding.violations}),
        "rules": None if finding.observed is None else finding.observed.to_dict()["rules"],
    }
    digest = hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()
    return digest[:FINGERPRINT_LENGTH]


def decide(previous: BucketState | None, finding: Finding, now_ms: int = 0) -> Decision:
    """The event path's decision, from the state before this evaluation was recorded (which
    claimed the drift's fingerprint, or the resolution, unless a claim was already there)."""
    if finding.alerts:
        current = fingerprint(finding)
        if previous is not None and previous.alerted_fingerprint == current:
            return Decision(Action.SUPPRESS)
        return claimed(Action.ALERT, previous.claim_on(current) if previous else None, now_ms)
    if previous is None or previous.alerted_fingerprint is None:
        return Decision(Action.NONE)
    return claimed(Action.RESOLVE, previous.resolving, now_ms)


def first_announcement(previous: BucketState | None) -> bool:
    """Whether nothing was ever announced about the bucket (no alert, no notice, no sweep)."""
    return previous is None or not (previous.last_alerted or previous.last_resolved)


def claimed(action: Action, held: Claim | None, now_ms: int) -> Decision:
    """``action`` for the evaluation whose write created the claim (``held``: the claim that was
    there before it, if any); another evaluation's live claim means it is announcing already."""
    if held is None:
        return Decision(action)
    if held.until > now_ms:
        return Decision(Action.SUPPRESS)
    return Decision(action, take_over=held)


def next_state(
    previous: BucketState | None, finding: Finding, evaluated_at: int, now: str, *, swept: bool
) -> BucketState:
    """The row after this evaluation, for writers that replace the whole row (the sweep, whose
    digest announces what it finds): its drift counts as announced, its resolutions as made."""
    current = fingerprint(finding)
    open_drift = previous is not None and previous.alerted_fingerprint is not None
    first_detected = None
    kept = previous or BucketState(Status.COMPLIANT, None, 0)
    if finding.alerts:
        still_open = open_drift or (previous is not None and previous.status.alerts)
        first_detected = (previous.first_detected if previous and still_open else None) or now
    return BucketState(
        status=finding.status,
        fingerprint=current,
        evaluated_at=evaluated_at,
        violations=tuple(violation.code.value for violation in finding.violations),
        first_detected=first_detected,
        alerted_fingerprint=current,
        last_alerted=(
            now
            if current is not None and kept.alerted_fingerprint != current
            else kept.last_alerted
        ),
        last_resolved=now if open_drift and current is None else kept.last_resolved,
        swept_status=finding.status if swept else kept.swept_status,
    )


def moved(previous: BucketState | None, state: BucketState) -> bool:
    """Whether a sweep must rewrite the row: anything but the time of the read changed. A daily
    sweep of an estate that did not change writes nothing; the run's report records the sweep."""
    if previous is None:
        return True
    return replace(previous, evaluated_at=state.evaluated_at) != state


@dataclass(frozen=True)
class SweepChange:
    """How one bucket moved since the previous sweep, for the digest."""

    new_drift: bool
    resolved: bool
    age_band: str | None  # open drift only


def sweep_change(previous: BucketState | None, state: BucketState, now: datetime) -> SweepChange:
    was_alerting = previous is not None and (
        previous.swept_status is not None and previous.swept_status.alerts
    )
    alerting = state.status.alerts
    return SweepChange(
        new_drift=alerting and not was_alerting,
        resolved=was_alerting and not alerting,
        age_band=age_band(state.first_detected, now) if alerting else None,
    )


def missed_by_events(previous: BucketState | None, state: BucketState) -> bool:
    """Whether the sweep found a verdict no event had seen: a drift nothing recorded (an event
    reading the bucket would have opened its row), or a recorded drift gone or changed. A read
    failure is not counted: it says nothing about the event path."""
    if state.status is Status.UNVERIFIABLE:
        return False
    if previous is None:
        return state.status is Status.DRIFT
    return previous.status is Status.DRIFT and previous.fingerprint != state.fingerprint


def missed_key(account: str, region: str) -> str:
    return f"{MISSED_PREFIX}{account}/{region}"


def age_band(first_detected: str | None, now: datetime) -> str:
    days = 0.0
    if first_detected:
        started = parse_iso(first_detected)
        days = max((now - started).total_seconds(), 0.0) / 86_400
    for band, below in AGE_BANDS:
        if below is None or days < below:
            return band
    raise AssertionError("the last band has no upper bound")  # pragma: no cover


def drift_seconds(previous: BucketState | None, now: datetime) -> int | None:
    """How long the drift being resolved lasted, when its start is known."""
    if previous is None or not previous.first_detected:
        return None
    started = parse_iso(previous.first_detected)
    return max(int((now - started).total_seconds()), 0)
