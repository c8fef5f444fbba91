"""The fix for a drifted bucket: the default encryption configuration that meets the policy.

Pure: from the finding and the policy only. The alert prints it as an ``aws s3api
put-bucket-encryption`` command (``aws s3tables put-table-bucket-encryption`` for a table
bucket); remediation (``apply``) sends the same configuration. A directory bucket keeps one
customer managed key for its lifetime ("you can't override the customer managed key", S3 User
Guide, "Using SSE-KMS in directory buckets"): a fix that changes its key is a new bucket. A vector
bucket's encryption "can't be changed after the vector bucket is created" (S3 User Guide, "Data
protection and encryption in S3 Vectors"): its fix is always a new bucket.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .evaluation import SSE_C, is_arn, normalize_key, rule_violations
from .models import UNUSABLE_KEY_STATES, BucketKind, EncryptionRule, Finding, Status
from .policy import DSSE_KMS, SSE_KMS, SSE_S3, KmsArn, Policy
from .settings import Mode

KEY_PLACEHOLDER = "<YOUR-CUSTOMER-MANAGED-KMS-KEY-ARN>"
# BlockedEncryptionTypes' value for "nothing blocked" (S3 API Reference, BlockedEncryptionTypes).
NOTHING_BLOCKED = "NONE"


@dataclass(frozen=True)
class Fix:
    rule: EncryptionRule
    kind: BucketKind = BucketKind.GENERAL_PURPOSE
    # The configuration cannot be applied to this bucket: a directory bucket's key would change.
    recreate: bool = False

    @property
    def complete(self) -> bool:
        """False when no key the policy allows could be chosen (the placeholder stands in), or
        when only a new bucket can have the configuration."""
        return self.rule.kms_key_id != KEY_PLACEHOLDER and not self.recreate

    @property
    def configuration(self) -> dict[str, Any]:
        """``ServerSideEncryptionConfiguration`` as ``PutBucketEncryption`` takes it, or for a
        table bucket the ``encryptionConfiguration`` of ``PutTableBucketEncryption``."""
        rule = self.rule
        if self.kind is BucketKind.VECTOR:
            # CreateVectorBucket's encryptionConfiguration (botocore s3vectors model).
            vector: dict[str, Any] = {"sseType": rule.algorithm}
            if rule.kms_key_id:
                vector["kmsKeyArn"] = rule.kms_key_id
            return vector
        if self.kind is BucketKind.TABLE:
            table: dict[str, Any] = {"sseAlgorithm": rule.algorithm}
            if rule.kms_key_id:
                table["kmsKeyArn"] = rule.kms_key_id
            return table
        by_default: dict[str, Any] = {"SSEAlgorithm": rule.algorithm}
        if rule.kms_key_id:
            by_default["KMSMasterKeyID"] = rule.kms_key_id
        api_rule: dict[str, Any] = {"ApplyServerSideEncryptionByDefault": by_default}
        if rule.algorithm == SSE_KMS:
            api_rule["BucketKeyEnabled"] = True
        if rule.blocked_encryption_types:
            api_rule["BlockedEncryptionTypes"] = {
                "EncryptionType": list(rule.blocked_encryption_types)
            }
        return {"Rules": [api_rule]}


def plan_fix(finding: Finding, policy: Policy) -> Fix | None:
    """The fix of a DRIFT finding; None for any other status."""
    if finding.status is not Status.DRIFT:
        return None
    rule = _compliant_rule(finding, policy)
    kind = finding.bucket.kind
    current = finding.observed.rules[0] if finding.observed and finding.observed.rules else None
    recreate = kind is BucketKind.VECTOR or (
        kind is BucketKind.DIRECTORY and _changes_key(current, rule, finding)
    )
    return Fix(rule, kind, recreate)


def _changes_key(current: EncryptionRule | None, rule: EncryptionRule, finding: Finding) -> bool:
    """Whether ``rule`` replaces the customer managed key ``current`` uses."""
    if current is None or current.algorithm != SSE_KMS or not current.kms_key_id:
        return False
    if rule.algorithm != SSE_KMS or rule.kms_key_id is None:
        return True
    bucket = finding.bucket
    return normalize_key(rule.kms_key_id, bucket) != normalize_key(current.kms_key_id, bucket)


def _compliant_rule(finding: Finding, policy: Policy) -> EncryptionRule:
    kind = finding.bucket.kind
    current = finding.observed.rules[0] if finding.observed and finding.observed.rules else None
    kept = set(current.blocked_encryption_types or ()) if current else set()
    if policy.require_sse_c_blocked:
        kept.add(SSE_C)
    if SSE_C in kept:
        kept.discard(NOTHING_BLOCKED)  # "NONE" beside a blocked type would contradict it
    # Directory and table buckets have no BlockedEncryptionTypes: they refuse SSE-C anyway.
    blocked = (tuple(sorted(kept)) or None) if kind is BucketKind.GENERAL_PURPOSE else None
    # Only general purpose buckets use S3 Bucket Keys as an option (directory buckets always do).
    bucket_key = kind not in (BucketKind.TABLE, BucketKind.VECTOR)

    algorithm = _preferred_algorithm(current, policy, kind)
    if algorithm == SSE_S3:
        return EncryptionRule(SSE_S3, blocked_encryption_types=blocked)

    keys: list[str | None] = []
    if current and current.kms_key_id:
        # By its ARN: a bare id or alias name would resolve in each uploader's account.
        named = current.kms_key_id
        general = kind is BucketKind.GENERAL_PURPOSE
        keys.append(
            normalize_key(named, finding.bucket) if general and not is_arn(named) else named
        )
    # S3 takes only a key of the bucket's own region.
    keys.extend(key for key in policy.allowed_kms_keys if _region_of(key) == finding.bucket.region)
    if kind is BucketKind.GENERAL_PURPOSE:
        # The AWS managed key, where the policy accepts it; directory and table buckets take
        # only a customer managed key.
        keys.append(None)
    # keyChecks: never a key KMS said is disabled, pending deletion or missing.
    broken = {
        name
        for fact in finding.keys
        if fact.not_found or fact.state in UNUSABLE_KEY_STATES
        for name in (fact.requested, fact.arn)
        if name
    }
    if kind is not BucketKind.GENERAL_PURPOSE:
        # Directory and table buckets take a key's id or ARN, never an alias.
        keys = [key for key in keys if key is not None and not _is_alias(key)]
    for key in keys:
        if key is not None and normalize_key(key, finding.bucket) in broken:
            continue
        candidate = EncryptionRule(algorithm, key, bucket_key and algorithm == SSE_KMS, blocked)
        if not rule_violations(candidate, policy, finding.bucket):
            return candidate
    return EncryptionRule(algorithm, KEY_PLACEHOLDER, bucket_key and algorithm == SSE_KMS, blocked)


def _is_alias(key: str) -> bool:
    return key.startswith("alias/") or ":alias/" in key


def _region_of(key_arn: str) -> str | None:
    parsed = KmsArn.parse(key_arn)
    return None if parsed is None else parsed.region


def _preferred_algorithm(current: EncryptionRule | None, policy: Policy, kind: BucketKind) -> str:
    possible = [a for a in policy.allowed_algorithms if a in kind.algorithms]
    if current and current.algorithm in possible:
        return current.algorithm
    for algorithm in (SSE_KMS, DSSE_KMS, SSE_S3):
        if algorithm in possible:
            return algorithm
    # The policy allows nothing this kind of bucket supports (only DSSE-KMS for a directory
    # bucket): the strongest it does support, and the alert says why it still drifts.
    return SSE_KMS


@dataclass(frozen=True)
class Remediation:
    """What was done about one drift, as the alert and the notice report it."""

    mode: Mode
    configuration: dict[str, Any] | None  # the ServerSideEncryptionConfiguration (would be) sent
    applied: bool = False
    verified: bool = False  # read again after applying, and compliant
    reason: str | None = None  # why nothing was applied, or why it still drifts

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode.value,
            "applied": self.applied,
            "verified": self.verified,
            "configuration": self.configuration,
            "reason": self.reason,
        }
