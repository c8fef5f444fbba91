"""The S3 adapter: every outcome of SPEC §4, in both moto's and real S3's shapes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from functions.drift_monitor.aws.credentials import RETRY_CONFIG, AccountAccess, sweep_config
from functions.drift_monitor.aws.s3_reader import S3Reader
from functions.drift_monitor.domain.errors import BucketUnreadable, BucketVanished, ListingDenied
from functions.drift_monitor.domain.models import BucketRef, EncryptionRule, ListedBucket
from local.emulator import Emulator

BUCKET = BucketRef("payments-ledger", "123456789012", "eu-west-1")
EXPECTED = {"Bucket": "payments-ledger", "ExpectedBucketOwner": "123456789012"}


@pytest.fixture
def reader() -> S3Reader:
    return S3Reader(AccountAccess(boto3.Session(region_name="eu-west-1")))


def _stub(reader: S3Reader) -> Stubber:
    stubber = Stubber(reader.client("eu-west-1"))
    stubber.activate()
    return stubber


def _rules(*rules: dict[str, Any]) -> dict[str, Any]:
    return {"ServerSideEncryptionConfiguration": {"Rules": list(rules)}}


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        # Real S3 since January 2023, and after DeleteBucketEncryption: SSE-S3.
        (
            _rules(
                {
                    "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
                    "BucketKeyEnabled": False,
                }
            ),
            (EncryptionRule("AES256"),),
        ),
        (
            _rules(
                {
                    "ApplyServerSideEncryptionByDefault": {
                        "SSEAlgorithm": "aws:kms",
                        "KMSMasterKeyID": "arn:aws:kms:eu-west-1:123456789012:alias/payments",
                    },
                    "BucketKeyEnabled": True,
                    "BlockedEncryptionTypes": {"EncryptionType": ["SSE-C"]},
                }
            ),
            (
                EncryptionRule(
                    "aws:kms", "arn:aws:kms:eu-west-1:123456789012:alias/payments", True, ("SSE-C",)
                ),
            ),
        ),
        (
            _rules(
                {
                    "ApplyServerSideEncryptionByDefault": {
                        "SSEAlgorithm": "aws:kms:dsse",
                        "KMSMasterKeyID": "k",
                    }
                }
            ),
            (EncryptionRule("aws:kms:dsse", "k", False, None),),
        ),
        # Object-level values must not crash the parser.
        (
            _rules({"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:fsx"}}),
            (EncryptionRule("aws:fsx"),),
        ),
        (
            _rules(
                {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}},
                {
                    "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"},
                    "BucketKeyEnabled": True,
                },
            ),
            (EncryptionRule("AES256"), EncryptionRule("aws:kms", None, True)),
        ),
    ],
    ids=["sse-s3", "kms-blocked-sse-c", "dsse", "fsx", "two-rules"],
)
def test_reads_every_rule(reader: S3Reader, response: dict[str, Any], expected: Any) -> None:
    stubber = _stub(reader)
    stubber.add_response("get_bucket_encryption", response, EXPECTED)

    observed = reader.read_encryption(BUCKET)

    assert observed.bucket == BUCKET
    assert observed.rules == expected
    stubber.assert_no_pending_responses()


def test_no_configuration_is_an_empty_rule_list(reader: S3Reader) -> None:
    # What moto returns for a new bucket and after DeleteBucketEncryption (real S3 did before 2023).
    stubber = _stub(reader)
    stubber.add_client_error(
        "get_bucket_encryption",
        "ServerSideEncryptionConfigurationNotFoundError",
        http_status_code=404,
    )

    assert reader.read_encryption(BUCKET).rules == ()


def test_a_vanished_bucket(reader: S3Reader) -> None:
    stubber = _stub(reader)
    stubber.add_client_error("get_bucket_encryption", "NoSuchBucket", http_status_code=404)

    with pytest.raises(BucketVanished):
        reader.read_encryption(BUCKET)


@pytest.mark.parametrize(
    ("code", "status"),
    [("AccessDenied", 403), ("AllAccessDisabled", 403), ("InvalidBucketOwner", 403)],
)
def test_access_denied_is_unreadable_not_unencrypted(
    reader: S3Reader, code: str, status: int
) -> None:
    stubber = _stub(reader)
    stubber.add_client_error("get_bucket_encryption", code, http_status_code=status)

    with pytest.raises(BucketUnreadable) as denied:
        reader.read_encryption(BUCKET)

    assert denied.value.permission == "s3:GetEncryptionConfiguration"
    assert denied.value.error_code == code


def test_other_errors_propagate(reader: S3Reader) -> None:
    stubber = _stub(reader)
    stubber.add_client_error("get_bucket_encryption", "InternalError", http_status_code=500)

    with pytest.raises(ClientError):
        reader.read_encryption(BUCKET)


def test_tags(reader: S3Reader) -> None:
    stubber = _stub(reader)
    stubber.add_response(
        "get_bucket_tagging",
        {"TagSet": [{"Key": "team", "Value": "payments"}, {"Key": "env", "Value": "prod"}]},
        EXPECTED,
    )
    stubber.add_client_error("get_bucket_tagging", "NoSuchTagSet", http_status_code=404)
    stubber.add_client_error("get_bucket_tagging", "AccessDenied", http_status_code=403)
    stubber.add_client_error("get_bucket_tagging", "NoSuchBucket", http_status_code=404)

    assert reader.read_tags(BUCKET) == {"team": "payments", "env": "prod"}
    assert reader.read_tags(BUCKET) == {}
    with pytest.raises(BucketUnreadable) as denied:
        reader.read_tags(BUCKET)
    assert denied.value.permission == "s3:GetBucketTagging"
    with pytest.raises(BucketVanished):
        reader.read_tags(BUCKET)


def test_one_client_per_region_reused(reader: S3Reader) -> None:
    first = reader.client("eu-west-1")

    assert reader.client("eu-west-1") is first
    assert reader.client("us-east-1") is not first
    assert reader.client("us-east-1").meta.region_name == "us-east-1"


def test_clients_created_from_many_threads_are_one_per_region(reader: S3Reader) -> None:
    regions = ["eu-west-1", "us-east-1", "ap-south-1", "eu-central-1"] * 8
    created: list[Any] = []
    start = threading.Barrier(len(regions))

    def create(region: str) -> None:
        start.wait()
        created.append(reader.client(region))

    threads = [threading.Thread(target=create, args=(region,)) for region in regions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len({id(client) for client in created}) == 4


# -- listing and location ----------------------------------------------------------------------


def test_listing_pages_with_continuation_tokens(reader: S3Reader) -> None:
    stubber = _stub(reader)
    stubber.add_response(
        "list_buckets",
        {
            "Buckets": [{"Name": "a-bucket", "BucketRegion": "eu-west-1"}],
            "ContinuationToken": "a-bucket",
        },
        {"MaxBuckets": 10_000},
    )
    stubber.add_response(
        "list_buckets",
        {"Buckets": [{"Name": "b-bucket"}]},  # no BucketRegion: as before 2024
        {"MaxBuckets": 10_000, "ContinuationToken": "a-bucket"},
    )

    listed = list(reader.list_buckets())

    assert listed == [ListedBucket("a-bucket", "eu-west-1"), ListedBucket("b-bucket", None)]
    stubber.assert_no_pending_responses()


def test_listing_pages_through_a_real_endpoint(emulator: Emulator) -> None:
    # Given eight buckets on moto server (whose ListBuckets pages like S3, see local/moto_server.py)
    session = boto3.Session(region_name="eu-west-1")
    s3 = session.client("s3", endpoint_url=emulator.endpoint)
    names = [f"paged-listing-{i}" for i in range(8)]
    for name in names:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    reader = S3Reader(AccountAccess(session, endpoint_url=emulator.endpoint))
    pages: list[int] = []
    reader.client("eu-west-1").meta.events.register(
        "after-call.s3.ListBuckets", lambda parsed, **_: pages.append(len(parsed["Buckets"]))
    )

    # When they are listed three at a time
    listed = [bucket for bucket in reader.list_buckets(page_size=3) if bucket.name in names]

    # Then every bucket comes once, with its region, over several pages
    assert sorted(bucket.name for bucket in listed) == names
    assert {bucket.region for bucket in listed} == {"eu-west-1"}
    assert len(pages) >= 3 and max(pages) == 3


def test_listing_denied(reader: S3Reader) -> None:
    stubber = _stub(reader)
    stubber.add_client_error("list_buckets", "AccessDenied", http_status_code=403)

    with pytest.raises(ListingDenied, match="s3:ListAllMyBuckets"):
        list(reader.list_buckets())


def test_other_listing_errors_propagate(reader: S3Reader) -> None:
    stubber = _stub(reader)
    stubber.add_client_error("list_buckets", "InternalError", http_status_code=500)

    with pytest.raises(ClientError):
        list(reader.list_buckets())


@pytest.mark.parametrize(
    ("constraint", "region"),
    [(None, "us-east-1"), ("", "us-east-1"), ("EU", "eu-west-1"), ("ap-south-1", "ap-south-1")],
)
def test_location(reader: S3Reader, constraint: str | None, region: str) -> None:
    stubber = _stub(reader)
    stubber.add_response(
        "get_bucket_location",
        {} if constraint is None else {"LocationConstraint": constraint},
        EXPECTED,
    )

    assert reader.locate(BUCKET) == region


@pytest.mark.parametrize(
    ("code", "status", "outcome"),
    [("AccessDenied", 403, BucketUnreadable), ("NoSuchBucket", 404, BucketVanished)],
)
def test_location_errors(reader: S3Reader, code: str, status: int, outcome: type) -> None:
    stubber = _stub(reader)
    stubber.add_client_error("get_bucket_location", code, http_status_code=status)

    with pytest.raises(outcome):
        reader.locate(BUCKET)


def test_sweep_config_has_a_connection_per_thread_and_adaptive_backoff() -> None:
    config = sweep_config(24)

    assert config.max_pool_connections == 24
    assert config.retries == {"mode": "adaptive", "total_max_attempts": 8}
    assert config.read_timeout == RETRY_CONFIG.read_timeout


# -- throttling and 5xx, through real HTTP: botocore's retries only run on the HTTP path -------

ENCRYPTION_XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<ServerSideEncryptionConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
<Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>aws:kms</SSEAlgorithm>
<KMSMasterKeyID>alias/payments</KMSMasterKeyID></ApplyServerSideEncryptionByDefault>
<BucketKeyEnabled>true</BucketKeyEnabled></Rule></ServerSideEncryptionConfiguration>"""
SLOW_DOWN = b"""<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"""


