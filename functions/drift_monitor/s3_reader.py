"""Adapter around the S3 API: reads a bucket's default encryption and tags, and nothing else."""

from __future__ import annotations

from collections.abc import Mapping
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

_NO_CONFIGURATION = "ServerSideEncryptionConfigurationNotFoundError"
_NO_BUCKET = "NoSuchBucket"
_NO_TAGS = "NoSuchTagSet"
_DENIED_CODES = frozenset({"AccessDenied", "AllAccessDisabled", "Forbidden", "403"})


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


class S3Reader:
    """Reads bucket state with one S3 client per region, created on first use and then reused."""

    def __init__(self, session: boto3.Session | None = None, config: Config = RETRY_CONFIG) -> None:
        self._session = session or boto3.Session()
        self._config = config
        self._clients: dict[str, S3Client] = {}

    def client(self, region: str) -> S3Client:
        client = self._clients.get(region)
        if client is None:
            client = self._session.client("s3", region_name=region, config=self._config)
            self._clients[region] = client
        return client

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


def _translate(error: ClientError, bucket: BucketRef, permission: str) -> Exception:
    """The outcome an S3 error stands for; errors with no meaning here are returned unchanged."""
    code = _error_code(error)
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code == _NO_BUCKET:
        return BucketVanished(f"s3://{bucket.name} no longer exists")
    if code in _DENIED_CODES or status == 403:
        return BucketUnreadable(bucket, permission, code or "403")
    return error
