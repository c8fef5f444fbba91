"""Adapter around the S3 API: reads a bucket's default encryption and tags, and nothing else."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.config import Config
from botocore.exceptions import ClientError

from .credentials import RETRY_CONFIG, AccountAccess, error_code, is_denied
from .models import BucketRef, EncryptionRule, Finding, ObservedEncryption
from .settings import LIST_PAGE_SIZE

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_NO_CONFIGURATION = "ServerSideEncryptionConfigurationNotFoundError"
_NO_BUCKET = "NoSuchBucket"
_NO_TAGS = "NoSuchTagSet"
# GetBucketLocation's legacy answers: no constraint is us-east-1, "EU" is eu-west-1.
_LEGACY_LOCATIONS = {"": "us-east-1", "EU": "eu-west-1"}


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


class ListingDenied(Exception):
    """S3 refused ``ListBuckets``: nothing can be swept."""


@dataclass(frozen=True)
class ListedBucket:
    name: str
    region: str | None  # None when the listing did not say (S3 before 2024, some emulators)


@dataclass(frozen=True)
class ListingPage:
    buckets: tuple[ListedBucket, ...]
    next_token: str | None  # None on the last page


class S3Reader:
    """Reads bucket state with one S3 client per account and region, created on first use and then
    reused (``AccountAccess`` decides whose credentials sign the calls)."""

    def __init__(self, access: AccountAccess, config: Config = RETRY_CONFIG) -> None:
        self.access = access
        self._config = config

    @property
    def home_region(self) -> str:
        return self.access.home_region

    def client(self, region: str, account: str | None = None) -> S3Client:
        client: S3Client = self.access.client("s3", region, account, self._config)
        return client

    def list_page(
        self, account: str | None = None, token: str | None = None, page_size: int = LIST_PAGE_SIZE
    ) -> ListingPage:
        """One page of the account's buckets, in name order, and the token of the next page."""
        request: dict[str, Any] = {"MaxBuckets": page_size}
        if token:
            request["ContinuationToken"] = token
        try:
            response = self.client(self.home_region, account).list_buckets(**request)
        except ClientError as error:
            if is_denied(error):
                raise ListingDenied(
                    f"{error_code(error) or '403'} on s3:ListAllMyBuckets: the caller may not "
                    "list this account's buckets"
                ) from error
            raise
        return ListingPage(
            buckets=tuple(
                ListedBucket(bucket["Name"], bucket.get("BucketRegion") or None)
                for bucket in response.get("Buckets", [])
            ),
            next_token=response.get("ContinuationToken") or None,
        )

    def list_buckets(
        self, account: str | None = None, page_size: int = LIST_PAGE_SIZE
    ) -> Iterator[ListedBucket]:
        """Every bucket of the account, one page in memory at a time."""
        token: str | None = None
        while True:
            page = self.list_page(account, token, page_size)
            yield from page.buckets
            if page.next_token is None:
                return
            token = page.next_token

    def locate(self, bucket: BucketRef) -> str:
        """The bucket's region, for listings that do not carry it."""
        try:
            response = self.client(self.home_region, bucket.account).get_bucket_location(
                Bucket=bucket.name, ExpectedBucketOwner=bucket.account
            )
        except ClientError as error:
            raise _translate(error, bucket, "s3:GetBucketLocation") from error
        constraint = response.get("LocationConstraint") or ""
        return _LEGACY_LOCATIONS.get(constraint, constraint)

    def read_encryption(self, bucket: BucketRef) -> ObservedEncryption:
        try:
            response = self.client(bucket.region, bucket.account).get_bucket_encryption(
                Bucket=bucket.name, ExpectedBucketOwner=bucket.account
            )
        except ClientError as error:
            if error_code(error) == _NO_CONFIGURATION:
                return ObservedEncryption(bucket=bucket, rules=())
            raise _translate(error, bucket, "s3:GetEncryptionConfiguration") from error
        configuration = response.get("ServerSideEncryptionConfiguration", {})
        rules = tuple(parse_rule(rule) for rule in configuration.get("Rules", []))
        return ObservedEncryption(bucket=bucket, rules=rules)

    def read_tags(self, bucket: BucketRef) -> dict[str, str]:
        try:
            response = self.client(bucket.region, bucket.account).get_bucket_tagging(
                Bucket=bucket.name, ExpectedBucketOwner=bucket.account
            )
        except ClientError as error:
            if error_code(error) == _NO_TAGS:
                return {}
            raise _translate(error, bucket, "s3:GetBucketTagging") from error
        return {tag["Key"]: tag["Value"] for tag in response.get("TagSet", [])}


def parse_rule(rule: Mapping[str, Any]) -> EncryptionRule:
    default = rule.get("ApplyServerSideEncryptionByDefault") or {}
    blocked = rule.get("BlockedEncryptionTypes")
    return EncryptionRule(
        # Object-level values such as aws:fsx are kept as they are: the policy judges them.
        algorithm=str(default.get("SSEAlgorithm", "")),
        kms_key_id=default.get("KMSMasterKeyID") or None,
        bucket_key_enabled=bool(rule.get("BucketKeyEnabled", False)),
        blocked_encryption_types=(
            None if blocked is None else tuple(blocked.get("EncryptionType", []))
        ),
    )


def _translate(error: ClientError, bucket: BucketRef, permission: str) -> Exception:
    """The outcome an S3 error stands for; errors with no meaning here are returned unchanged."""
    code = error_code(error)
    if code == _NO_BUCKET:
        return BucketVanished(f"s3://{bucket.name} no longer exists")
    if is_denied(error):
        return BucketUnreadable(bucket, permission, code or "403")
    return error


class EncryptionWriter:
    """Remediation's one write: ``PutBucketEncryption``, in the bucket's account and region."""

    def __init__(self, reader: S3Reader) -> None:
        self._reader = reader

    def put_encryption(self, finding: Finding, configuration: dict[str, Any]) -> None:
        bucket = finding.bucket
        self._reader.client(bucket.region, bucket.account).put_bucket_encryption(
            Bucket=bucket.name,
            ExpectedBucketOwner=bucket.account,
            ServerSideEncryptionConfiguration=configuration,  # type: ignore[arg-type]
        )
