"""The organization sweep's unit of work: one account's listing page, as a queue message.

A run starts with one item per account (its first page). The worker that lists a page queues the
next page at once, so an account's pages are evaluated side by side; a page the worker could not
finish in time is queued again from where it stopped. No item can outlast a Lambda timeout,
whatever the size of the account or of the organization.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, replace
from typing import Any

from .models import ACCOUNT_ID

_RUN_ID = re.compile(r"^[0-9A-Za-z:._-]{1,80}$")
# What an item lists: a page of ListBuckets (general purpose buckets, every region at once), or
# the directory and table buckets of the sweep's regions (listed per region, §12).
BUCKETS = "buckets"
REGIONAL = "regional"


class InvalidWorkItem(ValueError):
    """A queue message that is not a work item: it can never be processed."""


@dataclass(frozen=True)
class WorkItem:
    run_id: str
    started_at: str  # when the run started: the trigger time of every finding it makes
    account: str
    page: int = 0  # the account's listing page, counted from 0
    token: str | None = None  # ListBuckets' ContinuationToken for this page; None for the first
    part: int = 0  # > 0: the same page, resumed after a worker ran out of time
    after: str | None = None  # resuming: only buckets named after this one are left
    listing: str = BUCKETS

    @property
    def item_id(self) -> str:
        if self.listing == REGIONAL:
            return f"{self.account}/regional/{self.part:03d}"
        return f"{self.account}/{self.page:06d}/{self.part:03d}"

    @property
    def regional(self) -> bool:
        return self.listing == REGIONAL

    def other_kinds(self) -> WorkItem:
        """The account's directory and table buckets, queued beside its first page."""
        return replace(self, page=0, token=None, part=0, after=None, listing=REGIONAL)

    def next_page(self, token: str) -> WorkItem:
        return replace(self, page=self.page + 1, token=token, part=0, after=None)

    def resumed_after(self, last_started: str | None) -> WorkItem:
        """The rest of this page: the buckets named after ``last_started`` (None: all of it)."""
        return replace(self, part=self.part + 1, after=last_started or self.after)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, body: str) -> WorkItem:
        try:
            raw: Any = json.loads(body)
        except json.JSONDecodeError as error:
            raise InvalidWorkItem(f"not JSON: {error}") from error
        if not isinstance(raw, dict):
            raise InvalidWorkItem("not a JSON object")
        unknown = sorted(set(raw) - set(cls.__dataclass_fields__))
        if unknown:
            raise InvalidWorkItem(f"unknown field {unknown[0]!r}")
        try:
            item = cls(**raw)
        except TypeError as error:
            raise InvalidWorkItem(str(error)) from error
        item._check()
        return item

    def _check(self) -> None:
        if not isinstance(self.run_id, str) or not _RUN_ID.match(self.run_id):
            raise InvalidWorkItem(f"run_id {self.run_id!r} is not a run id")
        if not isinstance(self.started_at, str) or not self.started_at:
            raise InvalidWorkItem("started_at is missing")
        if not isinstance(self.account, str) or not ACCOUNT_ID.match(self.account):
            raise InvalidWorkItem(f"account {self.account!r} is not a 12-digit account id")
        if self.listing not in (BUCKETS, REGIONAL):
            raise InvalidWorkItem(f"listing {self.listing!r} is not {BUCKETS!r} or {REGIONAL!r}")
        for name in ("page", "part"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise InvalidWorkItem(f"{name} {value!r} is not a whole number")
        for name in ("token", "after"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise InvalidWorkItem(f"{name} {value!r} is not a string")
