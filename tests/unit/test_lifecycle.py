"""The lifecycle's decisions: pure functions of the previous row and the new finding."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from functions.drift_monitor.domain.lifecycle import (
    Action,
    BucketState,
    Claim,
    Decision,
    age_band,
    decide,
    drift_seconds,
    fingerprint,
    missed_by_events,
    next_state,
    sweep_change,
)
from functions.drift_monitor.domain.models import (
    BucketRef,
    Code,
    EncryptionRule,
    Finding,
    ObservedEncryption,
    Status,
    Trigger,
    Violation,
)

BUCKET = BucketRef("payments-ledger", "123456789012", "eu-west-1")
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
STAMP = "2026-11-27T12:00:00Z"


def finding(
    status: Status,
    *codes: Code,
    algorithm: str = "AES256",
    key: str | None = None,
    source: str = "cloudtrail",
    message: str = "explained",
) -> Finding:
    observed = ObservedEncryption(BUCKET, (EncryptionRule(algorithm, key),))
    return Finding(
        BUCKET,
        status,
        None if status is Status.UNVERIFIABLE else observed,
        tuple(Violation(code, message) for code in codes),
        Trigger(source=source, event_name="PutBucketEncryption"),
    )


DRIFT = finding(Status.DRIFT, Code.ALGORITHM_NOT_ALLOWED)
OTHER_DRIFT = finding(Status.DRIFT, Code.KMS_KEY_NOT_ALLOWED, algorithm="aws:kms", key="k/2")
DENIED = finding(Status.UNVERIFIABLE, Code.ACCESS_DENIED)
COMPLIANT = finding(Status.COMPLIANT, algorithm="aws:kms", key="k/1")
EXEMPT = replace(DRIFT, status=Status.EXEMPT, detail="bucket tagged team=sandbox")
VANISHED = Finding(BUCKET, Status.VANISHED, None, (), DRIFT.trigger, detail="gone")


def state(status: Status, announced: Finding | None = None, **extra: object) -> BucketState:
    return BucketState(
        status=status,
        fingerprint=fingerprint(announced) if announced else None,
        evaluated_at=1,
        alerted_fingerprint=fingerprint(announced) if announced else None,
        **extra,  # type: ignore[arg-type]
    )


def test_the_fingerprint_is_the_verdict_and_the_configuration_not_the_trigger_or_wording() -> None:
    reworded = finding(Status.DRIFT, Code.ALGORITHM_NOT_ALLOWED, source="sweep", message="new")
    assert fingerprint(DRIFT) == fingerprint(reworded)
    assert fingerprint(DRIFT) != fingerprint(OTHER_DRIFT)
    assert fingerprint(DRIFT) != fingerprint(
        finding(Status.DRIFT, Code.ALGORITHM_NOT_ALLOWED, Code.SSE_C_NOT_BLOCKED)
    )
    assert fingerprint(DRIFT) != fingerprint(
        finding(Status.DRIFT, Code.ALGORITHM_NOT_ALLOWED, algorithm="aws:kms:dsse")
    )
    assert fingerprint(DENIED) is not None and len(fingerprint(DENIED) or "") == 16
    for quiet in (COMPLIANT, EXEMPT, VANISHED):
        assert fingerprint(quiet) is None


@pytest.mark.parametrize(
    ("previous", "new", "action"),
    [
        (None, DRIFT, Action.ALERT),  # first sight
        (state(Status.COMPLIANT), DRIFT, Action.ALERT),  # a compliant bucket drifts
        (state(Status.DRIFT, DRIFT), DRIFT, Action.SUPPRESS),  # the same drift again
        (state(Status.DRIFT, DRIFT), OTHER_DRIFT, Action.ALERT),  # a different drift
        (state(Status.DRIFT, DRIFT), DENIED, Action.ALERT),  # now it cannot be read
        (state(Status.UNVERIFIABLE, DENIED), DENIED, Action.SUPPRESS),
        (state(Status.DRIFT), DRIFT, Action.ALERT),  # recorded, but the alert never went out
        (state(Status.DRIFT, DRIFT), COMPLIANT, Action.RESOLVE),
        (state(Status.DRIFT, DRIFT), EXEMPT, Action.RESOLVE),
        (state(Status.DRIFT, DRIFT), VANISHED, Action.RESOLVE),
        (state(Status.UNVERIFIABLE, DENIED), COMPLIANT, Action.RESOLVE),
        (state(Status.COMPLIANT, DRIFT), COMPLIANT, Action.RESOLVE),  # the notice failed: again
        (None, COMPLIANT, Action.NONE),
        (state(Status.COMPLIANT), COMPLIANT, Action.NONE),
        (state(Status.EXEMPT), EXEMPT, Action.NONE),
        (None, VANISHED, Action.NONE),
    ],
)
def test_decide(previous: BucketState | None, new: Finding, action: Action) -> None:
    assert decide(previous, new) == Decision(action)


LIVE, EXPIRED = Claim("other", 2_000), Claim("dead", 500)


@pytest.mark.parametrize(
    ("previous", "new", "decision"),
    [
        # another evaluation claimed this drift and may still be announcing it
        (state(Status.DRIFT, claims=((fingerprint(DRIFT), LIVE),)), DRIFT,
         Decision(Action.SUPPRESS)),
        # its holder died before announcing (the claim outlived its invocation): take it over
        (state(Status.DRIFT, claims=((fingerprint(DRIFT), EXPIRED),)), DRIFT,
         Decision(Action.ALERT, take_over=EXPIRED)),
        # a claim on another drift is no claim on this one
        (state(Status.DRIFT, claims=((fingerprint(OTHER_DRIFT), LIVE),)), DRIFT,
         Decision(Action.ALERT)),
        # announced already: the claim does not matter
        (state(Status.DRIFT, DRIFT, claims=((fingerprint(DRIFT), EXPIRED),)), DRIFT,
         Decision(Action.SUPPRESS)),
        (state(Status.DRIFT, DRIFT, resolving=LIVE), COMPLIANT, Decision(Action.SUPPRESS)),
        (state(Status.DRIFT, DRIFT, resolving=EXPIRED), COMPLIANT,
         Decision(Action.RESOLVE, take_over=EXPIRED)),
        # a resolution claimed when nothing was announced stands for nothing
        (state(Status.COMPLIANT, resolving=LIVE), COMPLIANT, Decision(Action.NONE)),
    ],
)  # fmt: skip
def test_decide_with_claims(previous: BucketState, new: Finding, decision: Decision) -> None:
    assert decide(previous, new, now_ms=1_000) == decision


def test_a_claim_survives_its_encoding() -> None:
    assert Claim.decode(Claim("a@b", 17).encode()) == Claim("a@b", 17)
    assert Claim.decode("no-deadline") is None


def test_the_sweep_row_keeps_when_the_drift_began_and_counts_it_as_announced() -> None:
    earlier = state(Status.DRIFT, DRIFT, first_detected="2026-11-01T00:00:00Z",
                    last_alerted="2026-11-01T00:00:00Z", swept_status=Status.DRIFT)  # fmt: skip

    same = next_state(earlier, DRIFT, 5, STAMP, swept=True)
    fresh = next_state(None, OTHER_DRIFT, 5, STAMP, swept=True)
    fixed = next_state(earlier, COMPLIANT, 5, STAMP, swept=True)

    assert (same.first_detected, same.last_alerted) == ("2026-11-01T00:00:00Z",) * 2
    assert same.alerted_fingerprint == fingerprint(DRIFT)
    assert (fresh.first_detected, fresh.last_alerted) == (STAMP, STAMP)
    assert fresh.alerted_fingerprint == fingerprint(OTHER_DRIFT)
    assert (fixed.first_detected, fixed.alerted_fingerprint, fixed.last_resolved) == (
        None,
        None,
        STAMP,
    )
    assert (same.swept_status, fixed.swept_status, fixed.evaluated_at) == (
        Status.DRIFT,
        Status.COMPLIANT,
        5,
    )


@pytest.mark.parametrize(
    ("swept_before", "now", "new_drift", "resolved"),
    [
        (None, DRIFT, True, False),  # never swept: new
        (Status.COMPLIANT, DRIFT, True, False),
        (Status.DRIFT, DRIFT, False, False),
        (Status.DRIFT, OTHER_DRIFT, False, False),  # still drifting: not new
        (Status.DRIFT, COMPLIANT, False, True),
        (Status.UNVERIFIABLE, EXEMPT, False, True),
        (Status.COMPLIANT, COMPLIANT, False, False),
    ],
)
def test_moves_since_the_previous_sweep(
    swept_before: Status | None, now: Finding, new_drift: bool, resolved: bool
) -> None:
    previous = state(Status.DRIFT, DRIFT, swept_status=swept_before)
    after = next_state(previous, now, 5, STAMP, swept=True)

    change = sweep_change(previous, after, NOW)

    assert (change.new_drift, change.resolved) == (new_drift, resolved)
    assert (change.age_band is not None) == now.alerts


@pytest.mark.parametrize(
    ("before", "now", "missed"),
    [
        (None, DRIFT, True),  # a drift no event recorded (an event would have opened its row)
        (None, DENIED, False),  # a read failure says nothing about the event path
        (state(Status.DRIFT, DRIFT), DRIFT, False),  # the event saw it
        (state(Status.DRIFT, DRIFT), OTHER_DRIFT, True),  # changed since, no event saw it
        (state(Status.DRIFT, DRIFT), COMPLIANT, True),  # fixed, no event saw the fix
        (state(Status.DRIFT, DRIFT), VANISHED, True),  # deleted, no event saw it
        (state(Status.UNVERIFIABLE, DENIED), COMPLIANT, False),  # access came back
    ],
)
def test_what_the_sweep_counts_as_missed_by_events(
    before: BucketState | None, now: Finding, missed: bool
) -> None:
    after = next_state(before, now, 5, STAMP, swept=True)

    assert missed_by_events(before, after) is missed


@pytest.mark.parametrize(
    ("first_detected", "band"),
    [
        ("2026-11-27T11:00:00Z", "<1d"),
        ("2026-11-25T12:00:00Z", "1-7d"),
        ("2026-11-20T12:00:00Z", "7-30d"),
        ("2026-10-01T00:00:00Z", ">=30d"),
        (None, "<1d"),
    ],
)
def test_age_bands(first_detected: str | None, band: str) -> None:
    assert age_band(first_detected, NOW) == band


def test_drift_seconds_is_unknown_without_a_start() -> None:
    assert drift_seconds(state(Status.DRIFT, DRIFT), NOW) is None
    started = state(Status.DRIFT, DRIFT, first_detected="2026-11-27T10:30:00Z")
    assert drift_seconds(started, NOW) == 5400
