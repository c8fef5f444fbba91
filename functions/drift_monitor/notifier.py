"""After an evaluation: record it, decide what to tell, tell it everywhere, remember it was told.

The order keeps the guarantee that nothing is lost: the message goes out before the state says
it went out, so a failed publish or output fails the invocation and the retry sends it again
(at worst twice, never not at all).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from .clock import iso
from .lifecycle import Action, BucketState, decide, drift_seconds, fingerprint
from .models import Finding
from .policy import Policy
from .publisher import AlertPublisher
from .state_store import StateStore

if TYPE_CHECKING:
    from .alerts import Alert
    from .outputs import Output
    from .remediation import Remediation


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
    ) -> Settled:
        """``remediation``: the drift the monitor just fixed (or tried to), and what it did;
        ``finding`` is then the bucket as read again afterwards."""
        moment = now or datetime.now(UTC)
        stamp = iso(moment)
        recorded = self._store.record(finding, evaluated_at, stamp)
        if recorded.superseded:
            return Settled(Action.SUPERSEDED)
        previous = recorded.previous
        # Imported on the first message, not at every cold start: most events are compliant.
        from .alerts import build_alert, build_notice  # noqa: PLC0415

        if remediation is not None and remediation.outcome.verified:
            # Fixed before anyone was told: one RESOLVED notice says what drifted and what was
            # applied, whether or not the drift had been announced before.
            drift = remediation.drift
            announced = previous if previous and previous.alerted_fingerprint else None
            was = announced or BucketState(
                status=drift.status,
                fingerprint=fingerprint(drift),
                evaluated_at=evaluated_at,
                violations=tuple(v.code.value for v in drift.violations),
                first_detected=(previous.first_detected if previous else None) or stamp,
            )
            notice = build_notice(
                finding, was, self._policy, drift_seconds(was, moment), remediation.outcome
            )
            return self._send(notice, finding, Action.RESOLVE, stamp)
        action = decide(previous, finding)
        if action is Action.ALERT:
            # The state keeps firstDetected only while a drift is open (see StateStore.record).
            first = (previous.first_detected if previous else None) or stamp
            outcome = remediation.outcome if remediation else None
            alert = build_alert(finding, self._policy, first_detected=first, remediation=outcome)
            return self._send(alert, finding, action, stamp)
        if action is Action.RESOLVE:
            assert previous is not None
            notice = build_notice(finding, previous, self._policy, drift_seconds(previous, moment))
            return self._send(notice, finding, action, stamp)
        return Settled(action)

    def _send(self, alert: Alert, finding: Finding, action: Action, stamp: str) -> Settled:
        message_id = self._publisher.publish(alert)
        for output in self._outputs:
            output.send(alert.document, stamp)
        current = fingerprint(finding)
        if current is not None:
            self._store.mark_alerted(finding.bucket, current, stamp)
        else:
            self._store.mark_resolved(finding.bucket, stamp)
        return Settled(action, message_id)


@dataclass(frozen=True)
class Remediated:
    """A drift remediation acted on (``remediation.Remediator``) and what it did."""

    drift: Finding
    outcome: Remediation
