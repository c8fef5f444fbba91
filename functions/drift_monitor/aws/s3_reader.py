"""Adapter around the S3 APIs: reads a bucket's default encryption and tags, and nothing else.

General purpose and directory buckets answer ``GetBucketEncryption`` (a directory bucket at the
S3 Express control endpoint, which botocore picks from the ``--x-s3`` name); table buckets answer
S3 Tables' ``GetTableBucketEncryption``. Each kind has its own listing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.config import Config
from botocore.exceptions import ClientError

from ..domain.errors import BucketInactive, BucketUnreadable, BucketVanished, ListingDenied
from ..domain.models import (
    DIRECTORY_BUCKET_SUFFIX,
    BucketKind,
    BucketRef,
    EncryptionRule,
    Finding,
    ListedBucket,
    ObservedEncryption,
)
from ..domain.permissions import (
    GET_TABLE_BUCKET,
    LIST_DIRECTORY_BUCKETS,
    LIST_TABLE_BUCKETS,
    LIST_VECTOR_BUCKETS,
    READ_ENCRYPTION,
    VECTOR_INDEX_READS,
)
from ..domain.settings import LIST_PAGE_SIZE
from .credentials import RETRY_CONFIG, AccountAccess, error_code, is_denied

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_NO_CONFIGURATION = "ServerSideEncryptionConfigurationNotFoundError"
_NO_BUCKET = "NoSuchBucket"
_NO_TAGS = "NoSuchTagSet"
_NOT_FOUND = "NotFoundException"  # S3 Tables' and S3 Vectors' missing resource
# S3's answer when it wants fewer requests: a 503 as well, unlike an inactive directory bucket's.
_SLOW_DOWN = "SlowDown"
# The monitor calls only S3 Express control-plane operations (GetBucketEncryption,
# ListDirectoryBuckets...), which AWS signs with plain SigV4 whatever this says. Through a custom
# endpoint (the local emulator, a proxy) botocore would otherwise ask for a zonal session first.
# (The type stubs predate the option.)
_CONTROL_PLANE_ONLY = Config(s3={"disable_s3_express_session_auth": True})  # type: ignore[arg-type]
# Listings of the kinds that are listed per region.
DIRECTORY_PAGE_SIZE = 1000
TABLE_PAGE_SIZE = 1000
VECTOR_PAGE_SIZE = 500  # ListVectorBuckets' and ListIndexes' largest maxResults (s3vectors model)
# A vector bucket (or index) created without an encryption configuration uses SSE-S3 (S3 User
# Guide, "Data protection and encryption in S3 Vectors").
_VECTOR_DEFAULT = {"sseType": "AES256"}
# S3 Express and S3 Tables are not offered in every region, and botocore knows no list of
# where: a region without them has no endpoint (its name does not resolve). Few, quick attempts,
# so such a region costs a sweep a second rather than a minute of retries.
_REGIONAL_LISTING = Config(retries={"mode": "standard", "total_max_attempts": 3}, connect_timeout=3)
# GetBucketLocation's legacy answers: no constraint is us-east-1, "EU" is eu-west-1.
_LEGACY_LOCATIONS = {"": "us-east-1", "EU": "eu-west-1"}


@dataclass(frozen=True)
class ListingPage:
    buckets: tuple[ListedBucket, ...]
    next_token: str | None  # None on the last page


class S3Reader:
    """Reads bucket state with one S3 client per account and region, created on first use and then
    reused (``AccountAccess`` decides whose credentials sign the calls)."""

    def __init__(self, access: AccountAccess, config: Config = RETRY_CONFIG) -> None:
        self.access = access
        self._config = config.merge(_CONTROL_PLANE_ONLY)
        self._listing_config = self._config.merge(_REGIONAL_LISTING)

    @property
    def home_region(self) -> str:
        return self.access.home_region

    def client(self, region: str, account: str | None = None) -> S3Client:
        client: S3Client = self.access.client("s3", region, account, self._config)
        return client

    def tables_client(self, region: str, account: str | None = None) -> Any:
        # No type stubs for S3 Tables are pinned: its three calls are checked by the tests.
        return self.access.client("s3tables", region, account, self._config)

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

    def list_directory_buckets(self, account: str | None, region: str) -> Iterator[ListedBucket]:
        """The account's directory buckets in ``region`` (listed per region, unlike ListBuckets)."""
        client = self.access.client("s3", region, account, self._listing_config)
        request = {"MaxDirectoryBuckets": DIRECTORY_PAGE_SIZE}
        for response in _pages(
            _listing(client.list_directory_buckets, LIST_DIRECTORY_BUCKETS, region),
            request,
            "ContinuationToken",
        ):
            for bucket in response.get("Buckets", []):
                name = str(bucket.get("Name", ""))
                # Directory bucket names end in --x-s3 (S3 User Guide, "Directory bucket naming
                # rules"); nothing else listed here is one.
                wrong = None if name.endswith(DIRECTORY_BUCKET_SUFFIX) else "not --x-s3"
                yield ListedBucket(name, region, BucketKind.DIRECTORY, wrong)

    def list_table_buckets(self, account: str | None, region: str) -> Iterator[ListedBucket]:
        """The account's table buckets in ``region``. Those of type ``aws`` (S3 Metadata's,
        managed by AWS) are left out: their owner does not choose their encryption."""
        client = self.access.client("s3tables", region, account, self._listing_config)
        request = {"maxBuckets": TABLE_PAGE_SIZE, "type": "customer"}
        for response in _pages(
            _listing(client.list_table_buckets, LIST_TABLE_BUCKETS, region),
            request,
            "continuationToken",
        ):
            for bucket in response.get("tableBuckets", []):
                yield _listed_by_arn(
                    str(bucket.get("name", "")), str(bucket.get("arn", "")), account, region,
                    BucketKind.TABLE,
                )  # fmt: skip

    def list_vector_buckets(self, account: str | None, region: str) -> Iterator[ListedBucket]:
        """The account's vector buckets (S3 Vectors) in ``region``."""
        client = self.access.client("s3vectors", region, account, self._listing_config)
        request = {"maxResults": VECTOR_PAGE_SIZE}
        for response in _pages(
            _listing(client.list_vector_buckets, LIST_VECTOR_BUCKETS, region),
            request,
            "nextToken",
        ):
            for bucket in response.get("vectorBuckets", []):
                yield _listed_by_arn(
                    str(bucket.get("vectorBucketName", "")), str(bucket.get("vectorBucketArn", "")),
                    account, region, BucketKind.VECTOR,
                )  # fmt: skip

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
        if bucket.kind is BucketKind.TABLE:
            return self._read_table_encryption(bucket)
        if bucket.kind is BucketKind.VECTOR:
            return self._read_vector_encryption(bucket)
        try:
            response = self.client(bucket.region, bucket.account).get_bucket_encryption(
                Bucket=bucket.name, **expected_owner(bucket)
            )
        except ClientError as error:
            if error_code(error) == _NO_CONFIGURATION:
                return ObservedEncryption(bucket=bucket, rules=())
            if bucket.kind is BucketKind.DIRECTORY and _inactive(error):
                raise BucketInactive(
                    f"s3://{bucket.name} answered 503 ({error_code(error) or 'no code'})"
                ) from error
            raise _translate(error, bucket, READ_ENCRYPTION[bucket.kind]) from error
        configuration = response.get("ServerSideEncryptionConfiguration", {})
        rules = tuple(parse_rule(rule) for rule in configuration.get("Rules", []))
        return ObservedEncryption(bucket=bucket, rules=rules)

    def _read_table_encryption(self, bucket: BucketRef) -> ObservedEncryption:
        client = self.tables_client(bucket.region, bucket.account)
        try:
            response = client.get_table_bucket_encryption(tableBucketARN=bucket.arn)
        except ClientError as error:
            if error_code(error) != _NOT_FOUND:
                raise _translate(error, bucket, READ_ENCRYPTION[bucket.kind]) from error
            # The bucket, or only its encryption configuration, is missing: ask which.
            try:
                client.get_table_bucket(tableBucketARN=bucket.arn)
            except ClientError as missing:
                if error_code(missing) == _NOT_FOUND:
                    raise BucketVanished(f"table bucket {bucket.arn} no longer exists") from missing
                raise _translate(missing, bucket, GET_TABLE_BUCKET) from missing
            # "All Amazon S3 table buckets have encryption configured by default ... SSE-S3 is
            # the default" (S3 User Guide, "Using SSE-KMS in table buckets").
            return ObservedEncryption(bucket=bucket, rules=(EncryptionRule(algorithm="AES256"),))
        configuration = response.get("encryptionConfiguration") or {}
        rule = EncryptionRule(
            algorithm=str(configuration.get("sseAlgorithm", "")),
            kms_key_id=configuration.get("kmsKeyArn") or None,
        )
        return ObservedEncryption(bucket=bucket, rules=(rule,))

    def _read_vector_encryption(self, bucket: BucketRef) -> ObservedEncryption:
        """The bucket's encryption, then each index whose own encryption differs from it (set
        at CreateIndex): an index that inherits the bucket's adds nothing to judge."""
        client = self.access.client("s3vectors", bucket.region, bucket.account, self._config)
        try:
            described = client.get_vector_bucket(vectorBucketName=bucket.name)["vectorBucket"]
        except ClientError as error:
            raise _vector_error(error, bucket, READ_ENCRYPTION[bucket.kind]) from error
        own = described.get("encryptionConfiguration") or _VECTOR_DEFAULT
        rules = [_vector_rule(own)]
        try:
            request = {"vectorBucketName": bucket.name, "maxResults": VECTOR_PAGE_SIZE}
            for response in _pages(client.list_indexes, request, "nextToken"):
                for index in response.get("indexes", []):
                    name = str(index.get("indexName", ""))
                    described = client.get_index(vectorBucketName=bucket.name, indexName=name)
                    configuration = described["index"].get("encryptionConfiguration") or own
                    if configuration != own:
                        rules.append(_vector_rule(configuration, scope=f"index {name}"))
        except ClientError as error:
            raise _vector_error(error, bucket, " and ".join(VECTOR_INDEX_READS)) from error
        return ObservedEncryption(bucket=bucket, rules=tuple(rules))

    def read_tags(self, bucket: BucketRef) -> dict[str, str]:
        if bucket.kind is not BucketKind.GENERAL_PURPOSE:
            return {}  # no tag API for other kinds here; ``assess`` never asks (exemptTag)
        try:
            response = self.client(bucket.region, bucket.account).get_bucket_tagging(
                Bucket=bucket.name, ExpectedBucketOwner=bucket.account
            )
        except ClientError as error:
            if error_code(error) == _NO_TAGS:
                return {}
            raise _translate(error, bucket, "s3:GetBucketTagging") from error
        return {tag["Key"]: tag["Value"] for tag in response.get("TagSet", [])}


