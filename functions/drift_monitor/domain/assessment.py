"""One bucket, one verdict: read the state, evaluate it, consult tags only when it would alert."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Protocol

from .errors import BucketInactive, BucketUnreadable, BucketVanished, RoleRefused
from .evaluation import EXEMPT_BY_NAME, evaluate, names_foreign_key
from .exceptions import apply_exceptions, tag_exemption
from .heartbeat import BEAT, is_heartbeat
from .models import (
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
)
from .policy import ExemptTag, Policy


class BucketReader(Protocol):
    """What ``assess`` needs of S3 (``S3Reader`` in production)."""

    def read_encryption(self, bucket: BucketRef) -> ObservedEncryption: ...

    def read_tags(self, bucket: BucketRef) -> dict[str, str]: ...


class KeyFacts(Protocol):
    """What KMS says about the keys of a bucket's rules (``KeyDirectory`` in production)."""

    def facts(
        self, bucket: BucketRef, rules: Iterable[EncryptionRule], policy: Policy
    ) -> dict[str, KeyFact]: ...


class OrganizationAccounts(Protocol):
    """The accounts of the bucket owner's organization (``OrganizationDirectory``)."""

    def accounts(self) -> frozenset[str] | None: ...


class ExemptTags(Protocol):
    """Tag exemptions known in bulk (``ExemptIndex`` in a sweep): the tags of a bucket that
    carries the exempt tag, {} for one that does not, None when unknown for that bucket."""

    def exempt_tags_of(self, bucket: BucketRef) -> dict[str, str] | None: ...


def assess(
    bucket: BucketRef,
    trigger: Trigger,
    policy: Policy,
    reader: BucketReader,
    *,
    exempt_tags: ExemptTags | None = None,
    keys: KeyFacts | None = None,
    organization: OrganizationAccounts | None = None,
    today: date | None = None,
) -> Finding:
    """``keys`` is asked only when the policy turns ``keyChecks`` on; ``organization`` only with
    ``allowOrganizationKeys``, when a rule names another account's key. ``today`` (UTC by
    default) decides which exceptions are still in force."""
    finding = _judge(bucket, trigger, policy, reader, keys=keys, organization=organization)
    if finding.status is Status.VANISHED or not finding.alerts:
        return finding
    day = today or datetime.now(UTC).date()
    finding = apply_exceptions(finding, policy.exceptions, day)
    # exemptTag exempts general purpose buckets only: other kinds' tags are not read (§12).
    if (
        not finding.alerts
        or policy.exempt_tag is None
        or bucket.kind is not BucketKind.GENERAL_PURPOSE
    ):
        return finding
    return _apply_exempt_tag(finding, policy.exempt_tag, reader, exempt_tags, day)


def _judge(
    bucket: BucketRef,
    trigger: Trigger,
    policy: Policy,
    reader: BucketReader,
    *,
    keys: KeyFacts | None,
    organization: OrganizationAccounts | None,
) -> Finding:
    if is_heartbeat(bucket):
        return _without_state(bucket, trigger, Status.EXEMPT, BEAT)
    try:
        observed = reader.read_encryption(bucket)
        facts = keys.facts(bucket, observed.rules, policy) if keys and policy.key_checks else None
        accounts = None
        if organization and policy.allow_organization_keys and names_foreign_key(observed):
            accounts = organization.accounts()
        finding = evaluate(observed, policy, trigger, facts, accounts)
    except BucketVanished as vanished:
        return _without_state(bucket, trigger, Status.VANISHED, str(vanished))
    except BucketUnreadable as denied:
        finding = unverifiable(bucket, trigger, denied)
        if policy.is_exempt_name(bucket.name):
            return replace(finding, status=Status.EXEMPT, detail=EXEMPT_BY_NAME)
    except RoleRefused as refused:
        finding = role_refused(bucket, trigger, refused)
        if policy.is_exempt_name(bucket.name):
            return replace(finding, status=Status.EXEMPT, detail=EXEMPT_BY_NAME)
    except BucketInactive as inactive:
        finding = inactive_bucket(bucket, trigger, inactive)
        if policy.is_exempt_name(bucket.name):
            return replace(finding, status=Status.EXEMPT, detail=EXEMPT_BY_NAME)
    return finding


