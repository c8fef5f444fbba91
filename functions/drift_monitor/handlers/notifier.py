"""After an evaluation: record it, decide what to tell, tell it everywhere, remember it was told.

The order keeps the guarantee that nothing is lost: the message goes out before the state says
it went out, so a failed publish or output fails the invocation and the retry sends it again.
The write that records the evaluation also claims the announcement (``lifecycle``), so of any
number of concurrent or duplicate deliveries of one change exactly one announces it; a failed
announcement gives its claim back for the retry, and a claim whose holder died expires with the
holder's invocation.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ..aws.publisher import AlertPublisher
from ..aws.state_store import StateStore
from ..domain.clock import iso
from ..domain.lifecycle import (
    Action,
    BucketState,
    Claim,
    Decision,
    claimed,
    decide,
    drift_seconds,
    fingerprint,
    first_announcement,
)
from ..domain.models import Finding
from ..domain.policy import Policy

if TYPE_CHECKING:
    from ..aws.outputs import Output
    from ..domain.alerts import Alert
    from ..domain.fix import Remediation


# Without an invocation deadline (a caller outside Lambda), claims last this long.
DEFAULT_LEASE_MS = 5 * 60 * 1000


@dataclass(frozen=True)
class Settled:
    action: Action
    message_id: str | None = None


class Notifier:
    def __init__(
        self,
        store: StateStore,
        publisher: AlertPublisher,
        outputs: Sequence[Output],
        policy: Policy,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._outputs = outputs
        self._policy = policy

    def settle(
        self,
        finding: Finding,
        evaluated_at: int,
        now: datetime | None = None,
        remediation: Remediated | None = None,
        *,
        lease_until: int | None = None,
    ) -> Settled:
        """``remediation``: the drift the monitor just fixed (or tried to), and what it did;
        ``finding`` is then the bucket as read again afterwards. ``lease_until`` (epoch ms):
        when this invocation may no longer be running, and so its claims expire."""
        moment = now or datetime.now(UTC)
        stamp = iso(moment)
        now_ms = int(moment.timestamp() * 1000)
        claim = Claim(uuid.uuid4().hex, lease_until or now_ms + DEFAULT_LEASE_MS)
        fixed = remediation is not None and remediation.outcome.verified
        # What this evaluation would announce: the drift it sees (or the one it fixed), else the
        # resolution of the drift announced before.
        claiming = fingerprint(remediation.drift if remediation and fixed else finding)
        recorded = self._store.record(finding, evaluated_at, stamp, claim, claiming)
        if recorded.superseded:
            return Settled(Action.SUPERSEDED)
        previous = recorded.previous
        if remediation is not None and fixed:
            held = previous.claim_on(claiming) if previous else None
            decision = claimed(Action.RESOLVE, held, now_ms)
        else:
            decision = decide(previous, finding, now_ms)
        if decision.action not in (Action.ALERT, Action.RESOLVE):
            return Settled(decision.action)
        if decision.take_over is not None and not self._store.take_over(
            finding.bucket, claiming, decision.take_over, claim
        ):
            return Settled(Action.SUPPRESS)
        try:
            return self._announce(
                finding, previous, decision, stamp=stamp, moment=moment, remediation=remediation
            )
        except Exception:
            self._store.release(finding.bucket, claiming, claim)
            raise

    def _announce(
        self,
        finding: Finding,
        previous: BucketState | None,
        decision: Decision,
        *,
        stamp: str,
        moment: datetime,
        remediation: Remediated | None,
    ) -> Settled:
        # Imported on the first message, not at every cold start: most events are compliant.
        from ..domain.alerts import build_alert, build_notice  # noqa: PLC0415

        announced = previous.alerted_fingerprint if previous else None
        stale = tuple(fp for fp, _ in previous.claims) if previous else ()
        if remediation is not None and remediation.outcome.verified:
            # Fixed before anyone was told: one RESOLVED notice says what drifted and what was
            # applied, whether or not the drift had been announced before. The claim on the drift
            # stays, so a duplicate that read the bucket before the fix announces nothing.
            drift = remediation.drift
            was = previous if previous and announced else None
            was = was or BucketState(
                status=drift.status,
                fingerprint=fingerprint(drift),
                evaluated_at=0,
                violations=tuple(v.code.value for v in drift.violations),
                first_detected=(previous.first_detected if previous else None) or stamp,
            )
            notice = build_notice(
                finding, was, self._policy, drift_seconds(was, moment), remediation.outcome
            )
            message_id = self._send(notice, stamp)
            kept = fingerprint(drift)
            forget = tuple(fp for fp in stale if fp != kept)
            self._store.mark_resolved(finding.bucket, stamp, announced, forget)
            return Settled(Action.RESOLVE, message_id)
        if decision.action is Action.ALERT:
            current = fingerprint(finding)
            assert current is not None
            # The state keeps firstDetected only while a drift is open (see StateStore.record).
            first = (previous.first_detected if previous else None) or stamp
            outcome = remediation.outcome if remediation else None
            alert = build_alert(finding, self._policy, first_detected=first, remediation=outcome)
            message_id = self._send(alert, stamp, created=first_announcement(previous))
            forget = tuple(fp for fp in stale if fp != current)
            self._store.mark_alerted(finding.bucket, current, stamp, forget)
            return Settled(Action.ALERT, message_id)
        assert previous is not None
        notice = build_notice(finding, previous, self._policy, drift_seconds(previous, moment))
        message_id = self._send(notice, stamp)
        # Every drift claim goes with the resolution: the same drift coming back is a new one.
        self._store.mark_resolved(finding.bucket, stamp, announced, stale)
        return Settled(Action.RESOLVE, message_id)

    def _send(self, alert: Alert, stamp: str, *, created: bool = False) -> str:
        message_id = self._publisher.publish(alert)
        for output in self._outputs:
            output.send(alert.document, stamp, created=created)
        return message_id


@dataclass(frozen=True)
class Remediated:
    """A drift remediation acted on (``remediation.Remediator``) and what it did."""

    drift: Finding
    outcome: Remediation
