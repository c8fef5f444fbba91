"""Exceptions that end (§15): who accepted which violation on which buckets, why, and until when.

Two sources, one rule: the policy's ``exceptions`` list, and the exempt tag's companion tags
(``<exemptTag>-until``, ``-owner``, ``-reason``) on the bucket itself. An exception covers through
its ``expires`` day (UTC); from the next day on the violations it covered alert again, and the
alert names the exception that expired and its owner. Pure: the day is a parameter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from fnmatch import fnmatchcase
from typing import Any

from .errors import PolicyError
from .models import (
    ACCOUNT_ID,
    BUCKET_GLOB,
    BUCKET_NAME,
    BucketKind,
    BucketRef,
    Code,
    Exemption,
    Finding,
    Status,
    Violation,
)

FIELD = "exceptions"
ALL = "all"
# The digest lists exceptions that end within this many days.
EXPIRING_DAYS = 14
UNTIL_SUFFIX, OWNER_SUFFIX, REASON_SUFFIX = "-until", "-owner", "-reason"
# Codes that say something about the monitor, not about a bucket's configuration.
_NOT_ACCEPTABLE = frozenset({Code.EVENT_PATH_SILENT})
ACCEPTABLE_CODES = tuple(code.value for code in Code if code not in _NOT_ACCEPTABLE)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_WILDCARDS = frozenset("*?[")
_GENERAL_ARN = re.compile(r"^arn:(?P<partition>aws(?:-[a-z]+)*):s3:::(?P<name>[^/:]+)$")
_KIND_OF_SERVICE = {
    "s3express": BucketKind.DIRECTORY,
    "s3tables": BucketKind.TABLE,
    "s3vectors": BucketKind.VECTOR,
}
_REGIONAL_ARN = re.compile(
    r"^arn:(?P<partition>aws(?:-[a-z]+)*):(?P<service>s3express|s3tables|s3vectors):"
    r"(?P<region>[a-z0-9-]+|\*):(?P<account>\d{12}|\*):bucket/(?P<name>[^/:]+)$"
)
_FIELDS = ("buckets", "accounts", "allow", "reason", "owner", "expires")


@dataclass(frozen=True)
class BucketPattern:
    """A bucket-name glob, or a bucket ARN whose name part may be a glob."""

    text: str
    name: str
    kind: BucketKind | None = None  # None: a bare glob, any kind of bucket
    region: str | None = None
    account: str | None = None

    def matches(self, bucket: BucketRef) -> bool:
        if self.kind is not None and bucket.kind is not self.kind:
            return False
        if self.region not in (None, bucket.region) or self.account not in (None, bucket.account):
            return False
        return fnmatchcase(bucket.name, self.name)


@dataclass(frozen=True)
class PolicyException:
    """One entry of the policy's ``exceptions``."""

    index: int
    buckets: tuple[BucketPattern, ...]
    accounts: tuple[str, ...]  # empty: every account
    allow: tuple[str, ...] | None  # None: every violation ("all")
    reason: str
    owner: str
    expires: date

    @property
    def label(self) -> str:
        return f"{FIELD}[{self.index}]"

    def applies_to(self, bucket: BucketRef) -> bool:
        if self.accounts and bucket.account not in self.accounts:
            return False
        return any(pattern.matches(bucket) for pattern in self.buckets)

    def accepts(self, code: Code) -> bool:
        return self.allow is None or code.value in self.allow

    def to_dict(self) -> dict[str, Any]:
        return {
            "buckets": [pattern.text for pattern in self.buckets],
            "accounts": list(self.accounts) or None,
            "allow": ALL if self.allow is None else list(self.allow),
            "reason": self.reason,
            "owner": self.owner,
            "expires": self.expires.isoformat(),
        }


def parse_exceptions(name: str, value: object) -> tuple[PolicyException, ...]:
    if not isinstance(value, list):
        raise PolicyError(name, f"must be a list of exceptions, got {value!r}")
    return tuple(_parse_one(f"{name}[{index}]", index, raw) for index, raw in enumerate(value))


def _parse_one(where: str, index: int, raw: object) -> PolicyException:
    if not isinstance(raw, Mapping):
        raise PolicyError(where, f"must be an object with {', '.join(_FIELDS)}, got {raw!r}")
    unknown = sorted(set(raw) - set(_FIELDS))
    if unknown:
        raise PolicyError(
            f"{where}.{unknown[0]}", f"unknown field; known fields are {', '.join(_FIELDS)}"
        )
    for required in ("buckets", "allow", "reason", "owner", "expires"):
        if required not in raw:
            raise PolicyError(f"{where}.{required}", "is required")
    return PolicyException(
        index=index,
        buckets=_patterns(f"{where}.buckets", raw["buckets"]),
        accounts=_accounts(f"{where}.accounts", raw.get("accounts")),
        allow=_allow(f"{where}.allow", raw["allow"]),
        reason=_text(f"{where}.reason", raw["reason"]),
        owner=_text(f"{where}.owner", raw["owner"]),
        expires=_date(f"{where}.expires", raw["expires"]),
    )


def _strings(where: str, value: object) -> list[str]:
    if not isinstance(value, list) or not value:
        raise PolicyError(where, f"must be a non-empty list of strings, got {value!r}")
    for position, item in enumerate(value):
        if not isinstance(item, str):
            raise PolicyError(f"{where}[{position}]", f"must be a string, got {item!r}")
    return value


def _patterns(where: str, value: object) -> tuple[BucketPattern, ...]:
    return tuple(
        _pattern(f"{where}[{position}]", text)
        for position, text in enumerate(_strings(where, value))
    )