def unverifiable(bucket: BucketRef, trigger: Trigger, denied: BucketUnreadable) -> Finding:
    message = (
        f"The monitor could not read this bucket's encryption: {denied.error_code} on "
        f"{denied.permission}. Check that the monitor's role allows {denied.permission} on "
        f"{bucket.arn}, and that no bucket policy, SCP or permissions boundary "
        f"denies it, and that account {bucket.account} still owns the bucket."
    )
    return _unknown(bucket, trigger, Violation(Code.ACCESS_DENIED, message), str(denied))


def role_refused(bucket: BucketRef, trigger: Trigger, refused: RoleRefused) -> Finding:
    """The reader role of the bucket's account could not be assumed: unknown, not unencrypted."""
    message = (
        f"The monitor could not assume its reader role {refused.role_arn} in account "
        f"{refused.account} ({refused.error_code}), so it could not read this bucket. Check that "
        "the role exists there (the member StackSet deploys it), that its trust policy names the "
        "monitor's function roles, and that no SCP denies sts:AssumeRole."
    )
    return _unknown(bucket, trigger, Violation(Code.ACCESS_DENIED, message), str(refused))


def inactive_bucket(bucket: BucketRef, trigger: Trigger, inactive: BucketInactive) -> Finding:
    """A directory bucket S3 made inactive after 90 days without requests: unknown, not broken."""
    message = (
        f"S3 answered 503 for this directory bucket ({inactive}): a directory bucket with no "
        "request for 90 days becomes inactive and answers 503 until S3 has reactivated it (S3 "
        "User Guide, 'Working with directory buckets'). Its encryption is unknown until then; "
        "the next sweep or change reads it again."
    )
    return _unknown(bucket, trigger, Violation(Code.BUCKET_INACTIVE, message), str(inactive))


def unreadable(bucket: BucketRef, trigger: Trigger, reason: str, detail: str) -> Finding:
    """A read that kept failing (throttling, 5xx, timeouts) after every retry of the client:
    ``reason`` is S3's error code or the kind of failure, ``detail`` the whole error."""
    message = (
        f"S3 kept failing to answer for this bucket after every retry ({reason}); "
        "its encryption is unknown until the next sweep or scan."
    )
    return _unknown(bucket, trigger, Violation(Code.READ_FAILED, message), detail)


def _unknown(bucket: BucketRef, trigger: Trigger, why: Violation, detail: str) -> Finding:
    return Finding(bucket, Status.UNVERIFIABLE, None, (why,), trigger, detail=detail)


def _apply_exempt_tag(
    finding: Finding,
    exempt_tag: ExemptTag,
    reader: BucketReader,
    exempt_tags: ExemptTags | None,
    today: date,
) -> Finding:
    tags = None if exempt_tags is None else exempt_tags.exempt_tags_of(finding.bucket)
    if tags is None:
        try:
            tags = reader.read_tags(finding.bucket)
        except BucketVanished as vanished:
            return _without_state(finding.bucket, finding.trigger, Status.VANISHED, str(vanished))
        except (BucketUnreadable, RoleRefused):
            # Without the tags the exemption cannot be confirmed: alert rather than stay silent.
            return finding
    if not exempt_tag.matches(tags):
        return finding
    exemption = tag_exemption(exempt_tag.key, tags, today)
    if exemption.expired:
        # The companion -until tag has passed (or is not a date): the bucket alerts again.
        return replace(finding, exemption=exemption)
    detail = f"bucket tagged {exempt_tag}"
    if exemption.expires:
        detail += f" until {exemption.expires}"
    return replace(finding, status=Status.EXEMPT, exemption=exemption, detail=detail)


def _without_state(bucket: BucketRef, trigger: Trigger, status: Status, detail: str) -> Finding:
    return Finding(
        bucket=bucket, status=status, observed=None, violations=(), trigger=trigger, detail=detail
    )
