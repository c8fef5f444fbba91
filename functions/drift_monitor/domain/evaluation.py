"""Pure policy evaluation: no I/O, no AWS calls, no clock."""

from __future__ import annotations

from collections.abc import Mapping

from .models import (
    UNUSABLE_KEY_STATES,
    BucketKind,
    BucketRef,
    Code,
    EncryptionRule,
    Finding,
    KeyFact,
    ObservedEncryption,
    Status,
    Trigger,
    Violation,
    partition_of,
)
from .policy import KMS_ALGORITHMS, SSE_KMS, KmsArn, Policy

AWS_MANAGED_ALIAS = "alias/aws/s3"
SSE_C = "SSE-C"
EXEMPT_BY_NAME = "bucket name matches exemptBuckets"


def normalize_key(key_id: str | None, bucket: BucketRef) -> str:
    """The ARN a rule's ``KMSMasterKeyID`` stands for when the bucket owner uploads, without
    calling KMS.

    S3 resolves a bare key id or alias name in the requester's account and the bucket's region
    (the owner's, for the owner's uploads; ``KMS_KEY_NOT_FULLY_QUALIFIED`` says what happens to
    anyone else's); no key id at all means the AWS managed key ``aws/s3``. An alias stays an
    alias: resolving it to its key would cost a KMS call per event.
    """
    key_id = key_id or AWS_MANAGED_ALIAS
    if is_arn(key_id):
        return key_id
    resource = key_id if key_id.startswith("alias/") else f"key/{key_id}"
    return f"arn:{partition_of(bucket.region)}:kms:{bucket.region}:{bucket.account}:{resource}"


def evaluate(
    observed: ObservedEncryption,
    policy: Policy,
    trigger: Trigger,
    keys: Mapping[str, KeyFact] | None = None,
    organization: frozenset[str] | None = None,
) -> Finding:
    """``keys`` (with ``keyChecks``): what KMS said about each key the rules and the policy
    name, by ``normalize_key``; without it keys are compared as written. ``organization``
    (with ``allowOrganizationKeys``): the accounts of the bucket owner's organization."""
    violations: list[Violation] = []
    if not observed.rules:
        violations.append(
            Violation(
                Code.NO_DEFAULT_ENCRYPTION,
                "The bucket has no default encryption configuration: new objects get no "
                "encryption from a bucket default.",
            )
        )
    for index, rule in enumerate(observed.rules):
        if rule.scope is not None:  # a vector index: "Index NAME: ..."
            prefix = f"{rule.scope[:1].upper()}{rule.scope[1:]}: "
        elif len(observed.rules) > 1:
            prefix = f"Rule {index + 1} of {len(observed.rules)}: "
        else:
            prefix = ""
        for violation in rule_violations(rule, policy, observed.bucket, keys, organization):
            violations.append(Violation(violation.code, prefix + violation.message))

    status = Status.COMPLIANT
    detail = None
    if violations:
        status = Status.DRIFT
        if policy.is_exempt_name(observed.bucket.name):
            status = Status.EXEMPT
            detail = EXEMPT_BY_NAME
    return Finding(
        bucket=observed.bucket,
        status=status,
        observed=observed,
        violations=tuple(violations),
        trigger=trigger,
        detail=detail,
        keys=_facts_of(observed, keys),
    )


def _facts_of(
    observed: ObservedEncryption, keys: Mapping[str, KeyFact] | None
) -> tuple[KeyFact, ...]:
    if not keys:
        return ()
    named = dict.fromkeys(
        normalize_key(rule.kms_key_id, observed.bucket)
        for rule in observed.rules
        if rule.algorithm in KMS_ALGORITHMS
    )
    return tuple(keys[key] for key in named if key in keys)


def rule_violations(
    rule: EncryptionRule,
    policy: Policy,
    bucket: BucketRef,
    keys: Mapping[str, KeyFact] | None = None,
    organization: frozenset[str] | None = None,
) -> list[Violation]:
    found: list[Violation] = []
    general_purpose = bucket.kind is BucketKind.GENERAL_PURPOSE
    if rule.algorithm not in policy.allowed_algorithms:
        found.append(
            Violation(
                Code.ALGORITHM_NOT_ALLOWED,
                f"Default encryption is {_describe_algorithm(rule.algorithm)}; the policy allows "
                f"only {', '.join(policy.allowed_algorithms)}."
                + _unsupported_note(bucket.kind, policy),
            )
        )
    if rule.algorithm in KMS_ALGORITHMS:
        found.extend(_key_violations(rule, policy, bucket, keys or {}, organization or frozenset()))
    # Directory and table buckets refuse SSE-C by design: there is nothing to block.
    if (
        general_purpose
        and policy.require_sse_c_blocked
        and SSE_C not in (rule.blocked_encryption_types or ())
    ):
        found.append(
            Violation(
                Code.SSE_C_NOT_BLOCKED,
                "Uploads with customer-provided keys (SSE-C) are not blocked; the policy requires "
                "BlockedEncryptionTypes to include SSE-C.",
            )
        )
    return found


