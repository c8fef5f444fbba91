"""Value objects shared by the event handler, the evaluation and the alerts."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
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


ACCOUNT_ID = re.compile(r"^\d{12}$")
REGION_NAME = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")


def partition_of(region: str) -> str:
    """The ARN partition of a region: aws, aws-cn or aws-us-gov."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


@dataclass(frozen=True)
class BucketRef:
    name: str
    account: str
    region: str


@dataclass(frozen=True)
class EncryptionRule:
    algorithm: str
    kms_key_id: str | None = None
    bucket_key_enabled: bool = False
    blocked_encryption_types: tuple[str, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "algorithm": self.algorithm,
            "kmsKeyId": self.kms_key_id,
            "bucketKeyEnabled": self.bucket_key_enabled,
            "blockedEncryptionTypes": (
                None
                if self.blocked_encryption_types is None
                else list(self.blocked_encryption_types)
            ),
        }


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
        return {
            "source": self.source,
            "eventName": self.event_name,
            "eventTime": self.event_time,
            "eventId": self.event_id,
            "actor": self.actor,
            "sourceIp": self.source_ip,
        }


@dataclass(frozen=True)
class Violation:
    code: Code
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code.value, "message": self.message}


@dataclass(frozen=True)
class Finding:
    """The verdict on one bucket. ``observed`` is None when the configuration could not be read."""

    bucket: BucketRef
    status: Status
    observed: ObservedEncryption | None
    violations: tuple[Violation, ...]
    trigger: Trigger
    detail: str | None = None  # why a bucket is exempt, vanished or unverifiable

    @property
    def alerts(self) -> bool:
        return self.status.alerts

    @property
    def severity(self) -> Severity | None:
        """None for findings that do not alert (compliant, exempt, vanished)."""
        if not self.alerts:
            return None
        if self.status is Status.UNVERIFIABLE:
            return Severity.LOW
        downgrade = self.trigger.event_name == "DeleteBucketEncryption"
        if downgrade or any(v.code in _HIGH_SEVERITY for v in self.violations):
            return Severity.HIGH
        return Severity.MEDIUM


_HIGH_SEVERITY = frozenset({Code.KMS_KEY_CROSS_ACCOUNT, Code.NO_DEFAULT_ENCRYPTION})
