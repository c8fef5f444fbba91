"""``moto_server`` with two gaps to real S3 closed: ListBuckets paging and default-encryption IAM.

- moto 5.2.5 truncates ListBuckets at MaxBuckets without a ContinuationToken (a paginating client
  would silently miss buckets) and omits BucketRegion (a client would make one GetBucketLocation
  per bucket that real S3 does not need). Here it answers as S3 does: name order, pages, regions.
- When moto enforces IAM (``INITIAL_NO_AUTH_ACTION_COUNT``), it authorizes Get/Put/
  DeleteBucketEncryption as s3:ListBucket / s3:CreateBucket / s3:DeleteBucket. Here they need
  s3:GetEncryptionConfiguration and s3:PutEncryptionConfiguration, as on AWS.

Everything else is moto as released.

Usage: python -m local.moto_server -H 127.0.0.1 -p PORT
"""

from __future__ import annotations

import sys
from typing import Any

from moto.core.common_types import TYPE_RESPONSE
from moto.core.responses import ActionResult
from moto.s3.responses import ACTION_MAP, S3Response
from moto.server import main as moto_main

_OWNER = {"ID": "bcaf1ffd86f41161ca5fb16fd081034f", "DisplayName": "webfile"}


def list_buckets_like_s3(self: Any) -> TYPE_RESPONSE:
    self.data["Action"] = "ListAllMyBuckets"
    self._authenticate_and_authorize_s3_action()
    prefix = self._get_param("prefix")
    token = self._get_param("continuation-token")
    page_size = int(self._get_param("max-buckets") or 0)
    buckets = sorted(
        self.backend.list_buckets(
            prefix=prefix, bucket_region=self._get_param("bucket-region"), max_buckets=None
        ),
        key=lambda bucket: bucket.name,
    )
    if token:
        buckets = [bucket for bucket in buckets if bucket.name > token]
    page = buckets[:page_size] if page_size else buckets
    result: dict[str, Any] = {
        "Owner": _OWNER,
        "Buckets": [
            {
                "Name": bucket.name,
                "CreationDate": bucket.creation_date_ISO8601,
                "BucketRegion": bucket.region_name,
            }
            for bucket in page
        ],
    }
    if len(page) < len(buckets):
        result["ContinuationToken"] = page[-1].name
    if prefix:
        result["Prefix"] = prefix
    self.data["Action"] = "ListBuckets"
    return self.serialized(ActionResult(result))  # type: ignore[no-any-return]


def authorize_encryption_like_s3() -> None:
    bucket_actions = ACTION_MAP["BUCKET"]
    bucket_actions["GET"]["encryption"] = "GetEncryptionConfiguration"
    bucket_actions["PUT"]["encryption"] = "PutEncryptionConfiguration"
    bucket_actions["DELETE"]["encryption"] = "PutEncryptionConfiguration"


if __name__ == "__main__":
    S3Response.all_buckets = list_buckets_like_s3  # type: ignore[method-assign]
    authorize_encryption_like_s3()
    moto_main(sys.argv[1:])
