"""Remediation (SPEC §12): put the fix command's configuration back, when asked and when safe.

``off`` does nothing; ``dry-run`` says in the alert exactly what it would apply; ``apply`` sends
``PutBucketEncryption`` (with ``ExpectedBucketOwner``; ``PutTableBucketEncryption`` for a
table bucket) only for a DRIFT finding (so never an
exempt or unreadable bucket) whose fix is complete (a key the policy allows was found), within
``remediationLimitPerHour``, then reads the bucket again. A refusal is reported, never retried:
the next change to the bucket is the next chance.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from ..domain.errors import RoleRefused
from ..domain.fix import Remediation, plan_fix
from ..domain.models import BucketKind, Finding, Status
from ..domain.permissions import WRITE_ENCRYPTION
from ..domain.policy import SSE_KMS, Policy
from ..domain.settings import Mode
from .credentials import error_code, is_denied


class BucketWriter(Protocol):
    def put_encryption(self, finding: Finding, configuration: dict[str, Any]) -> None: ...


class HourlyLimit(Protocol):
    def take(self, hour: str, limit: int) -> bool: ...


class Remediator:
    def __init__(
        self,
        mode: Mode,
        *,
        limit_per_hour: int,
        policy: Policy,
        writer: BucketWriter,
        limit: HourlyLimit,
        reassess: Callable[[Finding], Finding],
    ) -> None:
        self._mode = mode
        self._limit_per_hour = limit_per_hour
        self._policy = policy
        self._writer = writer
        self._limit = limit
        self._reassess = reassess

    def attempt(self, finding: Finding, now: datetime) -> tuple[Finding, Remediation | None]:
        """The finding to report (read again after a fix) and what was done; None when the
        finding is not a drift or remediation is off."""
        fix = plan_fix(finding, self._policy)
        if self._mode is Mode.OFF or fix is None or finding.status is not Status.DRIFT:
            return finding, None
        configuration = fix.configuration
        if fix.recreate:
            return finding, Remediation(
                self._mode,
                None,
                reason=(
                    "a vector bucket's encryption is fixed when it is created: only a new bucket "
                    "can have what the policy allows (see the fix)"
                    if finding.bucket.kind is BucketKind.VECTOR
                    else "a directory bucket keeps its KMS key for its lifetime: only a new "
                    "bucket can have the key the policy allows (see the fix)"
                ),
            )
        if not fix.complete:
            return finding, Remediation(
                self._mode,
                None,
                reason="no key the policy allows in the bucket's region: a person must choose "
                "one (see the fix command)",
            )
        if self._mode is Mode.DRY_RUN:
            return finding, Remediation(
                self._mode, configuration, reason="dry-run: this configuration was not applied"
            )
        if finding.bucket.kind is BucketKind.TABLE and fix.rule.algorithm == SSE_KMS:
            # S3 Tables' maintenance stops, without an error, when its principal may not use the
            # key (S3 User Guide, "Using SSE-KMS in table buckets"): a person checks the key
            # policy first.
            return finding, Remediation(
                self._mode,
                configuration,
                reason="table buckets are not switched to SSE-KMS automatically: the key policy "
                "must first allow the S3 Tables maintenance principal "
                "(maintenance.s3tables.amazonaws.com); apply the fix after checking it",
            )
        if not self._limit.take(now.strftime("%Y-%m-%dT%H"), self._limit_per_hour):
            return finding, Remediation(
                self._mode,
                configuration,
                reason=f"remediationLimitPerHour ({self._limit_per_hour}) reached this hour: "
                "not applied",
            )
        action = WRITE_ENCRYPTION[finding.bucket.kind]
        # Whatever the write's error, the drift is still announced: the alert says why.
        try:
            self._writer.put_encryption(finding, configuration)
        except RoleRefused as refused:
            return finding, Remediation(self._mode, configuration, reason=str(refused))
        except ClientError as error:
            if is_denied(error):
                reason = (
                    f"{error_code(error)} on {action}: an SCP, a Control Tower guardrail, a "
                    "permissions boundary, the bucket policy or the key policy denies it, or the "
                    "monitor may only read this account"
                )
            else:
                message = error.response.get("Error", {}).get("Message") or "no message"
                reason = f"{error_code(error) or 'error'} on {action}: {message}"
            return finding, Remediation(self._mode, configuration, reason=reason)
        except BotoCoreError as error:
            reason = f"{type(error).__name__} on {action}: {error}"
            return finding, Remediation(self._mode, configuration, reason=reason)
        after = self._reassess(finding)
        verified = after.status is Status.COMPLIANT
        return after, Remediation(
            self._mode,
            configuration,
            applied=True,
            verified=verified,
            reason=None if verified else f"applied, but read again it is {after.status.value}",
        )
