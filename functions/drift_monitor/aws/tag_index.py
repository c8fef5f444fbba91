"""The buckets of one account that carry the exempt tag, found in bulk for a sweep.

The event path reads a drifting bucket's tags with ``GetBucketTagging`` (freshness matters there).
A sweep asks the Resource Groups Tagging API instead: one ``GetResources`` per region returns, a
hundred at a time, every bucket with the tag, so a drifting bucket costs no extra S3 call.
"""

from __future__ import annotations

import threading
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..domain.errors import RoleRefused
from ..domain.models import BucketRef
from ..domain.policy import ExemptTag, Policy
from .credentials import RETRY_CONFIG, AccountAccess

_BUCKET_ARN_PREFIX = ":s3:::"


class ExemptIndex:
    """Answers "is this bucket tagged exempt?" from one tag lookup per region, made on first use.

    A region whose lookup fails (no ``tag:GetResources`` permission, a region not enabled, the API
    failing after retries) answers None, and the caller reads that bucket's own tags instead.
    """

    def __init__(self, access: AccountAccess, account: str, tag: ExemptTag) -> None:
        self._access = access
        self._account = account
        self._tag = tag
        self._lock = threading.Lock()
        self._regions: dict[str, dict[str, dict[str, str]] | None] = {}
        self.lookups = 0  # GetResources calls made: one per region and page of tagged buckets

    def exempt_tags_of(self, bucket: BucketRef) -> dict[str, str] | None:
        """The tags of a bucket tagged exempt (its companion tags included), {} for a bucket
        that is not, None when the region's lookup failed."""
        tagged = self._tagged_in(bucket.region)
        return None if tagged is None else tagged.get(bucket.name, {})

    def _tagged_in(self, region: str) -> dict[str, dict[str, str]] | None:
        if region in self._regions:
            return self._regions[region]
        with self._lock:
            if region not in self._regions:
                self._regions[region] = self._lookup(region)
            return self._regions[region]

    def _lookup(self, region: str) -> dict[str, dict[str, str]] | None:
        tag_filter: dict[str, Any] = {"Key": self._tag.key}
        if self._tag.value is not None:
            tag_filter["Values"] = [self._tag.value]
        tagged: dict[str, dict[str, str]] = {}
        try:
            client = self._access.client(
                "resourcegroupstaggingapi", region, self._account, RETRY_CONFIG
            )
            token = ""
            while True:
                self.lookups += 1
                response = client.get_resources(
                    ResourceTypeFilters=["s3:bucket"],
                    TagFilters=[tag_filter],
                    ResourcesPerPage=100,
                    PaginationToken=token,
                )
                for resource in response.get("ResourceTagMappingList", []):
                    arn = str(resource.get("ResourceARN", ""))
                    if _BUCKET_ARN_PREFIX in arn:
                        # GetResources returns each resource's tags: the companions come along.
                        tagged[arn.split(_BUCKET_ARN_PREFIX, 1)[1]] = {
                            str(tag["Key"]): str(tag.get("Value", ""))
                            for tag in resource.get("Tags", [])
                        }
                token = response.get("PaginationToken") or ""
                if not token:
                    return tagged
        except (ClientError, BotoCoreError, RoleRefused):
            return None


def exempt_index(access: AccountAccess, account: str, policy: Policy) -> ExemptIndex | None:
    """The index a sweep of ``account`` uses, or None when the policy exempts by no tag."""
    if policy.exempt_tag is None:
        return None
    return ExemptIndex(access, account, policy.exempt_tag)
