"""S3Reader on directory and table buckets, through boto3's normal HTTP path to the emulator
(local/other_buckets.py): reads, listings, a vanished bucket, a refusal, and another account's
buckets read only through that account's credentials."""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from functions.drift_monitor.aws.credentials import AccountAccess
from functions.drift_monitor.aws.s3_reader import EncryptionWriter, S3Reader
from functions.drift_monitor.domain.alerts import build_alert
from functions.drift_monitor.domain.assessment import assess
from functions.drift_monitor.domain.errors import (
    BucketInactive,
    BucketUnreadable,
    BucketVanished,
    ListingDenied,
)
from functions.drift_monitor.domain.models import (
    BucketKind,
    BucketRef,
    Code,
    EncryptionRule,
    Finding,
    ListedBucket,
    Status,
    Trigger,
)
from functions.drift_monitor.domain.permissions import OTHER_KINDS_LISTS, OTHER_KINDS_READS
from functions.drift_monitor.domain.policy import Policy
from functions.drift_monitor.sweep.engine import RegionalListing, list_regional
from local.emulator import (
    Emulator,
    create_organization,
    iam_user,
    member_admin,
    moto_server,
    moto_server_with_iam,
)
from local.other_buckets import INACTIVE_PATH

ACCOUNT = "123456789012"
KEY = "arn:aws:kms:eu-west-1:{account}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ZONE = {"Type": "AvailabilityZone", "Name": "euw1-az1"}
DIRECTORY = {"Type": "Directory", "DataRedundancy": "SingleAvailabilityZone"}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def reader_for(emulator: Emulator) -> S3Reader:
    session = emulator.session()
    return S3Reader(AccountAccess(session, endpoint_url=emulator.endpoint))


def create_directory_bucket(emulator: Emulator, base: str) -> BucketRef:
    name = f"{base}--euw1-az1--x-s3"
    emulator.client("s3").create_bucket(
        Bucket=name, CreateBucketConfiguration={"Location": ZONE, "Bucket": DIRECTORY}
    )
    return BucketRef(name, emulator.account, "eu-west-1", BucketKind.DIRECTORY)


def create_vector_bucket(emulator: Emulator, name: str, *, with_index: bool = False) -> BucketRef:
    vectors = emulator.client("s3vectors")
    vectors.create_vector_bucket(vectorBucketName=name)
    if with_index:
        key = emulator.client("kms").create_key()["KeyMetadata"]["Arn"]
        own = {"sseType": "aws:kms", "kmsKeyArn": key}
        vectors.create_index(
            vectorBucketName=name, indexName="own", dataType="float32", dimension=4,
            distanceMetric="cosine", encryptionConfiguration=own,
        )  # fmt: skip
    return BucketRef(name, emulator.account, "eu-west-1", BucketKind.VECTOR)


def create_table_bucket(emulator: Emulator, name: str) -> BucketRef:
    emulator.client("s3tables").create_table_bucket(name=name)
    return BucketRef(name, emulator.account, "eu-west-1", BucketKind.TABLE)


@pytest.fixture(scope="module")
def local() -> Iterator[Emulator]:
    with moto_server() as emulator:
        yield emulator


def test_a_new_directory_bucket_reads_as_sse_s3_then_as_what_was_put(local: Emulator) -> None:
    bucket = create_directory_bucket(local, unique("dir"))
    reader = reader_for(local)

    assert reader.read_encryption(bucket).rules == (EncryptionRule("AES256"),)

    key = KEY.format(account=local.account)
    EncryptionWriter(reader).put_encryption(
        _finding(bucket),
        {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms",
                                                           "KMSMasterKeyID": key},
                    "BucketKeyEnabled": True}]},
    )  # fmt: skip
    assert reader.read_encryption(bucket).rules == (EncryptionRule("aws:kms", key, True),)


def test_a_table_bucket_reads_through_s3_tables_and_is_written_there(local: Emulator) -> None:
    bucket = create_table_bucket(local, unique("lake"))
    reader = reader_for(local)
    key = KEY.format(account=local.account)

    assert reader.read_encryption(bucket).rules == (EncryptionRule("AES256"),)
    EncryptionWriter(reader).put_encryption(
        _finding(bucket), {"sseAlgorithm": "aws:kms", "kmsKeyArn": key}
    )
    assert reader.read_encryption(bucket).rules == (EncryptionRule("aws:kms", key),)
    # exemptTag applies to general purpose buckets only: no tags are read for other kinds
    assert reader.read_tags(bucket) == {}


