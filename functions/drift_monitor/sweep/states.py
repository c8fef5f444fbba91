"""A sweep page's findings into the state table, and how each bucket moved since the last sweep.

The sweep's digest is its one message, so what it finds counts as announced: a drift it lists is
not alerted again by the next event, and a drift it finds fixed is closed (listed as resolved).

It reads only what is open (one query of the sparse index per account and region) and writes only
the rows whose verdict moved: a bucket with nothing open that the sweep finds compliant (or
exempt, or gone) costs no read and no write; its row keeps the last event's evaluation.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ..aws.state_store import StateStore, state_key
from ..domain.clock import iso
from ..domain.heartbeat import is_heartbeat
from ..domain.lifecycle import (
    AGE_PREFIX,
    MISSED_PREFIX,
    NEW_DRIFT,
    RESOLVED_SINCE,
    BucketState,
    missed_by_events,
    missed_key,
    moved,
    next_state,
    sweep_change,
)
from ..domain.models import Finding

Row = tuple[Finding, BucketState, BucketState | None]  # the finding, its new row, the old one


@dataclass(frozen=True)
class SweepChanges:
    # newDrift, resolved, age:<band>, missed:<account>/<region>
    counts: Counter[str] = field(default_factory=Counter)
    first_detected: dict[str, str] = field(default_factory=dict)  # by state key, open drift only
    new: frozenset[str] = frozenset()  # state keys of drift new since the previous sweep
    rows: list[Row] = field(default_factory=list)  # the rows to rewrite (their verdict moved)

    @property
    def missed(self) -> int:
        """Verdicts this page found changed that no event had seen."""
        return sum(n for name, n in self.counts.items() if name.startswith(MISSED_PREFIX))

    @property
    def announced(self) -> list[Row]:
        """Drifts this sweep announces first (its digest lists them)."""
        return [
            row
            for row in self.rows
            if row[1].alerted_fingerprint is not None
            and (row[2] is None or row[2].alerted_fingerprint != row[1].alerted_fingerprint)
        ]

    @property
    def closed(self) -> list[Row]:
        """Announced drifts this sweep finds gone."""
        return [
            row
            for row in self.rows
            if row[1].alerted_fingerprint is None
            and row[2] is not None
            and row[2].alerted_fingerprint is not None
        ]


def record_sweep(
    store: StateStore,
    account: str,
    findings: Sequence[Finding],
    evaluated_at: int,
    now: datetime,
    *,
    concurrency: int = 16,
) -> SweepChanges:
    """``plan_sweep`` and its rows written at once."""
    changes = plan_sweep(store, account, findings, evaluated_at, now)
    store.write_sweep(changes.rows, iso(now), concurrency)
    return changes


def plan_sweep(
    store: StateStore,
    account: str,
    findings: Sequence[Finding],
    evaluated_at: int,
    now: datetime,
) -> SweepChanges:
    """What the page's findings change, from the open rows as they are; nothing written yet, so
    what must be sent first (Security Hub) can be sent before the rows say it was."""
    stamp = iso(now)
    regions = sorted({finding.bucket.region for finding in findings})
    previous = store.open_states(account, regions) if findings else {}
    rows: list[Row] = []
    counts: Counter[str] = Counter()
    first_detected: dict[str, str] = {}
    new: set[str] = set()
    for finding in findings:
        if is_heartbeat(finding.bucket):
            continue  # its row is the heartbeat's: only beats and the watchdog write it
        key = state_key(finding.bucket)
        before = previous.get(key)
        if before is None and not finding.alerts:
            continue  # nothing was open and nothing is: no read, no write
        if before is not None and before.evaluated_at > evaluated_at:
            continue  # an event read the bucket after this page began: its row stands
        state = next_state(before, finding, evaluated_at, stamp, swept=True)
        change = sweep_change(before, state, now)
        if change.new_drift:
            counts[NEW_DRIFT] += 1
            new.add(key)
        if change.resolved:
            counts[RESOLVED_SINCE] += 1
        if change.age_band is not None:
            counts[AGE_PREFIX + change.age_band] += 1
        if missed_by_events(before, state):
            counts[missed_key(account, finding.bucket.region)] += 1
        if state.first_detected:
            first_detected[key] = state.first_detected
        if moved(before, state):
            rows.append((finding, state, before))
    return SweepChanges(counts, first_detected, frozenset(new), rows)
