"""parse_event: real CloudTrail shapes in, a typed BucketChange out, or a precise refusal."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from functions.drift_monitor.domain.events import (
    FailedCall,
    InvalidEvent,
    NotABucket,
    parse_event,
    schedule_trigger,
)
from functions.drift_monitor.domain.models import BucketKind, BucketRef, Trigger

LoadEvent = Callable[[str], dict[str, Any]]


def test_current_cloudtrail_event(event_fixture: LoadEvent) -> None:
    change = parse_event(event_fixture("put-bucket-encryption.json"))

    assert change.bucket == BucketRef("payments-ledger", "123456789012", "eu-west-1")
    assert change.trigger == Trigger(
        source="cloudtrail",
        event_name="PutBucketEncryption",
        event_time="2026-11-20T10:15:30Z",
        event_id="3e2a6f3c-7d0b-4c59-9a61-4b1e0f3f2d11",
        actor="arn:aws:sts::123456789012:assumed-role/PlatformAdmin/alice",
        source_ip="203.0.113.24",
    )


def test_old_event_without_recipient_account_uses_the_envelope(event_fixture: LoadEvent) -> None:
    event = event_fixture("create-bucket-v1.03.json")
    assert "recipientAccountId" not in event["detail"]

    change = parse_event(event)

    assert change.bucket == BucketRef("legacy-archive", "123456789012", "us-east-1")
    assert change.trigger.actor == "arn:aws:iam::123456789012:user/bob"


def test_region_falls_back_to_the_envelope(event_fixture: LoadEvent) -> None:
    event = event_fixture("delete-bucket-encryption.json")
    del event["detail"]["awsRegion"]
    event["region"] = "ap-southeast-2"

    assert parse_event(event).bucket.region == "ap-southeast-2"


def test_an_aws_service_caller_is_named_by_its_type(event_fixture: LoadEvent) -> None:
    change = parse_event(event_fixture("create-bucket-by-aws-service.json"))

    assert change.trigger.actor == "AWSService"


def test_the_request_encryption_parameters_are_not_trusted(event_fixture: LoadEvent) -> None:
    # The event claims AES256; the change carries no encryption state at all, so the handler
    # must read the bucket.
    change = parse_event(event_fixture("put-bucket-encryption.json"))

    assert not hasattr(change, "rules")
    assert set(vars(change)) == {"bucket", "trigger"}


def test_a_failed_call_is_reported_as_such(event_fixture: LoadEvent) -> None:
    with pytest.raises(FailedCall) as failed:
        parse_event(event_fixture("put-bucket-encryption-access-denied.json"))

    assert failed.value.error_code == "AccessDenied"
    assert failed.value.event_name == "PutBucketEncryption"


def _mutate(path: list[str], value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(event: dict[str, Any]) -> None:
        target = event
        for key in path[:-1]:
            target = target[key]
        if value is _DELETE:
            del target[path[-1]]
        else:
            target[path[-1]] = value

    return apply


_DELETE = object()

INVALID = [
    ("no detail", _mutate(["detail"], _DELETE), "no 'detail'"),
    ("detail not an object", _mutate(["detail"], "text"), "no 'detail'"),
    (
        "no requestParameters",
        _mutate(["detail", "requestParameters"], _DELETE),
        "bucketName is missing",
    ),
    (
        "requestParameters null",
        _mutate(["detail", "requestParameters"], None),
        "bucketName is missing",
    ),
    ("no bucket name", _mutate(["detail", "requestParameters", "bucketName"], _DELETE), "missing"),
    ("empty bucket name", _mutate(["detail", "requestParameters", "bucketName"], ""), "missing"),
    (
        "bucket name not a string",
        _mutate(["detail", "requestParameters", "bucketName"], 7),
        "missing",
    ),
    (
        "bucket name with a slash",
        _mutate(["detail", "requestParameters", "bucketName"], "a/b"),
        "not a bucket name",
    ),
    (
        "bucket name too short",
        _mutate(["detail", "requestParameters", "bucketName"], "ab"),
        "not a bucket name",
    ),
    (
        "bucket name too long",
        _mutate(["detail", "requestParameters", "bucketName"], "a" * 256),
        "not a bucket name",
    ),
    (
        "bucket name with a space",
        _mutate(["detail", "requestParameters", "bucketName"], "my bucket"),
        "not a bucket name",
    ),
    (
        "no account anywhere",
        lambda e: (
            e["detail"].pop("recipientAccountId"),
            e.pop("account"),
            e["detail"].pop("resources"),
        ),
        "account",
    ),
    (
        "malformed account",
        lambda e: (
            e["detail"].__setitem__("recipientAccountId", "12345"),
            e["detail"].pop("resources"),
        ),
        "account",
    ),
    ("no region anywhere", lambda e: (e["detail"].pop("awsRegion"), e.pop("region")), "region"),
    ("malformed region", _mutate(["detail", "awsRegion"], "Europe"), "region"),
]


@pytest.mark.parametrize("raw", [None, "text", 42, ["a list"]], ids=["null", "str", "int", "list"])
def test_an_event_that_is_not_an_object_is_refused(raw: Any) -> None:
    with pytest.raises(InvalidEvent) as refused:
        parse_event(raw)

    assert "not a JSON object" in refused.value.reason


@pytest.mark.parametrize(
    "name", ["Legacy_Bucket.With.Capitals", "a-directory-bucket--usw2-az1--x-s3", "abc"]
)
def test_legacy_and_directory_bucket_names_are_accepted(
    event_fixture: LoadEvent, name: str
) -> None:
    event = event_fixture("put-bucket-encryption.json")
    event["detail"]["requestParameters"]["bucketName"] = name

    assert parse_event(event).bucket.name == name


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        (
            "put-directory-bucket-encryption.json",
            BucketRef(
                "ml-features--euw1-az1--x-s3", "123456789012", "eu-west-1", BucketKind.DIRECTORY
            ),
        ),
        (
            "put-table-bucket-encryption.json",
            BucketRef("analytics-lake", "123456789012", "eu-west-1", BucketKind.TABLE),
        ),
        (
            "create-table-bucket.json",  # names the bucket, not its ARN, in its request
            BucketRef("analytics-lake", "123456789012", "eu-west-1", BucketKind.TABLE),
        ),
        (
            "create-index.json",  # §15: S3 Vectors, naming the bucket by its ARN
            BucketRef("embeddings", "123456789012", "eu-west-1", BucketKind.VECTOR),
        ),
    ],
)
def test_directory_and_table_bucket_events_say_their_kind(
    event_fixture: LoadEvent, sample: str, expected: BucketRef
) -> None:
    change = parse_event(event_fixture(sample))

    assert change.bucket == expected
    assert change.trigger.event_id == event_fixture(sample)["detail"]["eventID"]


def test_a_vector_bucket_is_named_by_name_or_arn_and_a_bad_one_is_refused(
    event_fixture: LoadEvent,
) -> None:
    event = event_fixture("create-index.json")
    request = event["detail"]["requestParameters"]
    del request["vectorBucketArn"]
    request["vectorBucketName"] = "embeddings"
    assert parse_event(event).bucket.name == "embeddings"

    request["vectorBucketName"] = "Embeddings_2026"
    with pytest.raises(InvalidEvent, match="'Embeddings_2026' is not a name"):
        parse_event(event)
    request["vectorBucketArn"] = "arn:aws:s3:::embeddings"
    with pytest.raises(InvalidEvent, match="is not a vector bucket or index ARN"):
        parse_event(event)
    # a bucket of another account (through its bucket policy) is that account's
    request["vectorBucketArn"] = "arn:aws:s3vectors:eu-west-1:999988887777:bucket/embeddings"
    assert parse_event(event).bucket.account == "999988887777"
    # but never of another region than the one the call was made in
    request["vectorBucketArn"] = "arn:aws:s3vectors:us-east-1:999988887777:bucket/embeddings"
    with pytest.raises(InvalidEvent, match="is not in account 999988887777 and region eu-west-1"):
        parse_event(event)


def test_a_directory_bucket_name_is_a_directory_bucket_whatever_the_source(
    event_fixture: LoadEvent,
) -> None:
    event = event_fixture("put-bucket-encryption.json")
    event["detail"]["requestParameters"]["bucketName"] = "logs--use1-az4--x-s3"

    assert parse_event(event).bucket.kind is BucketKind.DIRECTORY


def test_a_table_bucket_without_its_arn_is_found_in_the_event_resources(
    event_fixture: LoadEvent,
) -> None:
    event = event_fixture("put-table-bucket-encryption.json")
    del event["detail"]["requestParameters"]["tableBucketARN"]

    assert parse_event(event).bucket.name == "analytics-lake"


TABLE_INVALID = [
    (
        "not a table bucket ARN",
        _mutate(["detail", "requestParameters", "tableBucketARN"], "arn:aws:s3:::analytics-lake"),
        "is not a table bucket ARN",
    ),
    (
        "name with capitals",
        _mutate(
            ["detail", "requestParameters", "tableBucketARN"],
            "arn:aws:s3tables:eu-west-1:123456789012:bucket/Analytics",
        ),
        "is not a table bucket ARN",
    ),
    (
        "another account's ARN",
        _mutate(
            ["detail", "requestParameters", "tableBucketARN"],
            "arn:aws:s3tables:eu-west-1:210987654321:bucket/analytics-lake",
        ),
        "is not in account 123456789012",
    ),
    (
        "no ARN and no name",
        lambda e: (e["detail"].pop("requestParameters"), e["detail"].pop("resources")),
        "neither tableBucketARN nor name",
    ),
    (
        "unknown event source",
        _mutate(["detail", "eventSource"], "s3outposts.amazonaws.com"),
        "is not S3, S3 Express, S3 Tables or S3 Vectors",
    ),
]


# Each refusal, on the sample event it breaks: an S3 one, or an S3 Tables one.
REFUSED = [
    *[("put-bucket-encryption.json", *case) for case in INVALID],
    *[("put-table-bucket-encryption.json", *case) for case in TABLE_INVALID],
]


@pytest.mark.parametrize(
    ("sample", "mutate", "reason"),
    [(c[0], *c[2:]) for c in REFUSED],
    ids=[c[1] for c in REFUSED],
)
def test_events_that_can_never_succeed_are_refused_with_a_reason(
    event_fixture: LoadEvent, sample: str, mutate: Callable[[dict[str, Any]], Any], reason: str
) -> None:
    event = copy.deepcopy(event_fixture(sample))
    mutate(event)

    with pytest.raises(InvalidEvent) as refused:
        parse_event(event)

    assert reason in refused.value.reason


def test_a_create_table_bucket_with_a_bad_name_is_refused(event_fixture: LoadEvent) -> None:
    event = event_fixture("create-table-bucket.json")
    event["detail"]["requestParameters"]["name"] = "Bad_Name"
    del event["detail"]["resources"]

    with pytest.raises(InvalidEvent, match="is not a table bucket name"):
        parse_event(event)


def test_the_sweep_trigger_comes_from_the_schedule_event(event_fixture: LoadEvent) -> None:
    trigger = schedule_trigger(event_fixture("scheduled-sweep.json"))

    assert trigger == Trigger(
        source="sweep",
        event_time="2026-11-26T06:00:00Z",
        event_id="53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
    )


@pytest.mark.parametrize("raw", [{}, None, "run", {"time": 42}])
def test_a_manual_sweep_invocation_still_sweeps(raw: Any) -> None:
    assert schedule_trigger(raw) == Trigger(source="sweep")


def test_the_bucket_owner_comes_from_resources_not_from_the_caller_s_copy(
    event_fixture: LoadEvent,
) -> None:
    # CloudTrail delivers a cross-account call to the caller's account too, recipientAccountId
    # being the caller's; resources[] names the bucket's account (CloudTrail User Guide)
    event = event_fixture("put-bucket-encryption.json")
    event["detail"]["recipientAccountId"] = event["account"] = "999988887777"

    assert parse_event(event).bucket.account == "123456789012"


def test_without_resources_the_recipient_account_is_the_owner(event_fixture: LoadEvent) -> None:
    event = event_fixture("put-bucket-encryption.json")
    del event["detail"]["resources"]
    event["detail"]["recipientAccountId"] = "999988887777"

    assert parse_event(event).bucket.account == "999988887777"


@pytest.mark.parametrize(
    ("arn", "bucket"),
    [
        ("arn:aws:s3:::payments-ledger", BucketRef("payments-ledger", "123456789012", "eu-west-1")),
        (
            "arn:aws:s3express:eu-west-1:123456789012:bucket/ml--euw1-az1--x-s3",
            BucketRef("ml--euw1-az1--x-s3", "123456789012", "eu-west-1", BucketKind.DIRECTORY),
        ),
        ("arn:aws-cn:s3:::cn-ledger", BucketRef("cn-ledger", "123456789012", "eu-west-1")),
    ],
    ids=["general purpose", "directory", "another partition"],
)
def test_s3_control_tagging_names_the_bucket_by_arn(
    event_fixture: LoadEvent, arn: str, bucket: BucketRef
) -> None:
    event = event_fixture("tag-resource.json")
    event["detail"]["requestParameters"]["resourceArn"] = arn

    change = parse_event(event)

    assert change.bucket == bucket
    assert change.trigger.event_name == "UntagResource"


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:s3:eu-west-1:123456789012:accesspoint/reports",
        "arn:aws:s3:eu-west-1:123456789012:storage-lens-group/slg",
    ],
)
def test_s3_control_tagging_of_anything_but_a_bucket_is_not_about_a_bucket(
    event_fixture: LoadEvent, arn: str
) -> None:
    event = event_fixture("tag-resource.json")
    event["detail"]["requestParameters"]["resourceArn"] = arn

    with pytest.raises(NotABucket):
        parse_event(event)


def test_s3_control_tagging_without_an_arn_is_refused(event_fixture: LoadEvent) -> None:
    event = event_fixture("tag-resource.json")
    del event["detail"]["requestParameters"]["resourceArn"]

    with pytest.raises(InvalidEvent, match="resourceArn is missing"):
        parse_event(event)


@pytest.mark.parametrize(
    "region", ["eusc-de-east-1", "cn-north-1", "us-gov-west-1", "us-isob-east-1"]
)
def test_every_partition_s_regions_are_regions(event_fixture: LoadEvent, region: str) -> None:
    event = event_fixture("put-bucket-encryption.json")
    event["detail"]["awsRegion"] = region

    assert parse_event(event).bucket.region == region
