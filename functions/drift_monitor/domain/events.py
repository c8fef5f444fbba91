"""The edge: turns an EventBridge-delivered CloudTrail event into a typed ``BucketChange``.

Only the bucket's identity and the change's provenance are taken from the event. The request's
own encryption parameters are never trusted: the bucket's state is always read again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .models import (
    ACCOUNT_ID,
    BUCKET_NAME,
    DIRECTORY_BUCKET_SUFFIX,
    BucketKind,
    BucketRef,
    Trigger,
    is_region_name,
    partition_of,
)

# S3 Tables: 3-63 lowercase letters, digits and hyphens; its ARN names the account and region.
_TABLE_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_TABLE_BUCKET_ARN = re.compile(
    r"^arn:aws[a-z-]*:s3tables:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):bucket/(?P<name>[^/]+)$"
)
# S3 Control's tagging calls name the resource by ARN: a general purpose bucket
# (arn:<partition>:s3:::<name>) or a directory bucket (arn:<partition>:s3express:...:bucket/<name>);
# access points, Storage Lens groups and Access Grants are tagged the same way (s3control model,
# TagResource).
TAG_RESOURCE_EVENTS = ("TagResource", "UntagResource")
_GENERAL_PURPOSE_ARN = re.compile(r"^arn:aws[a-z-]*:s3:::(?P<name>[^/]+)$")
_DIRECTORY_BUCKET_ARN = re.compile(
    r"^arn:aws[a-z-]*:s3express:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):bucket/(?P<name>[^/]+)$"
)
_KIND_OF_SOURCE = {
    "s3.amazonaws.com": BucketKind.GENERAL_PURPOSE,
    "s3express.amazonaws.com": BucketKind.DIRECTORY,
    "s3tables.amazonaws.com": BucketKind.TABLE,
    "s3vectors.amazonaws.com": BucketKind.VECTOR,
}
# S3 Vectors names a bucket by name or by ARN (botocore s3vectors model: CreateIndex,
# GetVectorBucket...); bucket names are 3-63 lowercase letters, digits, hyphens and dots.
_VECTOR_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9-.]{1,61}[a-z0-9]$")
_VECTOR_BUCKET_ARN = re.compile(
    r"^arn:aws[a-z-]*:s3vectors:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"bucket/(?P<name>[a-z0-9][a-z0-9-.]{1,61}[a-z0-9])(?:/index/.*)?$"
)


# §15 key health: the KMS calls that change whether S3 can use a key (KMS Developer Guide,
# "Monitoring with Amazon EventBridge"; each logged by CloudTrail with eventSource kms).
KEY_SOURCE = "kms.amazonaws.com"
KEY_EVENTS = (
    "DisableKey",
    "EnableKey",
    "ScheduleKeyDeletion",
    "CancelKeyDeletion",
    "PutKeyPolicy",
    "DeleteImportedKeyMaterial",
)
_KEY_ARN = re.compile(
    r"^arn:aws[a-z-]*:kms:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):key/(?P<id>[A-Za-z0-9-]+)$"
)


class InvalidEvent(Exception):
    """An event that can never be processed, however often it is retried."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotABucket(Exception):
    """The event is about something other than a bucket (an access point's tags, say)."""


class FailedCall(Exception):
    """The event records an API call that failed: nothing changed, nothing to check."""

    def __init__(self, event_name: str | None, error_code: str) -> None:
        super().__init__(f"{event_name} failed with {error_code}")
        self.event_name = event_name
        self.error_code = error_code


@dataclass(frozen=True)
class BucketChange:
    bucket: BucketRef
    trigger: Trigger


@dataclass(frozen=True)
class KeyChange:
    """A KMS call on a key some buckets may use (``keyChecks``)."""

    key_arn: str
    trigger: Trigger

    @property
    def disables(self) -> bool:
        """Whether the call can only take the key away from S3 (an enabling call cannot)."""
        return self.trigger.event_name not in ("EnableKey", "CancelKeyDeletion")


def is_key_event(raw: object) -> bool:
    """A KMS CloudTrail event (only the key-health rules route them)."""
    detail = raw.get("detail") if isinstance(raw, Mapping) else None
    return isinstance(detail, Mapping) and detail.get("eventSource") == KEY_SOURCE