def _key_violations(
    rule: EncryptionRule,
    policy: Policy,
    bucket: BucketRef,
    keys: Mapping[str, KeyFact],
    organization: frozenset[str],
) -> list[Violation]:
    found: list[Violation] = []
    key = normalize_key(rule.kms_key_id, bucket)
    if (
        bucket.kind is BucketKind.GENERAL_PURPOSE
        and rule.kms_key_id
        and not is_arn(rule.kms_key_id)
    ):
        found.append(
            Violation(
                Code.KMS_KEY_NOT_FULLY_QUALIFIED,
                f"Default encryption names KMS key {rule.kms_key_id!r} by "
                f"{'alias' if rule.kms_key_id.startswith('alias/') else 'key id'}, not by ARN: "
                "S3 resolves it in the account of whoever uploads, so objects other accounts "
                "upload are encrypted with a key of theirs, not the bucket owner's (S3 API "
                f"Reference, ServerSideEncryptionByDefault). Name the key by its ARN ({key}).",
            )
        )
    fact = keys.get(key)
    listed = key in policy.allowed_kms_keys or (
        fact is not None
        and any(
            fact.same_key(keys[allowed]) for allowed in policy.allowed_kms_keys if allowed in keys
        )
    )
    aws_managed = key.endswith(f":{AWS_MANAGED_ALIAS}") or (
        fact is not None and fact.manager == "AWS"
    )
    key_account = (fact.account if fact else None) or key_account_of(key)
    in_organization = policy.allow_organization_keys and key_account in organization

    if policy.allowed_kms_keys and not listed:
        found.append(
            Violation(
                Code.KMS_KEY_NOT_ALLOWED,
                f"Default encryption uses KMS key {key}, which is not in allowedKmsKeys.",
            )
        )
    foreign = key_account != bucket.account and not in_organization
    if foreign and not listed and not policy.allow_cross_account_keys:
        owner = f"account {key_account}" if key_account else "an account that cannot be read"
        found.append(
            Violation(
                Code.KMS_KEY_CROSS_ACCOUNT,
                f"KMS key {key} belongs to {owner}, not to the bucket owner {bucket.account}: "
                "whoever controls that key controls access to this bucket's new objects.",
            )
        )
    if policy.require_customer_managed_key and aws_managed:
        found.append(
            Violation(
                Code.AWS_MANAGED_KEY,
                "Default encryption uses the AWS managed key aws/s3; the policy requires a "
                "customer managed key.",
            )
        )
    if fact is not None and fact.not_found:
        found.append(
            Violation(
                Code.KMS_KEY_NOT_FOUND,
                f"KMS key {key} does not exist: every upload that relies on the bucket's default "
                "encryption fails.",
            )
        )
    elif fact is not None and fact.state in UNUSABLE_KEY_STATES:
        found.append(
            Violation(
                Code.KMS_KEY_UNUSABLE,
                f"KMS key {fact.arn} is {fact.state}: every upload that relies on the bucket's "
                "default encryption fails until the key is usable again.",
            )
        )
    # Only general purpose buckets can turn S3 Bucket Keys off (directory buckets always use
    # them, table buckets have none).
    if (
        policy.require_bucket_key
        and bucket.kind is BucketKind.GENERAL_PURPOSE
        and rule.algorithm == SSE_KMS
        and not rule.bucket_key_enabled
    ):
        found.append(
            Violation(
                Code.BUCKET_KEY_DISABLED,
                "S3 Bucket Keys are disabled for SSE-KMS; the policy requires them (they cut KMS "
                "requests, and their cost, for this bucket).",
            )
        )
    return found


def key_in_use(finding: Finding) -> str | None:
    """The KMS key that encrypts the bucket's new objects by default: the first KMS rule's, by
    the ARN KMS gave it (``keyChecks``; an alias resolved to its key) or as the rule names it."""
    if finding.observed is None:
        return None
    for rule in finding.observed.rules:
        if rule.algorithm in KMS_ALGORITHMS:
            key = normalize_key(rule.kms_key_id, finding.bucket)
            fact = next((fact for fact in finding.keys if fact.requested == key), None)
            return fact.arn if fact is not None and fact.arn else key
    return None


def is_arn(key_id: str) -> bool:
    return key_id.startswith("arn:")


def names_foreign_key(observed: ObservedEncryption) -> bool:
    """Whether any rule names a key owned by an account other than the bucket's."""
    bucket = observed.bucket
    return any(
        key_account_of(normalize_key(rule.kms_key_id, bucket)) != bucket.account
        for rule in observed.rules
        if rule.algorithm in KMS_ALGORITHMS
    )


def key_account_of(key_arn: str) -> str | None:
    parsed = KmsArn.parse(key_arn)
    if parsed is not None:
        return parsed.account
    parts = key_arn.split(":")
    return parts[4] if len(parts) > 5 and parts[4] else None


def _unsupported_note(kind: BucketKind, policy: Policy) -> str:
    """Said when no algorithm the policy allows can be set on this kind of bucket at all."""
    if kind.algorithms & set(policy.allowed_algorithms):
        return ""
    return (
        f" A {kind.label} supports only {', '.join(sorted(kind.algorithms))}: exempt it "
        "(exemptBuckets) or allow one of them."
    )


def _describe_algorithm(algorithm: str) -> str:
    names = {
        "AES256": "AES256 (SSE-S3)",
        "aws:kms": "aws:kms (SSE-KMS)",
        "aws:kms:dsse": "aws:kms:dsse (DSSE-KMS)",
    }
    return names.get(algorithm, algorithm)
