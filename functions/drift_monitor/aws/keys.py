"""The truth about a bucket's key (``keyChecks``): ``DescribeKey``, remembered for a while.

Each key is described once per container and ``CACHE_SECONDS`` (a sweep pays once per key), in
the bucket's account (through its reader role) and the key's region. A key that may not be
described, typical of another account's key, is "unknown", never a violation.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from botocore.exceptions import ClientError

from ..domain.clock import Remembered
from ..domain.errors import RoleRefused
from ..domain.evaluation import AWS_MANAGED_ALIAS, normalize_key
from ..domain.models import BucketRef, EncryptionRule, KeyFact
from ..domain.policy import KMS_ALGORITHMS, KmsArn, Policy
from .credentials import AccountAccess, error_code, is_denied

# Long enough that a sweep or a burst of events pays once per key, short enough that a key
# disabled since is seen by the next evaluation a quarter of an hour later.
CACHE_SECONDS = 900


class KeyDirectory:
    def __init__(self, access: AccountAccess, clock: Callable[[], float] = time.monotonic) -> None:
        self._access = access
        self._facts: Remembered[KeyFact] = Remembered(CACHE_SECONDS, clock)

    def facts(
        self, bucket: BucketRef, rules: Iterable[EncryptionRule], policy: Policy
    ) -> dict[str, KeyFact]:
        """What KMS says about the keys ``rules`` name and, to compare with them, the keys the
        policy lists; by ``normalize_key``. Empty when no rule uses KMS."""
        named = {
            normalize_key(rule.kms_key_id, bucket)
            for rule in rules
            if rule.algorithm in KMS_ALGORITHMS
        }
        if not named:
            return {}
        wanted = named | set(policy.allowed_kms_keys)
        return {key: self.describe(key, bucket) for key in sorted(wanted)}

    def forget(self, key_arn: str) -> None:
        """A KMS event changed ``key_arn``: what was remembered of it (by any name) is stale."""
        self._facts.forget(lambda _, fact: key_arn in (fact.requested, fact.arn))

    def describe(self, key: str, bucket: BucketRef) -> KeyFact:
        return self._facts.get((bucket.account, key), lambda: self._describe(key, bucket))

    def _describe(self, key: str, bucket: BucketRef) -> KeyFact:
        parsed = KmsArn.parse(key)
        region = parsed.region if parsed else bucket.region
        try:
            kms = self._access.client("kms", region, bucket.account)
            metadata = kms.describe_key(KeyId=key)["KeyMetadata"]
        except RoleRefused as refused:
            return KeyFact(key, unknown_because=f"{refused.error_code} on sts:AssumeRole")
        except ClientError as error:
            code = error_code(error)
            if code == "NotFoundException":
                if key.endswith(f":{AWS_MANAGED_ALIAS}"):
                    # KMS creates aws/s3 in an account the first time S3 needs it.
                    return KeyFact(key, manager="AWS", unknown_because="not created yet")
                return KeyFact(key, not_found=True)
            if is_denied(error):
                return KeyFact(key, unknown_because=f"{code or 'AccessDenied'} on kms:DescribeKey")
            raise
        return KeyFact(
            requested=key,
            arn=metadata["Arn"],
            key_id=metadata["KeyId"],
            account=metadata["AWSAccountId"],
            manager=metadata.get("KeyManager"),
            state=metadata.get("KeyState"),
            multi_region=bool(metadata.get("MultiRegion")),
        )
