"""What the emulator does because AWS documents it, each shown as it would fail without it."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from local.emulator import Emulator, create_state_table


def test_concurrent_conditional_writes_to_one_item_let_exactly_one_through(
    emulator: Emulator,
) -> None:
    # DynamoDB: "Individual write operations such as UpdateItem are atomic" (Developer Guide,
    # "Best practices for handling concurrent updates in DynamoDB").
    table = f"atomic-{uuid.uuid4().hex[:8]}"
    create_state_table(emulator, table)
    dynamodb = emulator.client("dynamodb")

    def create(writer: int) -> bool:
        try:
            dynamodb.update_item(
                TableName=table,
                Key={"bucket": {"S": "one"}},
                UpdateExpression="SET writer = :w",
                ConditionExpression="attribute_not_exists(writer)",
                ExpressionAttributeValues={":w": {"N": str(writer)}},
            )
        except ClientError as error:
            assert error.response["Error"]["Code"] == "ConditionalCheckFailedException"
            return False
        return True

    with ThreadPoolExecutor(max_workers=16) as pool:
        created = list(pool.map(create, range(64)))

    assert created.count(True) == 1


def test_get_bucket_encryption_returns_the_blocked_encryption_types(emulator: Emulator) -> None:
    # "GetBucketEncryption ... also returns BucketKeyEnabled and BlockedEncryptionTypes" (S3 API
    # Reference); moto 5.2.5 stores them and leaves them out.
    s3 = emulator.client("s3")
    bucket = f"blocked-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    rule = {
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
        "BlockedEncryptionTypes": {"EncryptionType": ["SSE-C"]},
    }
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [rule]})

    (read,) = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]

    assert read["BlockedEncryptionTypes"] == {"EncryptionType": ["SSE-C"]}


def test_sse_kms_on_a_table_bucket_needs_a_key_arn(emulator: Emulator) -> None:
    # S3 Tables' EncryptionConfiguration: kmsKeyArn required with aws:kms (botocore s3tables)
    tables = emulator.client("s3tables")
    arn = tables.create_table_bucket(name=f"lake-{uuid.uuid4().hex[:8]}")["arn"]

    with pytest.raises(ClientError, match="BadRequestException"):
        tables.put_table_bucket_encryption(
            tableBucketARN=arn, encryptionConfiguration={"sseAlgorithm": "aws:kms"}
        )


def test_a_query_answers_the_same_document_as_moto_s_own_serializer(emulator: Emulator) -> None:
    # The emulator writes Query's answer as JSON directly (moto's serializer costs ~2 ms an item)
    # and projects the index's attributes by copying them (moto converts each item once per
    # projected attribute): the same answer, non-projected attributes left out all the same.
    items = [
        {
            "bucket": {"S": f"123456789012#eu-west-1#b-{n}"},
            "openKey": {"S": "123456789012#eu-west-1"},
            "status": {"S": "DRIFT"},
            "evaluatedAt": {"N": str(1_000 + n)},
            "violations": {"L": [{"S": "ALGORITHM_NOT_ALLOWED"}, {"S": "SSE_C_NOT_BLOCKED"}]},
            "fingerprint": {"S": f"f{n}"},
            "sweptStatus": {"S": "DRIFT"},
            "lastTrigger": {"S": '{"source": "sweep"}'},  # not in the index's projection
            "expiresAt": {"N": "1.50"},
        }
        for n in range(3)
    ]
    query = {
        "IndexName": "open",
        "KeyConditionExpression": "openKey = :o",
        "ExpressionAttributeValues": {":o": {"S": "123456789012#eu-west-1"}},
    }

    def answer(dynamodb: Any, table: str) -> dict[str, Any]:
        for item in items:
            dynamodb.put_item(TableName=table, Item=item)
        response = dynamodb.query(TableName=table, **query)
        response.pop("ResponseMetadata")
        return dict(response)

    served = answer(emulator.client("dynamodb"), state_table(emulator))
    with mock_aws():
        in_process = boto3.client("dynamodb", region_name="eu-west-1")

        class Local:
            def client(self, service: str) -> Any:
                return in_process

        create_state_table(Local(), "states")  # type: ignore[arg-type]
        assert served == answer(in_process, "states")
    assert served["Count"] == 3
    assert all("lastTrigger" not in item for item in served["Items"])


def state_table(emulator: Emulator) -> str:
    table = f"query-{uuid.uuid4().hex[:8]}"
    create_state_table(emulator, table)
    return table


def test_a_disabled_rule_matches_no_event(emulator: Emulator) -> None:
    # EventBridge API Reference, DisableRule: "A disabled rule won't match any events".
    events, sqs = emulator.client("events"), emulator.client("sqs")
    name = f"rule-{uuid.uuid4().hex[:8]}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    events.put_rule(Name=name, EventPattern=json.dumps({"source": [name]}), State="ENABLED")
    events.put_targets(Rule=name, Targets=[{"Id": "q", "Arn": arn["QueueArn"]}])

    def put_and_count() -> int:
        events.put_events(Entries=[{"Source": name, "DetailType": "t", "Detail": "{}"}])
        return len(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []))

    assert put_and_count() == 1
    events.disable_rule(Name=name)
    assert put_and_count() == 0
    events.enable_rule(Name=name)
    assert put_and_count() == 1


def test_a_rule_with_only_a_schedule_matches_no_event(emulator: Emulator) -> None:
    # EventBridge API Reference, PutRule: "Rules with ScheduleExpressions self-trigger based on
    # the given schedule"; events are matched by rules with an EventPattern.
    events, sqs = emulator.client("events"), emulator.client("sqs")
    name = f"schedule-{uuid.uuid4().hex[:8]}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    events.put_rule(Name=name, ScheduleExpression="rate(1 day)", State="ENABLED")
    events.put_targets(Rule=name, Targets=[{"Id": "q", "Arn": arn["QueueArn"]}])

    events.put_events(Entries=[{"Source": name, "DetailType": "t", "Detail": "{}"}])

    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages", []) == []


def test_s3_vectors_takes_encryption_at_creation_only_as_its_api_says(emulator: Emulator) -> None:
    """botocore s3vectors model and S3 User Guide, "Data protection and encryption in S3
    Vectors": sseType AES256 or aws:kms, kmsKeyArn a key ARN (no alias) needed for aws:kms, none
    given is SSE-S3, and an index without its own configuration has its bucket's."""
    vectors = emulator.client("s3vectors")
    name = f"vectors-{uuid.uuid4().hex[:8]}"
    alias = f"arn:aws:kms:eu-west-1:{emulator.account}:alias/platform"
    for refused in ({"sseType": "aws:kms"}, {"sseType": "aws:kms", "kmsKeyArn": alias},
                    {"sseType": "aws:kms:dsse"}):  # fmt: skip
        with pytest.raises(ClientError, match="ValidationException"):
            vectors.create_vector_bucket(vectorBucketName=name, encryptionConfiguration=refused)

    vectors.create_vector_bucket(vectorBucketName=name)
    vectors.create_index(
        vectorBucketName=name, indexName="inherits", dataType="float32", dimension=4,
        distanceMetric="cosine",
    )  # fmt: skip

    described = vectors.get_vector_bucket(vectorBucketName=name)["vectorBucket"]
    assert described["encryptionConfiguration"] == {"sseType": "AES256"}
    index = vectors.get_index(vectorBucketName=name, indexName="inherits")["index"]
    assert index["encryptionConfiguration"] == {"sseType": "AES256"}
    with pytest.raises(ClientError, match="ConflictException"):
        vectors.delete_vector_bucket(vectorBucketName=name)  # it still has an index
    with pytest.raises(ClientError, match="NotFoundException"):
        vectors.get_vector_bucket(vectorBucketName=f"{name}-missing")
