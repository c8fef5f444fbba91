"""What reading AWS can fail with, as the domain understands it: the adapters raise these
from the SDK's errors, the assessment and the sweep turn them into findings."""

from __future__ import annotations

from .models import BucketRef


class PolicyError(ValueError):
    """A policy that cannot be enforced; ``field`` names the offending field."""

    def __init__(self, field_name: str, problem: str) -> None:
        super().__init__(f"policy field '{field_name}': {problem}")
        self.field = field_name
        self.problem = problem


class RoleRefused(Exception):
    """STS refused to let the monitor assume its reader role in another account."""

    def __init__(self, account: str, role_arn: str, error_code: str) -> None:
        super().__init__(f"{error_code} on sts:AssumeRole for {role_arn}")
        self.account = account
        self.role_arn = role_arn
        self.error_code = error_code


class BucketVanished(Exception):
    """The bucket was deleted between the event and the read."""


class BucketUnreadable(Exception):
    """S3 refused the read: the monitor cannot tell what the bucket's encryption is."""

    def __init__(self, bucket: BucketRef, permission: str, error_code: str) -> None:
        super().__init__(
            f"{error_code} on {permission} for s3://{bucket.name} in account {bucket.account}"
        )
        self.permission = permission
        self.error_code = error_code


class BucketInactive(Exception):
    """A directory bucket with no request for 90 days is inactive: S3 answers 503 until it has
    reactivated it (S3 User Guide, "Working with directory buckets")."""


class ListingDenied(Exception):
    """S3 refused ``ListBuckets``: nothing can be swept."""