def parse_key_event(raw: Mapping[str, Any]) -> KeyChange:
    """The key a KMS call changed, as its ARN: from ``resources[]``, else ``responseElements``
    (which names the key ARN since December 2022), else the request's key id in the event's
    own account and region (KMS Developer Guide, CloudTrail examples of DisableKey/EnableKey)."""
    detail = raw["detail"]
    event_name = _optional_str(detail, "eventName")
    error_code = _optional_str(detail, "errorCode")
    if error_code:
        raise FailedCall(event_name, error_code)
    if event_name not in KEY_EVENTS:
        raise NotABucket(f"{event_name} does not change whether S3 can use a key")
    response = detail.get("responseElements")
    request = detail.get("requestParameters")
    candidates = [resource.get("ARN") for resource in _resources(detail)]
    for elements in (response, request):
        if isinstance(elements, Mapping):
            candidates.append(elements.get("keyId"))
    arn = next((c for c in candidates if isinstance(c, str) and _KEY_ARN.match(c)), None)
    if arn is None:
        key_id = request.get("keyId") if isinstance(request, Mapping) else None
        account = _optional_str(detail, "recipientAccountId") or _envelope(raw, "account")
        region = _optional_str(detail, "awsRegion") or _envelope(raw, "region")
        if not isinstance(key_id, str) or not key_id or not account or not region:
            raise InvalidEvent(f"{event_name} event names no key (resources, keyId)")
        arn = f"arn:{partition_of(region)}:kms:{region}:{account}:key/{key_id}"
        if not _KEY_ARN.match(arn):
            raise InvalidEvent(f"{event_name} event's keyId {key_id!r} is not a key id")
    return KeyChange(key_arn=arn, trigger=_trigger(detail, event_name))


def parse_event(raw: object) -> BucketChange:
    if not isinstance(raw, Mapping):
        raise InvalidEvent(f"event is a {type(raw).__name__}, not a JSON object")
    # A plain mapping rather than Powertools' EventBridgeEvent: importing the data classes costs
    # ~18 ms of every cold start (SPEC §9 allows 1.25x of bare boto3) for two .get() calls.
    detail = raw.get("detail")
    if not isinstance(detail, Mapping):
        raise InvalidEvent("event has no 'detail' object (not a CloudTrail event)")

    event_name = _optional_str(detail, "eventName")
    error_code = _optional_str(detail, "errorCode")
    if error_code:
        raise FailedCall(event_name, error_code)

    kind = _kind_of(detail)
    request = detail.get("requestParameters")
    request = request if isinstance(request, Mapping) else {}
    # A table or vector bucket named by its ARN: the ARN names its account and region.
    named_arn = None
    if kind is BucketKind.TABLE:
        bucket_name, named_arn = _table_bucket(detail, request)
    elif kind is BucketKind.VECTOR:
        bucket_name, named_arn = _vector_bucket(request)
    elif event_name in TAG_RESOURCE_EVENTS:
        bucket_name, kind = _tagged_bucket(detail, request)
    else:
        named = request.get("bucketName")
        if not isinstance(named, str) or not named:
            raise InvalidEvent("detail.requestParameters.bucketName is missing")
        bucket_name = named
        if not BUCKET_NAME.match(bucket_name):
            raise InvalidEvent(
                f"detail.requestParameters.bucketName {bucket_name!r} is not a bucket name"
            )
        if bucket_name.endswith(DIRECTORY_BUCKET_SUFFIX):
            kind = BucketKind.DIRECTORY

    # The bucket's owner: CloudTrail delivers a cross-account call to the caller's account as
    # well, with recipientAccountId the caller's; resources[] names the bucket's own account
    # (CloudTrail User Guide, "CloudTrail record contents"). Events before CloudTrail 1.05 lack
    # recipientAccountId; the envelope's account is the same.
    # A vector bucket named by ARN names its owner: a call through its bucket policy from
    # another account is that account's bucket all the same.
    vector_owner = named_arn["account"] if kind is BucketKind.VECTOR and named_arn else None
    account = (
        (
            _owner_of(detail, bucket_name)
            if kind in (BucketKind.GENERAL_PURPOSE, BucketKind.DIRECTORY)
            else vector_owner
        )
        or _optional_str(detail, "recipientAccountId")
        or _envelope(raw, "account")
    )
    if not account or not ACCOUNT_ID.match(account):
        raise InvalidEvent(
            f"no 12-digit account in detail.recipientAccountId or account: {account!r}"
        )
    region = _optional_str(detail, "awsRegion") or _envelope(raw, "region")
    if not region or not is_region_name(region):
        raise InvalidEvent(f"no AWS region in detail.awsRegion or region: {region!r}")
    if named_arn and (named_arn["account"], named_arn["region"]) != (account, region):
        raise InvalidEvent(
            f"bucket ARN {named_arn.string} is not in account {account} and region {region}"
        )

    return BucketChange(
        bucket=BucketRef(name=bucket_name, account=account, region=region, kind=kind),
        trigger=_trigger(detail, event_name),
    )


def _trigger(detail: Mapping[str, Any], event_name: str | None) -> Trigger:
    identity = detail.get("userIdentity")
    actor = None
    if isinstance(identity, Mapping):
        actor = _optional_str(identity, "arn") or _optional_str(identity, "type")
    return Trigger(
        source="cloudtrail",
        event_name=event_name,
        event_time=_optional_str(detail, "eventTime"),
        event_id=_optional_str(detail, "eventID"),
        actor=actor,
        source_ip=_optional_str(detail, "sourceIPAddress"),
    )