def expected_owner(bucket: BucketRef) -> dict[str, str]:
    """``ExpectedBucketOwner`` for a general purpose bucket. A directory bucket refuses it: "For
    directory buckets, this header is not supported in this API operation. If you specify this
    header, the request fails with the HTTP status code 501 Not Implemented" (S3 API Reference,
    GetBucketEncryption and PutBucketEncryption); their control plane is same-account anyway."""
    if bucket.kind is BucketKind.DIRECTORY:
        return {}
    return {"ExpectedBucketOwner": bucket.account}


def _inactive(error: ClientError) -> bool:
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status == 503 and error_code(error) != _SLOW_DOWN


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


def _vector_rule(configuration: Mapping[str, Any], scope: str | None = None) -> EncryptionRule:
    return EncryptionRule(
        algorithm=str(configuration.get("sseType", "")),
        kms_key_id=configuration.get("kmsKeyArn") or None,
        scope=scope,
    )


def _vector_error(error: ClientError, bucket: BucketRef, permission: str) -> Exception:
    if error_code(error) == _NOT_FOUND:
        return BucketVanished(f"vector bucket {bucket.arn} no longer exists")
    return _translate(error, bucket, permission)


def _listing(call: Any, permission: str, region: str) -> Callable[..., Any]:
    """``call`` with a refusal raised as ``ListingDenied``, naming the permission and region."""

    def listed(**request: Any) -> Any:
        try:
            return call(**request)
        except ClientError as error:
            if is_denied(error):
                raise ListingDenied(
                    f"{error_code(error) or '403'} on {permission} in {region}"
                ) from error
            raise

    return listed