@pytest.mark.parametrize("kind", [BucketKind.DIRECTORY, BucketKind.TABLE])
def test_a_vanished_bucket_of_either_kind(local: Emulator, kind: BucketKind) -> None:
    name = "gone--euw1-az1--x-s3" if kind is BucketKind.DIRECTORY else "gone-lake"

    with pytest.raises(BucketVanished):
        reader_for(local).read_encryption(BucketRef(name, local.account, "eu-west-1", kind))


def test_listings_are_per_region_and_name_the_kind(local: Emulator) -> None:
    directory = create_directory_bucket(local, unique("listed"))
    table = create_table_bucket(local, unique("listed"))

    listing = list_regional(reader_for(local), None, ["eu-west-1", "us-east-1"])

    assert listing.errors == ()
    assert ListedBucket(directory.name, "eu-west-1", BucketKind.DIRECTORY) in listing.buckets
    assert ListedBucket(table.name, "eu-west-1", BucketKind.TABLE) in listing.buckets
    assert {bucket.region for bucket in listing.buckets} == {"eu-west-1"}  # none in us-east-1


def test_listings_page_with_continuation_tokens(
    local: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = sorted(unique("paged") for _ in range(5))
    for name in names:
        create_table_bucket(local, name)
        create_directory_bucket(local, name)
    monkeypatch.setattr("functions.drift_monitor.aws.s3_reader.TABLE_PAGE_SIZE", 2)
    monkeypatch.setattr("functions.drift_monitor.aws.s3_reader.DIRECTORY_PAGE_SIZE", 2)
    reader = reader_for(local)

    tables = [b.name for b in reader.list_table_buckets(None, "eu-west-1") if b.name in names]
    directories = [b.name for b in reader.list_directory_buckets(None, "eu-west-1")]

    assert tables == names
    assert [f"{name}--euw1-az1--x-s3" for name in names] == [
        name for name in directories if name.removesuffix("--euw1-az1--x-s3") in names
    ]


@pytest.fixture(scope="module")
def enforced() -> Iterator[Emulator]:
    with moto_server_with_iam() as admin:
        yield admin


def test_without_the_permissions_reads_are_unreadable_and_listings_reported(
    enforced: Emulator,
) -> None:
    # Given buckets of every kind and a caller allowed only general purpose S3 reads
    directory = create_directory_bucket(enforced, unique("private"))
    table = create_table_bucket(enforced, unique("private"))
    vector = create_vector_bucket(enforced, unique("private"))
    s3_only = iam_user(
        enforced,
        unique("s3-only"),
        [{"Action": ["s3:GetEncryptionConfiguration"], "Resource": "*"}],
    )
    reader = reader_for(s3_only)

    # Then each read is unreadable, naming the IAM action it needs, never unencrypted
    for bucket, permission in (
        (directory, "s3express:GetEncryptionConfiguration"),
        (table, "s3tables:GetTableBucketEncryption"),
        (vector, "s3vectors:GetVectorBucket"),
    ):
        with pytest.raises(BucketUnreadable) as refused:
            reader.read_encryption(bucket)
        assert refused.value.permission == permission
    # And a sweep's listing says what it could not list, region by region
    listing = list_regional(reader, None, ["eu-west-1"])
    assert listing.buckets == ()
    assert listing.errors == (
        "directory buckets in eu-west-1 could not be listed: AccessDenied on "
        "s3express:ListAllMyDirectoryBuckets in eu-west-1",
        "table buckets in eu-west-1 could not be listed: AccessDeniedException on "
        "s3tables:ListTableBuckets in eu-west-1",
        "vector buckets in eu-west-1 could not be listed: AccessDeniedException on "
        "s3vectors:ListVectorBuckets in eu-west-1",
    )
    with pytest.raises(ListingDenied):
        list(reader.list_table_buckets(None, "eu-west-1"))


def test_with_exactly_the_synthesized_actions_both_kinds_read_and_list(enforced: Emulator) -> None:
    directory = create_directory_bucket(enforced, unique("readable"))
    table = create_table_bucket(enforced, unique("readable"))
    vector = create_vector_bucket(enforced, unique("readable"), with_index=True)
    account = enforced.account
    reader = reader_for(
        iam_user(
            enforced,
            unique("reader"),
            [
                {
                    "Action": list(OTHER_KINDS_READS),
                    "Resource": [
                        f"arn:aws:s3express:*:{account}:bucket/*",
                        f"arn:aws:s3tables:*:{account}:bucket/*",
                        f"arn:aws:s3vectors:*:{account}:bucket/*",
                    ],
                },
                {"Action": list(OTHER_KINDS_LISTS), "Resource": "*"},
            ],
        )
    )

    assert reader.read_encryption(directory).rules == (EncryptionRule("AES256"),)
    assert reader.read_encryption(table).rules == (EncryptionRule("AES256"),)
    # the vector bucket's index has its own key: it is read (ListIndexes, GetIndex) too
    assert [rule.scope for rule in reader.read_encryption(vector).rules] == [None, "index own"]
    listing = list_regional(reader, None, ["eu-west-1"])
    assert listing.errors == ()
    names = {bucket.name for bucket in listing.buckets}
    assert {directory.name, table.name, vector.name} <= names


def test_another_accounts_buckets_are_its_own(local: Emulator) -> None:
    # Given a member account with a table bucket and a directory bucket
    (member,) = create_organization(local, [unique("member")])
    admin = member_admin(local, member)
    table = create_table_bucket(admin, unique("member-lake"))
    directory = create_directory_bucket(admin, unique("member-dir"))

    # Then the central account's own credentials neither list nor read them (as on AWS)
    central = reader_for(local)
    listed = {b.name for b in list_regional(central, None, ["eu-west-1"]).buckets}
    assert table.name not in listed and directory.name not in listed
    for bucket in (table, directory):
        with pytest.raises(BucketUnreadable):
            central.read_encryption(bucket)
    # And the member's own credentials see both
    mine = reader_for(admin)
    listed = {b.name for b in list_regional(mine, None, ["eu-west-1"]).buckets}
    assert {table.name, directory.name} <= listed


def _finding(bucket: BucketRef) -> Finding:
    return Finding(bucket, Status.DRIFT, None, (), Trigger(source="test"))


def test_a_session_without_the_emulator_would_ask_aws_s_control_endpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    # The option that makes the emulator reachable changes nothing on AWS: control-plane calls
    # for a directory bucket go to s3express-control with plain SigV4 (service s3express)
    reader = S3Reader(
        AccountAccess(boto3.Session(region_name="eu-west-1", aws_access_key_id="a",
                                    aws_secret_access_key="b"))
    )  # fmt: skip
    client = reader.client("eu-west-1")
    sent: list[tuple[str, str]] = []

    class Stop(Exception):
        pass

    def capture(request: Any, **_: Any) -> None:
        sent.append((request.url, request.headers["Authorization"].decode()))
        raise Stop

    client.meta.events.register("before-send", capture)
    with pytest.raises(Stop):
        client.get_bucket_encryption(Bucket="x--euw1-az1--x-s3")

    ((url, authorization),) = sent
    assert url == "https://s3express-control.eu-west-1.amazonaws.com/x--euw1-az1--x-s3?encryption"
    assert "/eu-west-1/s3express/aws4_request" in authorization


def test_the_emulator_refuses_keys_each_kind_does_not_take(local: Emulator) -> None:
    # As S3 does: an alias for a directory bucket's key, an alias ARN for a table bucket's, and
    # DSSE-KMS for either
    directory = create_directory_bucket(local, unique("refuses"))
    table = create_table_bucket(local, unique("refuses"))
    alias = f"arn:aws:kms:eu-west-1:{local.account}:alias/platform"
    s3, tables = local.client("s3"), local.client("s3tables")

    for algorithm, key in (("aws:kms", alias), ("aws:kms:dsse", None)):
        by_default = {"SSEAlgorithm": algorithm, **({"KMSMasterKeyID": key} if key else {})}
        with pytest.raises(ClientError, match="InvalidArgument"):
            s3.put_bucket_encryption(
                Bucket=directory.name,
                ServerSideEncryptionConfiguration={
                    "Rules": [{"ApplyServerSideEncryptionByDefault": by_default}]
                },
            )
    with pytest.raises(ClientError, match="BadRequestException"):
        tables.put_table_bucket_encryption(
            tableBucketARN=table.arn,
            encryptionConfiguration={"sseAlgorithm": "aws:kms", "kmsKeyArn": alias},
        )


def test_a_region_without_the_service_is_skipped_not_reported_as_an_error() -> None:
    # Given an endpoint nothing answers at (as a region where S3 Express and S3 Tables are not
    # offered: their regional host does not exist)
    nowhere = S3Reader(
        AccountAccess(boto3.Session(region_name="eu-west-1", aws_access_key_id="a",
                                    aws_secret_access_key="b"), endpoint_url="http://127.0.0.1:9")
    )  # fmt: skip

    listing = list_regional(nowhere, None, ["ap-east-2"])

    # Then nothing is listed, no error is reported, and the digest is not made noisy by it
    assert listing == RegionalListing(
        buckets=(),
        errors=(),
        not_offered=(
            "directory buckets in ap-east-2",
            "table buckets in ap-east-2",
            "vector buckets in ap-east-2",
        ),
    )


def test_one_region_s_refusal_never_hides_another_region_s_buckets(local: Emulator) -> None:
    directory = create_directory_bucket(local, unique("kept"))

    class RefusedInUsEast1:
        def list_directory_buckets(self, account: str | None, region: str) -> Any:
            if region == "us-east-1":
                raise ListingDenied("AccessDenied on s3express:ListAllMyDirectoryBuckets")
            return reader_for(local).list_directory_buckets(account, region)

        def list_table_buckets(self, account: str | None, region: str) -> Any:
            return reader_for(local).list_table_buckets(account, region)

        def list_vector_buckets(self, account: str | None, region: str) -> Any:
            return reader_for(local).list_vector_buckets(account, region)

    listing = list_regional(RefusedInUsEast1(), None, ["us-east-1", "eu-west-1"])

    assert directory.name in {bucket.name for bucket in listing.buckets}
    assert listing.errors == (
        "directory buckets in us-east-1 could not be listed: AccessDenied on "
        "s3express:ListAllMyDirectoryBuckets",
    )


def test_a_table_bucket_without_an_encryption_configuration_is_told_from_a_deleted_one() -> None:
    # Real S3 Tables answers NotFoundException both for a missing bucket and, per its API
    # reference, for a missing configuration: GetTableBucket tells them apart
    reader = S3Reader(AccountAccess(boto3.Session(region_name="eu-west-1")))
    bucket = BucketRef("lake", "123456789012", "eu-west-1", BucketKind.TABLE)
    stubber = Stubber(reader.tables_client("eu-west-1"))
    stubber.activate()
    arn = {"tableBucketARN": bucket.arn}
    summary = {
        "arn": bucket.arn,
        "name": "lake",
        "ownerAccountId": "123456789012",
        "createdAt": "2026-11-27T10:00:00Z",
    }

    def refuse(operation: str, code: str) -> None:
        status = 404 if code == "NotFoundException" else 403
        stubber.add_client_error(operation, code, http_status_code=status, expected_params=arn)

    refuse("get_table_bucket_encryption", "NotFoundException")
    stubber.add_response("get_table_bucket", summary, arn)
    refuse("get_table_bucket_encryption", "NotFoundException")
    refuse("get_table_bucket", "NotFoundException")
    refuse("get_table_bucket_encryption", "NotFoundException")
    refuse("get_table_bucket", "AccessDeniedException")

    # Exists, no configuration: S3 Tables' default, SSE-S3 (S3 User Guide, "Using SSE-KMS in
    # table buckets"), not "no encryption".
    assert reader.read_encryption(bucket).rules == (EncryptionRule("AES256"),)
    with pytest.raises(BucketVanished):
        reader.read_encryption(bucket)
    with pytest.raises(BucketUnreadable) as refused:
        reader.read_encryption(bucket)
    assert refused.value.permission == "s3tables:GetTableBucket"
    stubber.assert_no_pending_responses()


def test_a_listing_that_keeps_failing_is_reported_with_its_error_code() -> None:
    class Throttled:
        def list_directory_buckets(self, account: str | None, region: str) -> Any:
            raise ClientError(
                {"Error": {"Code": "SlowDown", "Message": "Reduce your request rate"}},
                "ListDirectoryBuckets",
            )

        def list_table_buckets(self, account: str | None, region: str) -> Any:
            return iter([ListedBucket("lake", region, BucketKind.TABLE)])

        def list_vector_buckets(self, account: str | None, region: str) -> Any:
            return iter([])

    listing = list_regional(Throttled(), None, ["eu-west-1"])

    assert listing.buckets == (ListedBucket("lake", "eu-west-1", BucketKind.TABLE),)
    assert listing.errors == ("directory buckets in eu-west-1 could not be listed: SlowDown",)


def test_a_directory_bucket_refuses_expected_bucket_owner_and_the_reader_never_sends_it(
    local: Emulator,
) -> None:
    # "For directory buckets, this header is not supported ... the request fails with the HTTP
    # status code 501 Not Implemented" (S3 API Reference, Get/PutBucketEncryption)
    directory = create_directory_bucket(local, unique("owner"))
    s3 = local.client("s3")
    configuration = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}

    for call in (
        lambda: s3.get_bucket_encryption(Bucket=directory.name, ExpectedBucketOwner=local.account),
        lambda: s3.put_bucket_encryption(
            Bucket=directory.name,
            ServerSideEncryptionConfiguration=configuration,
            ExpectedBucketOwner=local.account,
        ),
    ):
        with pytest.raises(ClientError) as refused:
            call()
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501

    reader = reader_for(local)
    EncryptionWriter(reader).put_encryption(_finding(directory), configuration)
    assert reader.read_encryption(directory).rules == (EncryptionRule("AES256"),)


