"""Timestamps as the monitor writes them: ISO 8601 in UTC to the second, with a ``Z``."""

from __future__ import annotations

from datetime import UTC, datetime


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


def epoch_ms(moment: datetime | None = None) -> int:
    return int((moment or datetime.now(UTC)).timestamp() * 1000)
