"""The encryption policy: parsed and validated once, then read-only.

The same model is used by the Lambda function (from ``ENCRYPTION_POLICY``) and by the CDK app (from
the ``policy`` context), so a policy that synthesizes is a policy the function accepts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from .errors import PolicyError
from .exceptions import PolicyException, parse_exceptions
from .models import BUCKET_GLOB

SSE_S3 = "AES256"
SSE_KMS = "aws:kms"
DSSE_KMS = "aws:kms:dsse"
KMS_ALGORITHMS = frozenset({SSE_KMS, DSSE_KMS})
KNOWN_ALGORITHMS = (SSE_S3, SSE_KMS, DSSE_KMS)

DEFAULT_EXEMPT_TAG = "encryption-monitor:exempt=true"

_KMS_ARN = re.compile(
    r"^arn:(?P<partition>aws(?:-[a-z]+)*):kms:"
    r"(?P<region>[a-z]{2,4}(?:-[a-z]+)+-\d+):(?P<account>\d{12}):"
    r"(?P<resource>key/(?:mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
    r"|alias/[A-Za-z0-9/_-]{1,250})$"
)
_TAG_KEY = re.compile(r"^[\w .:/=+\-@]{1,128}$", re.UNICODE)
_TAG_VALUE = re.compile(r"^[\w .:/=+\-@]{0,256}$", re.UNICODE)


@dataclass(frozen=True)
class KmsArn:
    partition: str
    region: str
    account: str
    resource: str

    @classmethod
    def parse(cls, text: str) -> KmsArn | None:
        match = _KMS_ARN.match(text)
        if match is None:
            return None
        return cls(**match.groupdict())


@dataclass(frozen=True)
class ExemptTag:
    key: str
    value: str | None  # None: any value of the key exempts

    @classmethod
    def parse(cls, text: str) -> ExemptTag:
        key, sep, value = text.partition("=")
        if not _TAG_KEY.match(key):
            raise PolicyError(
                "exemptTag", f"{text!r} is not 'key' or 'key=value' with a valid tag key"
            )
        if sep and not _TAG_VALUE.match(value):
            raise PolicyError("exemptTag", f"{value!r} is not a valid tag value")
        return cls(key=key, value=value if sep else None)

    def matches(self, tags: Mapping[str, str]) -> bool:
        if self.key not in tags:
            return False
        return self.value is None or tags[self.key] == self.value

    def __str__(self) -> str:
        return self.key if self.value is None else f"{self.key}={self.value}"


@dataclass(frozen=True)
class Policy:
    allowed_algorithms: tuple[str, ...] = (SSE_KMS, DSSE_KMS)
    allowed_kms_keys: tuple[str, ...] = ()
    allow_cross_account_keys: bool = False
    require_customer_managed_key: bool = False
    require_bucket_key: bool = False
    # S3 blocks SSE-C on new general purpose buckets since April 2026 (S3 User Guide, "Default
    # SSE-C setting for new buckets FAQ"): a bucket that still allows it has been opened up.
    require_sse_c_blocked: bool = True
    exempt_buckets: tuple[str, ...] = ()
    exempt_tag: ExemptTag | None = field(
        default_factory=lambda: ExemptTag.parse(DEFAULT_EXEMPT_TAG)
    )
    # §12: ask KMS about each key (DescribeKey): aliases and ARNs match both ways, multi-Region
    # replicas match the key listed once, and a disabled, deleted or missing key is reported.
    key_checks: bool = False
    # §12: a key owned by another account of the bucket owner's organization is not "cross
    # account" (the accounts come from Organizations ListAccounts).
    allow_organization_keys: bool = False
    # §15: violations accepted on some buckets, each with a reason, an owner and an end.
    exceptions: tuple[PolicyException, ...] = ()

    @classmethod
    def from_json(cls, text: str) -> Policy:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as error:
            raise PolicyError("(document)", f"not valid JSON: {error}") from error
        return cls.from_dict(raw)

    @classmethod
    def from_dict(cls, raw: object) -> Policy:
        if not isinstance(raw, Mapping):
            raise PolicyError("(document)", f"must be a JSON object, got {type(raw).__name__}")
        unknown = sorted(set(raw) - set(_FIELDS))
        if unknown:
            raise PolicyError(
                unknown[0], f"unknown field; known fields are {', '.join(sorted(_FIELDS))}"
            )
        values: dict[str, Any] = {}
        for name, (attribute, parse) in _FIELDS.items():
            if name in raw:
                values[attribute] = parse(name, raw[name])
        policy = cls(**values)
        policy._check_consistency()
        return policy

    def _check_consistency(self) -> None:
        kms_allowed = bool(KMS_ALGORITHMS & set(self.allowed_algorithms))
        if self.allowed_kms_keys and not kms_allowed:
            raise PolicyError(
                "allowedKmsKeys",
                "lists keys but allowedAlgorithms allows neither aws:kms nor aws:kms:dsse",
            )
        if self.allow_organization_keys and self.allow_cross_account_keys:
            raise PolicyError(
                "allowOrganizationKeys",
                "has no effect while allowCrossAccountKeys is true (every account's key is "
                "accepted); set one of them",
            )
        if self.require_customer_managed_key and SSE_S3 in self.allowed_algorithms:
            raise PolicyError(
                "requireCustomerManagedKey",
                "cannot be true while allowedAlgorithms includes AES256 "
                "(SSE-S3 never uses a customer managed key)",
            )
        if self.require_customer_managed_key:
            for arn in self.allowed_kms_keys:
                if arn.endswith(":alias/aws/s3"):
                    raise PolicyError(
                        "allowedKmsKeys",
                        f"{arn} is the AWS managed key, but requireCustomerManagedKey is true",
                    )

    def is_exempt_name(self, bucket: str) -> bool:
        return any(fnmatchcase(bucket, pattern) for pattern in self.exempt_buckets)

    def to_dict(self) -> dict[str, Any]:
        """The policy in its JSON form, as it appears in alerts and in ``ENCRYPTION_POLICY``."""
        return {
            "allowedAlgorithms": list(self.allowed_algorithms),
            "allowedKmsKeys": list(self.allowed_kms_keys),
            "allowCrossAccountKeys": self.allow_cross_account_keys,
            "requireCustomerManagedKey": self.require_customer_managed_key,
            "requireBucketKey": self.require_bucket_key,
            "requireSseCBlocked": self.require_sse_c_blocked,
            "exemptBuckets": list(self.exempt_buckets),
            "exemptTag": None if self.exempt_tag is None else str(self.exempt_tag),
            "keyChecks": self.key_checks,
            "allowOrganizationKeys": self.allow_organization_keys,
            "exceptions": [exception.to_dict() for exception in self.exceptions],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))


def _bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise PolicyError(name, f"must be true or false, got {value!r}")
    return value


def _string_list(name: str, value: object) -> list[str]:
    if not isinstance(value, list):
        raise PolicyError(name, f"must be a list of strings, got {value!r}")
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise PolicyError(f"{name}[{index}]", f"must be a string, got {item!r}")
    return value


def _algorithms(name: str, value: object) -> tuple[str, ...]:
    algorithms = _string_list(name, value)
    if not algorithms:
        raise PolicyError(name, "must allow at least one algorithm")
    for index, algorithm in enumerate(algorithms):
        if algorithm not in KNOWN_ALGORITHMS:
            raise PolicyError(
                f"{name}[{index}]",
                f"{algorithm!r} is not one of {', '.join(KNOWN_ALGORITHMS)}",
            )
    return tuple(dict.fromkeys(algorithms))


def _kms_keys(name: str, value: object) -> tuple[str, ...]:
    keys = _string_list(name, value)
    for index, key in enumerate(keys):
        if KmsArn.parse(key) is None:
            raise PolicyError(
                f"{name}[{index}]",
                f"{key!r} is not a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID) "
                "or alias ARN (arn:aws:kms:REGION:ACCOUNT:alias/NAME)",
            )
    return tuple(dict.fromkeys(keys))


def _globs(name: str, value: object) -> tuple[str, ...]:
    patterns = _string_list(name, value)
    for index, pattern in enumerate(patterns):
        if not BUCKET_GLOB.match(pattern):
            raise PolicyError(
                f"{name}[{index}]",
                f"{pattern!r} is not a bucket-name glob (letters, digits, . - _ and * ? [ ] !)",
            )
    return tuple(patterns)


def _exempt_tag(name: str, value: object) -> ExemptTag | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise PolicyError(name, f"must be 'key', 'key=value' or null, got {value!r}")
    return ExemptTag.parse(value)


_FIELDS: dict[str, tuple[str, Any]] = {
    "allowedAlgorithms": ("allowed_algorithms", _algorithms),
    "allowedKmsKeys": ("allowed_kms_keys", _kms_keys),
    "allowCrossAccountKeys": ("allow_cross_account_keys", _bool),
    "requireCustomerManagedKey": ("require_customer_managed_key", _bool),
    "requireBucketKey": ("require_bucket_key", _bool),
    "requireSseCBlocked": ("require_sse_c_blocked", _bool),
    "exemptBuckets": ("exempt_buckets", _globs),
    "exemptTag": ("exempt_tag", _exempt_tag),
    "keyChecks": ("key_checks", _bool),
    "allowOrganizationKeys": ("allow_organization_keys", _bool),
    "exceptions": ("exceptions", parse_exceptions),
}