def _pattern(where: str, text: str) -> BucketPattern:
    if text.startswith("arn:"):
        general = _GENERAL_ARN.match(text)
        regional = _REGIONAL_ARN.match(text)
        if general is None and regional is None:
            raise PolicyError(
                where,
                f"{text!r} is not a bucket ARN (arn:aws:s3:::NAME, or "
                "arn:aws:s3express|s3tables|s3vectors:REGION:ACCOUNT:bucket/NAME): an object, "
                "access point or other resource ARN never names a bucket",
            )
        if general is not None:
            return BucketPattern(text, _glob(where, general["name"]), BucketKind.GENERAL_PURPOSE)
        assert regional is not None
        return BucketPattern(
            text,
            _glob(where, regional["name"]),
            _KIND_OF_SERVICE[regional["service"]],
            None if regional["region"] == "*" else regional["region"],
            None if regional["account"] == "*" else regional["account"],
        )
    return BucketPattern(text, _glob(where, text))


def _glob(where: str, glob: str) -> str:
    """A glob that can match some bucket name: bucket-name characters and wildcards only, and
    without a wildcard a valid bucket name."""
    if not BUCKET_GLOB.match(glob):
        raise PolicyError(
            where,
            f"{glob!r} cannot match a bucket name: use letters, digits, . - _ and the wildcards "
            "* ? [ ] !",
        )
    if not _WILDCARDS & set(glob) and not BUCKET_NAME.match(glob):
        raise PolicyError(
            where,
            f"{glob!r} cannot match a bucket name: a bucket name is 3 to 255 characters and "
            "begins and ends with a letter or digit",
        )
    return glob


def _accounts(where: str, value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    accounts = _strings(where, value)
    for position, account in enumerate(accounts):
        if not ACCOUNT_ID.match(account):
            raise PolicyError(f"{where}[{position}]", f"{account!r} is not a 12-digit account id")
    return tuple(accounts)


def _allow(where: str, value: object) -> tuple[str, ...] | None:
    if value == ALL:
        return None
    codes = _strings(where, value) if not isinstance(value, str) else None
    if codes is None:
        raise PolicyError(where, f'must be "all" or a list of violation codes, got {value!r}')
    for position, code in enumerate(codes):
        if code not in ACCEPTABLE_CODES:
            raise PolicyError(
                f"{where}[{position}]",
                f"{code!r} is not a violation code; known codes are {', '.join(ACCEPTABLE_CODES)}",
            )
    return tuple(dict.fromkeys(codes))


def _text(where: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PolicyError(where, f"must be a non-empty string, got {value!r}")
    return value.strip()


def _date(where: str, value: object) -> date:
    if isinstance(value, str) and _DATE.match(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise PolicyError(where, f"{value!r} is not a date (YYYY-MM-DD)")


def apply_exceptions(
    finding: Finding, exceptions: Sequence[PolicyException], today: date
) -> Finding:
    """With every violation accepted by an exception in force the finding is EXEMPT (its
    violations kept, as for any exemption); with some accepted, those move from ``violations`` to
    ``exempted`` and the rest alert. An expired exception that would have
    accepted a violation still alerting is named in the finding (the most recently ended)."""
    if not finding.alerts or not exceptions:
        return finding
    applying = [exception for exception in exceptions if exception.applies_to(finding.bucket)]
    if not applying:
        return finding
    in_force = [exception for exception in applying if exception.expires >= today]
    accepted, open_ = _split(finding.violations, in_force)
    if not open_:
        exemption = _exemption_of(next(e for e in in_force if _accepts_any(e, accepted)))
        return replace(
            finding,
            status=Status.EXEMPT,
            exemption=exemption,
            detail=f"exception {exemption.describe()}",
        )
    ended = sorted(
        (e for e in applying if e.expires < today and _accepts_any(e, open_)),
        key=lambda exception: exception.expires,
    )
    said: Exemption | None = None
    if ended:
        said = _exemption_of(ended[-1], expired=True)
    elif accepted:
        said = _exemption_of(next(e for e in in_force if _accepts_any(e, accepted)))
    return replace(finding, violations=open_, exempted=accepted, exemption=said)


def _accepts_any(exception: PolicyException, violations: Sequence[Violation]) -> bool:
    return any(exception.accepts(violation.code) for violation in violations)


def _split(
    violations: Sequence[Violation], exceptions: Sequence[PolicyException]
) -> tuple[tuple[Violation, ...], tuple[Violation, ...]]:
    accepted = tuple(v for v in violations if any(e.accepts(v.code) for e in exceptions))
    return accepted, tuple(v for v in violations if v not in accepted)


def _exemption_of(exception: PolicyException, *, expired: bool = False) -> Exemption:
    return Exemption(
        source=exception.label,
        reason=exception.reason,
        owner=exception.owner,
        expires=exception.expires.isoformat(),
        expired=expired,
    )


def tag_exemption(tag_key: str, tags: Mapping[str, str], today: date) -> Exemption:
    """The exemption the exempt tag and its companions give: expired when ``-until`` has
    passed, and treated as expired (alerting) when ``-until`` is not a date."""
    until = tags.get(tag_key + UNTIL_SUFFIX)
    owner = tags.get(tag_key + OWNER_SUFFIX)
    reason = tags.get(tag_key + REASON_SUFFIX)
    source = f"tag {tag_key}"
    if until is None:
        return Exemption(source, reason, owner, None)
    try:
        ends = _date(tag_key + UNTIL_SUFFIX, until)
    except PolicyError as bad:
        return Exemption(
            source, reason, owner, until, expired=True, problem=f"{bad.field}: {bad.problem}"
        )
    return Exemption(source, reason, owner, ends.isoformat(), expired=ends < today)
