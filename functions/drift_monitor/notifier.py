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

from .lifecycle import Action, decide, drift_seconds, fingerprint
from .models import Finding
from .policy import Policy
from .publisher import AlertPublisher
from .state_store import StateStore

if TYPE_CHECKING:
    from .outputs import Output


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

    def settle(self, finding: Finding, evaluated_at: int, now: datetime | None = None) -> Settled:
        moment = now or datetime.now(UTC)
        stamp = iso(moment)
        recorded = self._store.record(finding, evaluated_at, stamp)
        if recorded.superseded:
            return Settled(Action.SUPERSEDED)
        previous = recorded.previous
        action = decide(previous, finding)
        if action not in (Action.ALERT, Action.RESOLVE):
            return Settled(action)
        # Imported on the first message, not at every cold start: most events are compliant.
        from .alerts import build_alert, build_notice  # noqa: PLC0415

        if action is Action.ALERT:
            # The state keeps firstDetected only while a drift is open (see StateStore.record).
            first = (previous.first_detected if previous else None) or stamp
            alert = build_alert(finding, self._policy, first_detected=first)
        else:
            assert previous is not None
            alert = build_notice(finding, previous, self._policy, drift_seconds(previous, moment))
        message_id = self._publisher.publish(alert)
        for output in self._outputs:
            output.send(alert.document, stamp)
        current = fingerprint(finding)
        if current is not None:
            self._store.mark_alerted(finding.bucket, current, stamp)
        else:
            self._store.mark_resolved(finding.bucket, stamp)
        return Settled(action, message_id)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def epoch_ms(moment: datetime | None = None) -> int:
    return int((moment or datetime.now(UTC)).timestamp() * 1000)
