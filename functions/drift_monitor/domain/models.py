"""Value objects shared by the event handler, the evaluation and the alerts."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Any


class Status(StrEnum):
    COMPLIANT = "COMPLIANT"
    DRIFT = "DRIFT"
    UNVERIFIABLE = "UNVERIFIABLE"
    EXEMPT = "EXEMPT"
    VANISHED = "VANISHED"  # the bucket was deleted before it could be read: nothing to report

    @property
    def alerts(self) -> bool:
        return self in (Status.DRIFT, Status.UNVERIFIABLE)


class Severity(StrEnum):
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"
    INFO = "INFO"  # RESOLVED notices


class Code(StrEnum):
    NO_DEFAULT_ENCRYPTION = "NO_DEFAULT_ENCRYPTION"
    ALGORITHM_NOT_ALLOWED = "ALGORITHM_NOT_ALLOWED"
    KMS_KEY_NOT_ALLOWED = "KMS_KEY_NOT_ALLOWED"
    KMS_KEY_CROSS_ACCOUNT = "KMS_KEY_CROSS_ACCOUNT"
    AWS_MANAGED_KEY = "AWS_MANAGED_KEY"
    BUCKET_KEY_DISABLED = "BUCKET_KEY_DISABLED"
    SSE_C_NOT_BLOCKED = "SSE_C_NOT_BLOCKED"
    ACCESS_DENIED = "ACCESS_DENIED"
    READ_FAILED = "READ_FAILED"  # sweep and scan only: S3 kept failing after every retry
    KMS_KEY_UNUSABLE = "KMS_KEY_UNUSABLE"  # keyChecks: disabled, pending deletion, unavailable
    KMS_KEY_NOT_FOUND = "KMS_KEY_NOT_FOUND"  # keyChecks: no such key
    # A key named by bare id or alias name: S3 resolves it in each uploader's own account.
    KMS_KEY_NOT_FULLY_QUALIFIED = "KMS_KEY_NOT_FULLY_QUALIFIED"
    BUCKET_INACTIVE = "BUCKET_INACTIVE"  # a directory bucket idle for 90 days answers 503
    EVENT_PATH_SILENT = "EVENT_PATH_SILENT"  # heartbeat: no beat from an account and region


ACCOUNT_ID = re.compile(r"^\d{12}$")
# Wider than today's naming rules on purpose: legacy us-east-1 buckets may hold capitals and
# underscores and be up to 255 characters long. Anything else S3 would never accept.
BUCKET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,253}[A-Za-z0-9]$")
# A bucket-name glob (exemptBuckets, exceptions): those characters and the wildcards * ? [ ] !
BUCKET_GLOB = re.compile(r"^[A-Za-z0-9.\-_*?\[\]!]{1,255}$")


@cache
def _partitions() -> tuple[tuple[str, frozenset[str], re.Pattern[str]], ...]:
    """botocore's partition data (aws, aws-cn, aws-us-gov, aws-eusc, the ISO partitions): each
    partition's id, its regions and the pattern of region names it may add."""
    from botocore.loaders import create_loader  # noqa: PLC0415 - read once, on first use

    return tuple(
        (partition["id"], frozenset(partition["regions"]), re.compile(partition["regionRegex"]))
        for partition in create_loader().load_data("partitions")["partitions"]
    )


def partition_of(region: str) -> str:
    """The ARN partition of a region, as botocore's partition data says (``aws`` for a region
    no partition names, as botocore does)."""
    for partition, regions, _ in _partitions():
        if region in regions:
            return partition
    for partition, _, pattern in _partitions():
        if pattern.match(region):
            return partition
    return "aws"


def is_region_name(text: str) -> bool:
    """A region of some partition (``eusc-de-east-1`` and the ISO regions included)."""
    return any(
        text in regions or pattern.match(text) for _, regions, pattern in _partitions()
    ) and not text.endswith("-global")