def _pages(call: Callable[..., Any], request: dict[str, Any], token: str) -> Iterator[Any]:
    """Each response of a listing whose next page is asked for with the ``token`` it returned
    (the same member name in the request and the response)."""
    while True:
        response = call(**request)
        yield response
        following = response.get(token)
        if not following:
            return
        request = {**request, token: following}


def _listed_by_arn(
    name: str, arn: str, account: str | None, region: str, kind: BucketKind
) -> ListedBucket:
    """A listed table or vector bucket, which has its ARN naming this account and region; an
    entry without it is not a bucket of that kind."""
    expected = BucketRef(name, account or "", region, kind).arn
    valid = arn == expected if account else arn.endswith(f":bucket/{name}")
    return ListedBucket(name, region, kind, None if valid else "no ARN")


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
        if bucket.kind is BucketKind.TABLE:
            # S3 Tables has no ExpectedBucketOwner: the ARN names the account.
            self._reader.tables_client(bucket.region, bucket.account).put_table_bucket_encryption(
                tableBucketARN=bucket.arn, encryptionConfiguration=configuration
            )
            return
        request: dict[str, Any] = {
            "Bucket": bucket.name,
            "ServerSideEncryptionConfiguration": configuration,
            **expected_owner(bucket),
        }
        self._reader.client(bucket.region, bucket.account).put_bucket_encryption(**request)
