"""Directory and table buckets end to end (SPEC §12): their CloudTrail events through the
synthesized rule pattern to the function, the sweep and the scanner listing and judging both
kinds; on moto server with the emulated S3 Express control plane and S3 Tables
(local/other_buckets.py)."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from functions.drift_monitor.domain.models import BucketKind
from local.cloudtrail import s3_call_detail
from local.emulator import Emulator, moto_server
from local.pipeline import LocalPipeline, ReceivedAlert
from local.template import SynthesizedMonitor
from tests.e2e.conftest import SynthFactory
from tests.e2e.test_scanner import scan

pytestmark = pytest.mark.e2e

ACCOUNT = "123456789012"
KEY = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
POLICY = {"allowedAlgorithms": ["aws:kms"], "allowedKmsKeys": [KEY]}


@pytest.fixture(scope="module")
def monitor(synth: SynthFactory) -> SynthesizedMonitor:
    return synth(POLICY)


@pytest.fixture
def account() -> Iterator[Emulator]:
    """A moto server of its own: the sweep and the scanner list everything it holds."""
    with moto_server() as emulator:
        yield emulator


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def deliver(pipeline: LocalPipeline) -> tuple[list[Any], list[ReceivedAlert]]:
    function = pipeline.start_function()
    assert function.init_error is None, function.init_error
    invocations = pipeline.deliver(function)
    assert all(invocation.ok for invocation in invocations), invocations
    return invocations, pipeline.received_alerts()


def test_a_directory_bucket_drifts_and_is_fixed_through_its_own_events(
    monitor: SynthesizedMonitor, account: Emulator
) -> None:
    pipeline = LocalPipeline(monitor, account)
    s3 = pipeline.s3_in("eu-west-1")
    bucket = f"{unique('features')}--euw1-az1--x-s3"

    # Given a new directory bucket (S3 Express gives it SSE-S3), which the policy does not allow
    s3.create_directory_bucket(bucket)
    (created,), (alert,) = deliver(pipeline)

    # Then its CreateBucket (source aws.s3express) reached the function and it drifts
    assert created.response["status"] == "DRIFT"
    document = alert.document
    assert (document["bucket"], document["bucketKind"]) == (bucket, "directory")
    assert document["bucketArn"] == f"arn:aws:s3express:eu-west-1:{ACCOUNT}:bucket/{bucket}"
    assert [v["code"] for v in document["violations"]] == ["ALGORITHM_NOT_ALLOWED"]
    assert document["trigger"]["eventName"] == "CreateBucket"
    assert document["remediation"].startswith(f"aws s3api put-bucket-encryption --bucket {bucket}")

    # When the team puts SSE-KMS with the allowed key
    s3.put_directory_encryption(bucket, "aws:kms", KEY)
    (fixed,), (notice,) = deliver(pipeline)

    # Then one RESOLVED notice closes the drift
    assert fixed.response["status"] == "COMPLIANT"
    assert notice.document["status"] == "RESOLVED"
    assert notice.document["bucketKind"] == "directory"


def test_a_table_bucket_drifts_and_its_deletion_closes_the_drift(
    monitor: SynthesizedMonitor, account: Emulator
) -> None:
    pipeline = LocalPipeline(monitor, account)
    s3 = pipeline.s3_in("eu-west-1")
    drifting, fixed = unique("lake"), unique("lake")

    # Given two table buckets created with SSE-S3 (CreateTableBucket, source aws.s3tables)
    s3.create_table_bucket(drifting, "AES256")
    s3.create_table_bucket(fixed, "AES256")
    _, alerts = deliver(pipeline)
    assert sorted(a.document["bucket"] for a in alerts) == sorted([drifting, fixed])
    assert {a.document["bucketKind"] for a in alerts} == {"table"}
    (alert,) = [a for a in alerts if a.document["bucket"] == fixed]
    assert alert.subject == f"[DRIFT] table bucket {fixed} ({ACCOUNT}, eu-west-1)"
    assert alert.document["remediation"].startswith(
        "aws s3tables put-table-bucket-encryption --table-bucket-arn "
        f"arn:aws:s3tables:eu-west-1:{ACCOUNT}:bucket/{fixed}"
    )

    # When one gets the allowed key and the other is deleted
    s3.put_table_encryption(fixed, "aws:kms", KEY)
    s3.delete_table_bucket(drifting)
    _, notices = deliver(pipeline)

    # Then each drift closes with the outcome that closed it
    outcomes = {n.document["bucket"]: n.document["resolution"]["outcome"] for n in notices}
    assert outcomes == {fixed: "COMPLIANT", drifting: "VANISHED"}


def test_calls_of_other_kinds_that_change_no_encryption_are_not_routed(
    monitor: SynthesizedMonitor, account: Emulator
) -> None:
    pipeline = LocalPipeline(monitor, account)
    # CreateNamespace is a real S3 Tables call; it changes no bucket's encryption
    detail = s3_call_detail(
        "CreateNamespace", "lake", account=ACCOUNT, region="eu-west-1", kind=BucketKind.TABLE
    )
    pipeline.put_cloudtrail_event(detail)

    assert pipeline.delivered_events() == []


def test_the_sweep_lists_and_judges_every_kind(
    monitor: SynthesizedMonitor, account: Emulator
) -> None:
    # Given one directory, one table and one vector bucket, only the table bucket compliant
    pipeline = LocalPipeline(monitor, account)
    s3 = pipeline.s3_in("eu-west-1")
    directory = f"{unique('scratch')}--euw1-az1--x-s3"
    table = unique("lake")
    vector = unique("vectors")
    s3.create_directory_bucket(directory)
    s3.create_table_bucket(table, "aws:kms", KEY)
    s3.create_vector_bucket(vector)  # SSE-S3, fixed at creation

    # When the scheduled sweep runs
    invocations = pipeline.run_sweep()

    # Then the account's page and its directory, table and vector buckets were two work items
    assert all(invocation.ok for invocation in invocations), invocations
    assert len(invocations) == 3  # the starter, the listing page, the other kinds
    (digest,) = pipeline.received_alerts()
    findings = {entry["bucket"]: entry for entry in digest.document["findings"]}
    assert findings[directory]["bucketKind"] == "directory"
    assert findings[directory]["status"] == "DRIFT"
    assert (findings[vector]["bucketKind"], findings[vector]["status"]) == ("vector", "DRIFT")
    assert "create-vector-bucket" in findings[vector]["remediation"]
    assert table not in findings  # compliant: counted, not listed
    # and the report holds both, in the other kinds' own part
    report = pipeline.report_objects()
    (part,) = [key for key in report if key.endswith("/regional-000.jsonl")]
    lines = [json.loads(line) for line in report[part].decode().splitlines()]
    assert {(line["bucket"], line["bucketKind"], line["status"]) for line in lines} == {
        (directory, "directory", "DRIFT"),
        (table, "table", "COMPLIANT"),
        (vector, "vector", "DRIFT"),
    }


def test_the_scanner_lists_and_judges_every_kind(account: Emulator, tmp_path: Any) -> None:
    pipeline_s3 = account.client("s3")
    directory = f"{unique('scan')}--euw1-az1--x-s3"
    pipeline_s3.create_bucket(
        Bucket=directory,
        CreateBucketConfiguration={
            "Location": {"Type": "AvailabilityZone", "Name": "euw1-az1"},
            "Bucket": {"Type": "Directory", "DataRedundancy": "SingleAvailabilityZone"},
        },
    )
    table = unique("scan")
    account.client("s3tables").create_table_bucket(
        name=table, encryptionConfiguration={"sseAlgorithm": "aws:kms", "kmsKeyArn": KEY}
    )
    vector = unique("scan")
    account.client("s3vectors").create_vector_bucket(
        vectorBucketName=vector, encryptionConfiguration={"sseType": "aws:kms", "kmsKeyArn": KEY}
    )
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(POLICY))

    result = scan(account, "--format", "csv", "--policy", str(policy), "--region", "eu-west-1")

    # (a fix may be several lines: read as CSV, not line by line)
    rows = {row["bucket"]: row for row in csv.DictReader(io.StringIO(result.stdout))}
    assert (rows[directory]["kind"], rows[directory]["status"]) == ("directory", "DRIFT")
    assert (rows[table]["kind"], rows[table]["status"]) == ("table", "COMPLIANT")
    assert (rows[vector]["kind"], rows[vector]["status"]) == ("vector", "COMPLIANT")
    assert result.returncode == 1  # a drift
    # and the terminal table says the kind beside the name
    wide = {"COLUMNS": "250"}  # one row per line
    printed = scan(account, "--policy", str(policy), "--region", "eu-west-1", env=wide).stdout
    assert f"{directory} (directory)" in printed
    assert f"{table} (table)" in printed
    assert f"{vector} (vector)" in printed


def test_apply_remediates_a_directory_bucket_and_only_proposes_sse_kms_for_a_table_bucket(
    synth: SynthFactory, account: Emulator
) -> None:
    # Given remediation on, and a directory and a table bucket created with SSE-S3
    pipeline = LocalPipeline(synth(POLICY, remediation="apply"), account)
    s3 = pipeline.s3_in("eu-west-1")
    directory = f"{unique('auto')}--euw1-az1--x-s3"
    table = unique("auto")
    s3.create_directory_bucket(directory)
    s3.create_table_bucket(table, "AES256")

    # When their creations are evaluated
    invocations, messages = deliver(pipeline)

    # Then the directory bucket got the policy's key through its own API (without the
    # ExpectedBucketOwner it refuses) and one "remediated" notice
    assert [i.response["status"] for i in invocations] == ["COMPLIANT", "DRIFT"]
    by_bucket = {m.document["bucket"]: m.document for m in messages}
    assert by_bucket[directory]["resolution"]["remediatedAutomatically"] is True
    rules = account.client("s3").get_bucket_encryption(Bucket=directory)[
        "ServerSideEncryptionConfiguration"
    ]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": KEY,
    }
    # And the table bucket still drifts: its key policy must first let S3 Tables' maintenance use
    # the key (S3 User Guide), which the alert says, with the fix, instead of applying it
    table_alert = by_bucket[table]
    assert table_alert["status"] == "DRIFT"
    assert table_alert["autoRemediation"]["applied"] is False
    assert "maintenance.s3tables.amazonaws.com" in table_alert["autoRemediation"]["reason"]
    assert "maintenance.s3tables.amazonaws.com" in table_alert["remediation"]
    arn = f"arn:aws:s3tables:eu-west-1:{ACCOUNT}:bucket/{table}"
    configuration = account.client("s3tables").get_table_bucket_encryption(tableBucketARN=arn)
    assert configuration["encryptionConfiguration"] == {"sseAlgorithm": "AES256"}


def test_a_vector_bucket_and_an_index_with_its_own_key_are_judged_at_creation(
    monitor: SynthesizedMonitor, account: Emulator
) -> None:
    """§15: S3 Vectors' CreateVectorBucket and CreateIndex (source aws.s3vectors) are routed and
    judged; encryption is fixed at creation, so the fix is a new bucket."""
    pipeline = LocalPipeline(monitor, account)
    s3 = pipeline.s3_in("eu-west-1")
    bucket = unique("embeddings")
    other_key = account.client("kms").create_key()["KeyMetadata"]["Arn"]

    # Given a vector bucket created with the allowed key: compliant, nothing sent
    s3.create_vector_bucket(bucket, "aws:kms", KEY)
    (created,), alerts = deliver(pipeline)
    assert (created.response["status"], alerts) == ("COMPLIANT", [])

    # When an index is created with a key of its own that the policy does not allow
    s3.create_index(bucket, "chunks", "aws:kms", other_key)
    (indexed,), (alert,) = deliver(pipeline)

    # Then the bucket drifts, the index named, and the fix is to recreate
    assert indexed.response["status"] == "DRIFT"
    document = alert.document
    assert (document["bucketKind"], document["bucketArn"]) == (
        "vector",
        f"arn:aws:s3vectors:eu-west-1:{ACCOUNT}:bucket/{bucket}",
    )
    assert alert.subject.startswith(f"[DRIFT] vector bucket {bucket}")
    (violation,) = document["violations"]
    assert violation["code"] == "KMS_KEY_NOT_ALLOWED"
    assert violation["message"].startswith("Index chunks: ")
    assert document["observed"]["rules"][1]["scope"] == "index chunks"
    assert document["trigger"]["eventName"] == "CreateIndex"
    assert (
        "aws s3vectors create-vector-bucket --vector-bucket-name '<NEW-NAME>'"
        in (document["remediation"])
    )

    # When the index is deleted, the drift is resolved
    s3.delete_index(bucket, "chunks")
    (deleted,), (notice,) = deliver(pipeline)
    assert deleted.response["status"] == "COMPLIANT"
    assert notice.document["status"] == "RESOLVED"