def test_a_directory_bucket_keeps_its_first_customer_managed_key(local: Emulator) -> None:
    # "you can't override the customer managed key" (S3 User Guide, SSE-KMS in directory buckets)
    directory = create_directory_bucket(local, unique("one-key"))
    s3 = local.client("s3")
    first, second = (
        KEY.format(account=local.account),
        KEY.format(account=local.account).replace("1234abcd", "ffffffff"),
    )

    def put(key: str) -> None:
        s3.put_bucket_encryption(
            Bucket=directory.name,
            ServerSideEncryptionConfiguration={
                "Rules": [
                    {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms",
                                                            "KMSMasterKeyID": key}}
                ]
            },
        )  # fmt: skip

    put(first)
    put(first)  # the same key again is no change
    with pytest.raises(ClientError, match="InvalidArgument"):
        put(second)


def test_an_inactive_directory_bucket_is_unverifiable_not_a_failed_read(local: Emulator) -> None:
    # A directory bucket idle for 90 days answers 503 until reactivated (S3 User Guide, "Working
    # with directory buckets")
    directory = create_directory_bucket(local, unique("idle"))
    set_inactive(local, directory, inactive=True)
    reader = reader_for(local)

    with pytest.raises(BucketInactive):
        reader.read_encryption(directory)
    finding = assess(directory, Trigger(source="sweep"), Policy(), reader)

    assert finding.status is Status.UNVERIFIABLE
    assert [v.code for v in finding.violations] == [Code.BUCKET_INACTIVE]
    assert "90 days" in finding.violations[0].message
    assert "the directory bucket is inactive" in build_alert(finding, Policy()).email
    set_inactive(local, directory, inactive=False)
    assert reader.read_encryption(directory).rules == (EncryptionRule("AES256"),)


