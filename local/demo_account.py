"""A small account for the scanner to find things in: a bucket for each verdict it can give.

Used by ``make scan`` when no AWS credentials are configured, with ``local/demo-policy.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .emulator import Emulator

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

DEMO_POLICY = Path(__file__).resolve().parent / "demo-policy.json"
# By ARN: a bare alias name would resolve in each uploader's account (KMS_KEY_NOT_FULLY_QUALIFIED).
APPROVED_KEY = "arn:aws:kms:eu-west-1:123456789012:alias/demo-data"
# The same alias name in another region is another key, which the demo policy does not list.
US_KEY = "arn:aws:kms:us-east-1:123456789012:alias/demo-data"
FOREIGN_KEY = "arn:aws:kms:eu-west-1:999988887777:key/1a2b3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d"
EXEMPT_TAG = {"encryption-monitor:exempt": "true"}


@dataclass(frozen=True)
class DemoBucket:
    name: str
    region: str = "eu-west-1"
    algorithm: str | None = None  # None: no default encryption configuration (moto's default)
    key: str | None = None
    bucket_key: bool = False
    tags: dict[str, str] | None = None
    # SSE-C blocked, as S3 sets up every new bucket since April 2026.
    sse_c_blocked: bool = True


DEMO_BUCKETS = (
    DemoBucket("payments-ledger", algorithm="aws:kms", key=APPROVED_KEY, bucket_key=True),
    DemoBucket("ml-training-data", algorithm="aws:kms:dsse", key=APPROVED_KEY),
    DemoBucket("invoices-us", region="us-east-1", algorithm="aws:kms", key=US_KEY, bucket_key=True),
    DemoBucket("analytics-raw"),
    DemoBucket("marketing-assets", algorithm="AES256"),
    DemoBucket("partner-exchange", algorithm="aws:kms", key=FOREIGN_KEY, bucket_key=True),
    DemoBucket("app-logs", algorithm="aws:kms", key=APPROVED_KEY),
    DemoBucket("legacy-reports", region="us-west-2", algorithm="aws:kms", bucket_key=True),
    DemoBucket("sandbox-alice", algorithm="AES256"),
    DemoBucket("build-cache", algorithm="AES256", tags=EXEMPT_TAG),
)


def populate(emulator: Emulator, buckets: tuple[DemoBucket, ...] = DEMO_BUCKETS) -> None:
    """Creates the buckets on the emulator, each in its region, as an account owner would."""
    for bucket in buckets:
        s3: S3Client = emulator.client("s3", bucket.region)
        create: dict[str, Any] = {"Bucket": bucket.name}
        if bucket.region != "us-east-1":
            create["CreateBucketConfiguration"] = {"LocationConstraint": bucket.region}
        s3.create_bucket(**create)
        if bucket.algorithm:
            by_default: dict[str, Any] = {"SSEAlgorithm": bucket.algorithm}
            if bucket.key:
                by_default["KMSMasterKeyID"] = bucket.key
            rule: Any = {
                "ApplyServerSideEncryptionByDefault": by_default,
                "BucketKeyEnabled": bucket.bucket_key,
            }
            if bucket.sse_c_blocked:
                rule["BlockedEncryptionTypes"] = {"EncryptionType": ["SSE-C"]}
            s3.put_bucket_encryption(
                Bucket=bucket.name, ServerSideEncryptionConfiguration={"Rules": [rule]}
            )
        if bucket.tags:
            s3.put_bucket_tagging(
                Bucket=bucket.name,
                Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in bucket.tags.items()]},
            )