class BucketKind(StrEnum):
    """S3's kinds of bucket (§12): each has its own API and the algorithms it supports."""

    GENERAL_PURPOSE = "general-purpose"
    DIRECTORY = "directory"  # S3 Express One Zone: names end in --x-s3
    TABLE = "table"  # S3 Tables
    VECTOR = "vector"  # S3 Vectors: encryption fixed at creation, per bucket and per index

    @property
    def label(self) -> str:
        return _KIND_LABELS[self]

    @property
    def algorithms(self) -> frozenset[str]:
        """The default-encryption algorithms this kind of bucket accepts."""
        if self is BucketKind.GENERAL_PURPOSE:
            return frozenset({"AES256", "aws:kms", "aws:kms:dsse"})
        return frozenset({"AES256", "aws:kms"})


_KIND_LABELS = {
    BucketKind.GENERAL_PURPOSE: "general purpose bucket",
    BucketKind.DIRECTORY: "directory bucket (S3 Express One Zone)",
    BucketKind.TABLE: "table bucket (S3 Tables)",
    BucketKind.VECTOR: "vector bucket (S3 Vectors)",
}
DIRECTORY_BUCKET_SUFFIX = "--x-s3"


@dataclass(frozen=True)
class BucketRef:
    name: str
    account: str
    region: str
    kind: BucketKind = BucketKind.GENERAL_PURPOSE

    @property
    def arn(self) -> str:
        partition = partition_of(self.region)
        if self.kind is BucketKind.DIRECTORY:
            return f"arn:{partition}:s3express:{self.region}:{self.account}:bucket/{self.name}"
        if self.kind is BucketKind.TABLE:
            return f"arn:{partition}:s3tables:{self.region}:{self.account}:bucket/{self.name}"
        if self.kind is BucketKind.VECTOR:
            return f"arn:{partition}:s3vectors:{self.region}:{self.account}:bucket/{self.name}"
        return f"arn:{partition}:s3:::{self.name}"


@dataclass(frozen=True)
class EncryptionRule:
    algorithm: str
    kms_key_id: str | None = None
    bucket_key_enabled: bool = False
    blocked_encryption_types: tuple[str, ...] | None = None
    # What the rule covers when not the whole bucket: a vector index with its own encryption.
    scope: str | None = None

    def to_dict(self) -> dict[str, Any]:
        described: dict[str, Any] = {
            "algorithm": self.algorithm,
            "kmsKeyId": self.kms_key_id,
            "bucketKeyEnabled": self.bucket_key_enabled,
            "blockedEncryptionTypes": (
                None
                if self.blocked_encryption_types is None
                else list(self.blocked_encryption_types)
            ),
        }
        if self.scope is not None:
            described["scope"] = self.scope
        return described


@dataclass(frozen=True)
class ObservedEncryption:
    """A bucket's default encryption as ``GetBucketEncryption`` returned it."""

    bucket: BucketRef
    rules: tuple[EncryptionRule, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"rules": [rule.to_dict() for rule in self.rules]}


@dataclass(frozen=True)
class Trigger:
    """What caused an evaluation: a CloudTrail event, the scheduled sweep or the scanner."""

    source: str
    event_name: str | None = None
    event_time: str | None = None
    event_id: str | None = None
    actor: str | None = None
    source_ip: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, attribute) for name, attribute in _TRIGGER_FIELDS.items()}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Trigger:
        """The inverse of ``to_dict`` (a trigger carried in a queue message); an unknown field
        raises KeyError."""
        return cls(**{_TRIGGER_FIELDS[name]: value for name, value in raw.items()})


# The document's names of a trigger's fields, in the document's order.
_TRIGGER_FIELDS = {
    "source": "source",
    "eventName": "event_name",
    "eventTime": "event_time",
    "eventId": "event_id",
    "actor": "actor",
    "sourceIp": "source_ip",
}


@dataclass(frozen=True)
class Violation:
    code: Code
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code.value, "message": self.message}


