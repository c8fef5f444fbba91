"""One account's part of a scan, and the counts of many (``scanner/outputs.py`` writes them)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from functions.drift_monitor.domain.models import Status
from functions.drift_monitor.sweep.engine import SweepResult


@dataclass(frozen=True)
class AccountScan:
    """One account's part of a scan: its counts, or why it could not be scanned."""

    account: str
    result: SweepResult | None
    error: str | None = None

    @property
    def statuses(self) -> Counter[Status]:
        return Counter() if self.result is None else self.result.tally.statuses


def totals(scans: list[AccountScan]) -> Counter[Status]:
    counted: Counter[Status] = Counter()
    for scanned in scans:
        counted.update(scanned.statuses)
    return counted