class _FlakyS3(BaseHTTPRequestHandler):
    failures_left = 0
    requests: list[str] = []  # noqa: RUF012 - reset per test by the fixture

    def do_GET(self) -> None:
        type(self).requests.append(self.path)
        if type(self).failures_left > 0:
            type(self).failures_left -= 1
            self._reply(503, SLOW_DOWN)
        else:
            self._reply(200, ENCRYPTION_XML)

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def flaky_s3() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FlakyS3)
    _FlakyS3.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _reader_for(endpoint: str, monkeypatch: pytest.MonkeyPatch, attempts: int) -> S3Reader:
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    # Fewer attempts than in production (RETRY_CONFIG) to keep the backoff short.
    config = Config(retries={"mode": "standard", "total_max_attempts": attempts})
    return S3Reader(AccountAccess(boto3.Session(region_name="eu-west-1")), config)


def test_production_retry_policy() -> None:
    assert RETRY_CONFIG.retries == {"mode": "standard", "total_max_attempts": 5}


def test_throttling_is_retried_with_backoff(flaky_s3: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _FlakyS3.failures_left = 2

    observed = _reader_for(flaky_s3, monkeypatch, attempts=3).read_encryption(BUCKET)

    assert observed.rules == (EncryptionRule("aws:kms", "alias/payments", True),)
    assert len(_FlakyS3.requests) == 3


def test_persistent_throttling_fails_after_the_retries(
    flaky_s3: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _FlakyS3.failures_left = 100

    with pytest.raises(ClientError) as failed:
        _reader_for(flaky_s3, monkeypatch, attempts=2).read_encryption(BUCKET)

    assert failed.value.response["Error"]["Code"] == "SlowDown"
    assert len(_FlakyS3.requests) == 2