@dataclass(frozen=True)
class Exemption:
    """The exception a finding reports: in force (the finding is EXEMPT or partly exempt) or
    expired (the finding alerts, and says which exception ended)."""

    source: str  # "exceptions[N]" or "tag <key>"
    reason: str | None
    owner: str | None
    expires: str | None  # YYYY-MM-DD; None: a tag exemption without an end
    expired: bool = False
    problem: str | None = None  # a companion tag that could not be read as written

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "reason": self.reason,
            "owner": self.owner,
            "expires": self.expires,
            "expired": self.expired,
            "problem": self.problem,
        }

    def describe(self) -> str:
        who = f"owner {self.owner}" if self.owner else "no owner named"
        why = f", reason: {self.reason}" if self.reason else ""
        if self.expired:
            return f"{self.source} ({who}{why}) expired on {self.expires}"
        until = f" until {self.expires}" if self.expires else ""
        return f"{self.source}{until} ({who}{why})"


@dataclass(frozen=True)
class Finding:
    """The verdict on one bucket. ``observed`` is None when the configuration could not be read."""

    bucket: BucketRef
    status: Status
    observed: ObservedEncryption | None
    violations: tuple[Violation, ...]
    trigger: Trigger
    detail: str | None = None  # why a bucket is exempt, vanished or unverifiable
    keys: tuple[KeyFact, ...] = ()  # with keyChecks: what KMS said about the rules' keys
    # §15: violations an exception in force accepts (reported, not alerted), and the exception
    # (in force, or expired: then the finding alerts and says which one ended).
    exempted: tuple[Violation, ...] = ()
    exemption: Exemption | None = None

    @property
    def alerts(self) -> bool:
        return self.status.alerts

    @property
    def severity(self) -> Severity | None:
        """None for findings that do not alert (compliant, exempt, vanished)."""
        if not self.alerts:
            return None
        if any(v.code is Code.EVENT_PATH_SILENT for v in self.violations):
            return Severity.HIGH  # the monitor is blind there: every drift would go unseen
        if self.status is Status.UNVERIFIABLE:
            return Severity.LOW
        downgrade = self.trigger.event_name == "DeleteBucketEncryption"
        if downgrade or any(v.code in _HIGH_SEVERITY for v in self.violations):
            return Severity.HIGH
        return Severity.MEDIUM


_HIGH_SEVERITY = frozenset(
    {
        Code.KMS_KEY_CROSS_ACCOUNT,
        Code.NO_DEFAULT_ENCRYPTION,
        Code.KMS_KEY_UNUSABLE,
        Code.KMS_KEY_NOT_FOUND,
    }
)
# KMS key states in which S3 cannot encrypt with the key: writes relying on the default fail.
UNUSABLE_KEY_STATES = frozenset(
    {"Disabled", "PendingDeletion", "PendingReplicaDeletion", "PendingImport", "Unavailable"}
)


@dataclass(frozen=True)
class KeyFact:
    """What KMS said about a key a bucket rule or the policy names (``keyChecks``)."""

    requested: str  # the key as named, as an ARN (key or alias)
    arn: str | None = None  # the key's own ARN; None when it could not be described
    key_id: str | None = None
    account: str | None = None
    manager: str | None = None  # AWS or CUSTOMER
    state: str | None = None  # KMS KeyState
    multi_region: bool = False
    not_found: bool = False
    unknown_because: str | None = None  # why it could not be described (typically AccessDenied)

    def same_key(self, other: KeyFact) -> bool:
        """The same key, or replicas of one multi-Region key (same account and mrk- id)."""
        if self.arn is None or other.arn is None:
            return False
        if self.arn == other.arn:
            return True
        return (
            self.multi_region
            and other.multi_region
            and self.key_id == other.key_id
            and self.account == other.account
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kmsKeyId": self.requested,
            "arn": self.arn,
            "state": "NotFound" if self.not_found else self.state,
            "keyManager": self.manager,
            "multiRegion": self.multi_region,
            "unknownBecause": self.unknown_because,
        }


@dataclass(frozen=True)
class ListedBucket:
    name: str
    region: str | None  # None when the listing did not say (S3 before 2024, some emulators)
    kind: BucketKind = BucketKind.GENERAL_PURPOSE
    # Why the entry cannot be a bucket of its kind: an S3-compatible store (MinIO, LocalStack,
    # moto) without S3 Express or S3 Tables answers their listings with its general buckets.
    not_this_kind: str | None = None