def set_inactive(emulator: Emulator, bucket: BucketRef, *, inactive: bool) -> None:
    request = urllib.request.Request(
        emulator.endpoint + INACTIVE_PATH,
        data=json.dumps(
            {"region": bucket.region, "name": bucket.name, "inactive": inactive}
        ).encode(),
        method="POST",
    )
    urllib.request.urlopen(request, timeout=5).close()


def test_a_store_without_other_kinds_lists_no_bucket_twice() -> None:
    # An S3-compatible store (MinIO, LocalStack, plain moto) answers ListDirectoryBuckets and
    # ListTableBuckets with its general buckets: none is a directory or table bucket.
    class Store:
        def list_directory_buckets(self, account: str | None, region: str) -> Any:
            yield ListedBucket("logs", region, BucketKind.DIRECTORY, "not --x-s3")
            yield ListedBucket("ok--euw1-az1--x-s3", region, BucketKind.DIRECTORY)

        def list_table_buckets(self, account: str | None, region: str) -> Any:
            yield ListedBucket("logs", region, BucketKind.TABLE, "no ARN")

        def list_vector_buckets(self, account: str | None, region: str) -> Any:
            yield ListedBucket("logs", region, BucketKind.VECTOR, "no ARN")

    listing = list_regional(Store(), ACCOUNT, ["eu-west-1"])

    assert [b.name for b in listing.buckets] == ["ok--euw1-az1--x-s3"]
    assert listing.errors == ()
    assert len(listing.skipped) == 3
    assert listing.skipped[0].startswith("1 entries listed as directory buckets in eu-west-1")