def _kind_of(detail: Mapping[str, Any]) -> BucketKind:
    source = _optional_str(detail, "eventSource")
    if source is None:
        # Hand-made test events often leave it out; S3's own events always carry it.
        return BucketKind.GENERAL_PURPOSE
    kind = _KIND_OF_SOURCE.get(source)
    if kind is None:
        raise InvalidEvent(
            f"detail.eventSource {source!r} is not S3, S3 Express, S3 Tables or S3 Vectors"
        )
    return kind


def _table_bucket(
    detail: Mapping[str, Any], request: Mapping[str, Any]
) -> tuple[str, re.Match[str] | None]:
    """A table bucket's name from its ARN (``tableBucketARN``, or the event's ``resources``),
    or for ``CreateTableBucket`` from ``name``."""
    arns = [request.get("tableBucketARN")]
    arns += [
        r.get("ARN") for r in _resources(detail) if r.get("type") == "AWS::S3Tables::TableBucket"
    ]
    for arn in arns:
        if isinstance(arn, str) and arn:
            match = _TABLE_BUCKET_ARN.match(arn)
            if match is None or not _TABLE_BUCKET_NAME.match(match["name"]):
                raise InvalidEvent(f"{arn!r} is not a table bucket ARN")
            return match["name"], match
    name = request.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidEvent(
            "detail.requestParameters has neither tableBucketARN nor name (not a table bucket "
            "event)"
        )
    if not _TABLE_BUCKET_NAME.match(name):
        raise InvalidEvent(f"detail.requestParameters.name {name!r} is not a table bucket name")
    return name, None


def _vector_bucket(request: Mapping[str, Any]) -> tuple[str, re.Match[str] | None]:
    """A vector bucket's name, from ``vectorBucketName`` or ``vectorBucketArn`` (an index ARN
    names its bucket too)."""
    arn = request.get("vectorBucketArn") or request.get("indexArn")
    if isinstance(arn, str) and arn:
        match = _VECTOR_BUCKET_ARN.match(arn)
        if match is None:
            raise InvalidEvent(f"{arn!r} is not a vector bucket or index ARN")
        return match["name"], match
    name = request.get("vectorBucketName")
    if not isinstance(name, str) or not name:
        raise InvalidEvent(
            "detail.requestParameters has neither vectorBucketName nor vectorBucketArn"
        )
    if not _VECTOR_BUCKET_NAME.match(name):
        raise InvalidEvent(f"detail.requestParameters.vectorBucketName {name!r} is not a name")
    return name, None


def _resources(detail: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    resources = detail.get("resources")
    if not isinstance(resources, list):
        return []
    return [resource for resource in resources if isinstance(resource, Mapping)]


def _owner_of(detail: Mapping[str, Any], bucket_name: str) -> str | None:
    """The account that ``resources[]`` says owns the bucket, when it says so."""
    for resource in _resources(detail):
        arn = resource.get("ARN")
        if resource.get("type") == "AWS::S3::Bucket" and (
            not isinstance(arn, str) or arn.endswith(f":::{bucket_name}")
        ):
            owner = resource.get("accountId")
            if isinstance(owner, str) and ACCOUNT_ID.match(owner):
                return owner
    return None


def _tagged_bucket(detail: Mapping[str, Any], request: Mapping[str, Any]) -> tuple[str, BucketKind]:
    """The bucket an S3 Control ``TagResource``/``UntagResource`` call tagged, from its ARN (the
    request's ``resourceArn``, else ``resources[]``). Anything else tagged is not a bucket."""
    arn = request.get("resourceArn") or request.get("ResourceArn")
    if not isinstance(arn, str) or not arn:
        arn = next((str(r["ARN"]) for r in _resources(detail) if isinstance(r.get("ARN"), str)), "")
    if not arn:
        raise InvalidEvent("detail.requestParameters.resourceArn is missing")
    general = _GENERAL_PURPOSE_ARN.match(arn)
    if general is not None and BUCKET_NAME.match(general["name"]):
        return general["name"], BucketKind.GENERAL_PURPOSE
    directory = _DIRECTORY_BUCKET_ARN.match(arn)
    if directory is not None and directory["name"].endswith(DIRECTORY_BUCKET_SUFFIX):
        return directory["name"], BucketKind.DIRECTORY
    raise NotABucket(f"{arn} is not a bucket")


def _optional_str(mapping: Mapping[str, Any], key: str) -> str | None:
    value = mapping.get(key)
    return value if isinstance(value, str) and value else None


def _envelope(envelope: Mapping[str, Any], attribute: str) -> str | None:
    value = envelope.get(attribute)
    return value if isinstance(value, str) and value else None


def schedule_trigger(raw: object) -> Trigger:
    """The sweep's trigger from its EventBridge schedule event. Anything else (a manual test
    invocation with ``{}``, say) still starts a sweep: it only loses the event's time and id."""
    envelope = raw if isinstance(raw, Mapping) else {}
    return Trigger(
        source="sweep",
        event_time=_optional_str(envelope, "time"),
        event_id=_optional_str(envelope, "id"),
    )


def account_of(context: Any) -> str:
    """The function's own account, from the ARN Lambda invoked (no STS call)."""
    return str(context.invoked_function_arn).split(":")[4]
