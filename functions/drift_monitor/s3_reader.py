"""Adapter around the S3 API: reads a bucket's default encryption and tags, and nothing else."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from .models import BucketRef, EncryptionRule, ObservedEncryption

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# Throttling, 5xx and timeouts are retried here with backoff; what still fails after that fails the
# invocation, so Lambda retries the event and finally keeps it in the failure queue.
RETRY_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 5},
    connect_timeout=5,
    read_timeout=10,
)


def sweep_config(concurrency: int) -> Config:
    """For reading many buckets at once: a connection per thread, and backoff that slows the whole
    client down when S3 throttles (adaptive mode) instead of letting each thread retry alone."""
    return RETRY_CONFIG.merge(
        Config(
            retries={"mode": "adaptive", "total_max_attempts": 8},
            max_pool_connections=concurrency,
        )
    )


_NO_CONFIGURATION = "ServerSideEncryptionConfigurationNotFoundError"
_NO_BUCKET = "NoSuchBucket"
_NO_TAGS = "NoSuchTagSet"
_DENIED_CODES = frozenset({"AccessDenied", "AllAccessDisabled", "Forbidden", "403"})
# The largest page S3 serves; accounts over the default quota of 10,000 buckets must paginate.
LIST_PAGE_SIZE = 10_000
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


class S3Reader:
    """Reads bucket state with one S3 client per region, created on first use and then reused.

    Safe to share between threads: boto3 clients are, and creating one is done under a lock
    (a boto3 session is not thread-safe).
    """

    def __init__(
        self,
        session: boto3.Session | None = None,
        config: Config = RETRY_CONFIG,
        home_region: str | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        self._session = session or boto3.Session()
        self._config = config
        self._endpoint_url = endpoint_url
        self._clients: dict[str, S3Client] = {}
        self._lock = threading.Lock()
        self.home_region = home_region or self._session.region_name or "us-east-1"

    def client(self, region: str) -> S3Client:
        client = self._clients.get(region)
        if client is None:
            with self._lock:
                client = self._clients.get(region)
                if client is None:
                    client = self._session.client(
                        "s3",
                        region_name=region,
                        config=self._config,
                        endpoint_url=self._endpoint_url,
                    )
                    self._clients[region] = client
        return client

    def list_buckets(self, page_size: int = LIST_PAGE_SIZE) -> Iterator[ListedBucket]:
        """Every bucket of the account, one page in memory at a time."""
        pages = self.client(self.home_region).get_paginator("list_buckets")
        try:
            for page in pages.paginate(PaginationConfig={"PageSize": page_size}):
                for bucket in page.get("Buckets", []):
                    yield ListedBucket(bucket["Name"], bucket.get("BucketRegion") or None)
        except ClientError as error:
            if _is_denied(error):
                raise ListingDenied(
                    f"{_error_code(error) or '403'} on s3:ListAllMyBuckets: the caller may not "
                    "list this account's buckets"
                ) from error
            raise

    def locate(self, bucket: BucketRef) -> str:
        """The bucket's region, for listings that do not carry it."""
        try:
            response = self.client(self.home_region).get_bucket_location(
                Bucket=bucket.name, ExpectedBucketOwner=bucket.account
            )
        except ClientError as error:
            raise _translate(error, bucket, "s3:GetBucketLocation") from error
        constraint = response.get("LocationConstraint") or ""
        return _LEGACY_LOCATIONS.get(constraint, constraint)

    def read_encryption(self, bucket: BucketRef) -> ObservedEncryption:
        try:
            response = self.client(bucket.region).get_bucket_encryption(
                Bucket=bucket.name, ExpectedBucketOwner=bucket.account
            )
        except ClientError as error:
            if _error_code(error) == _NO_CONFIGURATION:
                return ObservedEncryption(bucket=bucket, rules=())
            raise _translate(error, bucket, "s3:GetEncryptionConfiguration") from error
        configuration = response.get("ServerSideEncryptionConfiguration", {})
        rules = tuple(parse_rule(rule) for rule in configuration.get("Rules", []))
        return ObservedEncryption(bucket=bucket, rules=rules)

    def read_tags(self, bucket: BucketRef) -> dict[str, str]:
        try:
            response = self.client(bucket.region).get_bucket_tagging(
                Bucket=bucket.name, ExpectedBucketOwner=bucket.account
            )
        except ClientError as error:
            if _error_code(error) == _NO_TAGS:
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


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _is_denied(error: ClientError) -> bool:
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return _error_code(error) in _DENIED_CODES or status == 403


def _translate(error: ClientError, bucket: BucketRef, permission: str) -> Exception:
    """The outcome an S3 error stands for; errors with no meaning here are returned unchanged."""
    code = _error_code(error)
    if code == _NO_BUCKET:
        return BucketVanished(f"s3://{bucket.name} no longer exists")
    if _is_denied(error):
        return BucketUnreadable(bucket, permission, code or "403")
    return error
