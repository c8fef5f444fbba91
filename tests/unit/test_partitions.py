"""Every ARN in the deployment's partition, and region names as botocore's data knows them."""

from __future__ import annotations

import boto3
import pytest

from functions.drift_monitor.aws.credentials import AccountAccess
from functions.drift_monitor.domain.asff import product_arn
from functions.drift_monitor.domain.evaluation import normalize_key
from functions.drift_monitor.domain.models import (
    BucketKind,
    BucketRef,
    is_region_name,
    partition_of,
)

ACCOUNT = "123456789012"


@pytest.mark.parametrize(
    ("region", "partition"),
    [
        ("eu-west-1", "aws"),
        ("il-central-1", "aws"),
        ("cn-north-1", "aws-cn"),
        ("us-gov-west-1", "aws-us-gov"),
        ("eusc-de-east-1", "aws-eusc"),
        ("us-iso-east-1", "aws-iso"),
        ("us-isob-east-1", "aws-iso-b"),
        ("eu-isoe-west-1", "aws-iso-e"),
    ],
)
def test_the_partition_comes_from_botocore_s_data(region: str, partition: str) -> None:
    assert partition_of(region) == partition
    bucket = BucketRef("ledger", ACCOUNT, region)
    directory = BucketRef("ml--az1--x-s3", ACCOUNT, region, BucketKind.DIRECTORY)
    assert bucket.arn == f"arn:{partition}:s3:::ledger"
    assert directory.arn.startswith(f"arn:{partition}:s3express:{region}:")
    assert normalize_key("alias/x", bucket) == f"arn:{partition}:kms:{region}:{ACCOUNT}:alias/x"
    assert product_arn(region, ACCOUNT).startswith(f"arn:{partition}:securityhub:{region}:")
    access = AccountAccess(boto3.Session(region_name=region), role_name="Reader")
    assert access.role_arn("222233334444") == f"arn:{partition}:iam::222233334444:role/Reader"


@pytest.mark.parametrize("text", ["Europe", "eu-west", "aws-global", "moon-base-1", ""])
def test_what_no_partition_names_is_no_region(text: str) -> None:
    assert not is_region_name(text)
