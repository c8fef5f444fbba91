"""Timestamps as the monitor writes them (ISO 8601 in UTC to the second, with a ``Z``), and
answers remembered for a while."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from datetime import UTC, datetime
from typing import Generic, TypeVar

V = TypeVar("V")


def iso(moment: datetime | None = None) -> str:
    """``moment`` (default: now) as ``2026-11-27T06:00:00Z``."""
    return (
        (moment or datetime.now(UTC))
        .astimezone(UTC)
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z")
    )


def parse_iso(text: str) -> datetime:
    """The inverse of ``iso`` (any ISO 8601 time with an offset or ``Z``)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def iso_of_ms(epoch_ms: int) -> str:
    """Epoch milliseconds as ``iso`` writes them."""
    return iso(datetime.fromtimestamp(epoch_ms / 1000, UTC))


def epoch_ms(moment: datetime | None = None) -> int:
    return int((moment or datetime.now(UTC)).timestamp() * 1000)


class Remembered(Generic[V]):
    """Values computed once per key and kept ``seconds``. One lock around lookup and computation:
    sixteen sweep threads asking for a new key at once make one call, not sixteen (the keys
    remembered are few, the wait is short)."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._seconds = seconds
        self._clock = clock
        self._values: dict[Hashable, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], V]) -> V:
        with self._lock:
            now = self._clock()
            kept = self._values.get(key)
            if kept is not None and now - kept[0] < self._seconds:
                return kept[1]
            value = compute()
            self._values[key] = (now, value)
            return value

    def forget(self, stale: Callable[[Hashable, V], bool]) -> None:
        """Drops the values ``stale`` points at: the next ``get`` computes them again."""
        with self._lock:
            for key in [key for key, (_, value) in self._values.items() if stale(key, value)]:
                del self._values[key]
