"""The sweep's bookkeeping: work items as messages, the run's counts in DynamoDB (idempotent under
at-least-once delivery), and the report's JSON Lines and CSV."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from functions.drift_monitor.aws.run_store import ItemOutcome, RunStore
from functions.drift_monitor.aws.work_queue import WorkQueue
from functions.drift_monitor.domain.models import (
    BucketRef,
    Code,
    EncryptionRule,
    Finding,
    ObservedEncryption,
    Status,
    Trigger,
    Violation,
)
from functions.drift_monitor.domain.policy import Policy
from functions.drift_monitor.domain.work import InvalidWorkItem, WorkItem
from functions.drift_monitor.sweep.digest import digest_entry
from functions.drift_monitor.sweep.report import CSV_COLUMNS, csv_text, jsonl
from local.emulator import Emulator, create_run_table

ITEM = WorkItem("2026-11-27T06-00-00Z-abcd1234", "2026-11-27T06:00:00Z", "111111111111")


# -- work items ---------------------------------------------------------------------------------


def test_an_item_round_trips_and_knows_its_next_page_and_its_rest() -> None:
    following = ITEM.next_page("token-2")
    rest = following.resumed_after("bucket-0420")

    assert WorkItem.from_json(rest.to_json()) == rest
    assert (following.page, following.token, following.part) == (1, "token-2", 0)
    assert (rest.page, rest.token, rest.part, rest.after) == (1, "token-2", 1, "bucket-0420")
    assert rest.item_id == "111111111111/000001/001"
    # resumed without a bucket started, it keeps where it was
    assert rest.resumed_after(None).after == "bucket-0420"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("{not json", "not JSON"),
        ("[]", "not a JSON object"),
        ('{"run_id": "r", "started_at": "t", "account": "1", "x": 1}', "unknown field 'x'"),
        ('{"run_id": "r"}', "missing"),
        ('{"run_id": "r r", "started_at": "t", "account": "111111111111"}', "not a run id"),
        ('{"run_id": "r", "started_at": "", "account": "111111111111"}', "started_at"),
        ('{"run_id": "r", "started_at": "t", "account": "1111"}', "12-digit account id"),
        ('{"run_id": "r", "started_at": "t", "account": "111111111111", "page": -1}', "page"),
        ('{"run_id": "r", "started_at": "t", "account": "111111111111", "part": true}', "part"),
        ('{"run_id": "r", "started_at": "t", "account": "111111111111", "token": ""}', "token"),
    ],
)
def test_a_message_that_is_no_work_item_is_refused_saying_why(body: str, problem: str) -> None:
    with pytest.raises(InvalidWorkItem, match=problem):
        WorkItem.from_json(body)


# -- the run table ------------------------------------------------------------------------------


@pytest.fixture
def store(emulator: Emulator) -> Iterator[RunStore]:
    dynamodb = emulator.client("dynamodb")
    name = f"runs-{id(dynamodb)}"
    create_run_table(emulator, name)
    yield RunStore(dynamodb, name, clock=lambda: 1_000_000.0)
    dynamodb.delete_table(TableName=name)


OUTCOME = ItemOutcome(
    statuses={"COMPLIANT": 3, "DRIFT": 2}, violations={"ALGORITHM_NOT_ALLOWED": 2}
)


def test_a_run_counts_each_item_once_whatever_the_deliveries(store: RunStore) -> None:
    # Given a run over two accounts
    assert store.start(ITEM.run_id, ITEM.started_at, {"source": "sweep"}, accounts=2) is True
    assert store.start(ITEM.run_id, ITEM.started_at, {"source": "sweep"}, accounts=2) is False
    second = WorkItem(ITEM.run_id, ITEM.started_at, "222222222222")

    # When the first account's first page queues a second page, delivered twice
    assert store.add(ITEM.next_page("t")) is True
    assert store.add(ITEM.next_page("t")) is False
    assert store.complete(ITEM, OUTCOME) is True
    assert store.complete(ITEM, OUTCOME) is False

    # Then the run waits for the two items left, counting the first one once
    run = store.run(ITEM.run_id)
    assert run.pending == 2
    assert run.statuses == {"COMPLIANT": 3, "DRIFT": 2}
    assert store.is_done(ITEM) and not store.is_done(second)
    assert store.complete(ITEM.next_page("t"), OUTCOME)
    unreachable = ItemOutcome(error="could not assume arn:aws:iam::222222222222:role/R")
    assert store.complete(second, unreachable)
    run = store.run(ITEM.run_id)
    assert (run.pending, run.statuses, run.violations) == (
        0,
        {"COMPLIANT": 6, "DRIFT": 4},
        {"ALGORITHM_NOT_ALLOWED": 4},
    )
    accounts = {record.account: record for record in store.accounts(ITEM.run_id)}
    assert accounts["111111111111"].statuses == {"COMPLIANT": 6, "DRIFT": 4}
    assert accounts["222222222222"].error == unreachable.error
    assert run.trigger == {"source": "sweep"} and run.failed_items == 0


def test_one_worker_sends_the_digest_and_the_same_one_may_retry(store: RunStore) -> None:
    store.start(ITEM.run_id, ITEM.started_at, {}, accounts=1)

    assert store.claim_digest(ITEM.run_id, "a/000000/000") is True
    assert store.claim_digest(ITEM.run_id, "b/000000/000") is False
    assert store.claim_digest(ITEM.run_id, "a/000000/000") is True  # after its own failure
    store.finish(ITEM.run_id, "2026-11-27T06:03:00Z", "message-1")
    assert store.claim_digest(ITEM.run_id, "a/000000/000") is False  # sent: never twice
    assert store.run(ITEM.run_id).finished_at == "2026-11-27T06:03:00Z"


def test_a_failed_item_makes_the_run_incomplete_and_items_expire(
    store: RunStore, emulator: Emulator
) -> None:
    store.start(ITEM.run_id, ITEM.started_at, {}, accounts=1)

    store.complete(ITEM, ItemOutcome(error="page 0 failed after 3 attempts: SlowDown", failed=True))

    assert store.run(ITEM.run_id).failed_items == 1
    items = emulator.client("dynamodb").scan(TableName=store._table)["Items"]
    assert {int(item["expiresAt"]["N"]) for item in items} == {1_000_000 + 30 * 86_400}


# -- the report ---------------------------------------------------------------------------------


def finding(name: str, status: Status, rules: tuple[EncryptionRule, ...], *codes: Code) -> Finding:
    bucket = BucketRef(name, "111111111111", "eu-west-1")
    return Finding(
        bucket,
        status,
        ObservedEncryption(bucket, rules),
        tuple(Violation(code, "why") for code in codes),
        Trigger(source="sweep", event_time="2026-11-27T06:00:00Z", event_id="run-1"),
    )


def test_the_report_has_one_line_and_one_row_per_bucket() -> None:
    documents = [
        digest_entry(
            finding(
                "mixed",
                Status.DRIFT,
                (
                    EncryptionRule("aws:kms", "arn:aws:kms:eu-west-1:111111111111:key/k", True),
                    EncryptionRule("AES256", None, False, ("SSE-C",)),
                ),
                Code.ALGORITHM_NOT_ALLOWED,
                Code.SSE_C_NOT_BLOCKED,
            ),
            Policy(),
        ),
        digest_entry(finding("ledger", Status.COMPLIANT, (EncryptionRule("aws:kms"),)), Policy()),
    ]

    lines = [json.loads(line) for line in jsonl(documents).splitlines()]
    rows = list(csv.DictReader(io.StringIO(csv_text(documents))))

    assert lines == documents
    assert tuple(rows[0]) == CSV_COLUMNS
    mixed: dict[str, Any] = rows[0]
    assert mixed["violations"] == "ALGORITHM_NOT_ALLOWED|SSE_C_NOT_BLOCKED"
    assert mixed["algorithms"] == "aws:kms|AES256"
    assert mixed["kms_keys"] == "arn:aws:kms:eu-west-1:111111111111:key/k|"
    assert mixed["bucket_keys"] == "true|false"
    assert mixed["blocked_encryption_types"] == "|SSE-C"
    assert mixed["evaluated_at"] == "2026-11-27T06:00:00Z"
    assert mixed["remediation"].startswith("aws s3api put-bucket-encryption --bucket mixed")
    assert (rows[1]["status"], rows[1]["severity"], rows[1]["remediation"]) == (
        "COMPLIANT",
        "",
        "",
    )


# -- failures that are not duplicates propagate (the worker fails, the queue retries) --------------


def stubbed_store() -> tuple[RunStore, Stubber]:
    client = boto3.client("dynamodb", region_name="eu-west-1")
    stubber = Stubber(client)
    stubber.activate()
    return RunStore(client, "runs"), stubber


def test_a_throttled_start_or_claim_is_raised_not_taken_for_a_duplicate() -> None:
    store, stubber = stubbed_store()
    stubber.add_client_error("put_item", "ProvisionedThroughputExceededException", 400)
    stubber.add_client_error("update_item", "ProvisionedThroughputExceededException", 400)

    with pytest.raises(ClientError, match="ProvisionedThroughputExceeded"):
        store.start(ITEM.run_id, ITEM.started_at, {}, accounts=1)
    with pytest.raises(ClientError, match="ProvisionedThroughputExceeded"):
        store.claim_digest(ITEM.run_id, ITEM.item_id)


def test_a_transaction_conflict_is_raised_not_taken_for_a_duplicate() -> None:
    store, stubber = stubbed_store()
    stubber.add_client_error(
        "transact_write_items",
        "TransactionCanceledException",
        400,
        response_meta={},
        modeled_fields={"CancellationReasons": [{"Code": "TransactionConflict"}]},
    )

    with pytest.raises(ClientError, match="TransactionCanceled"):
        store.complete(ITEM, OUTCOME)


# -- the work queue -------------------------------------------------------------------------------


def test_work_items_go_ten_to_a_batch_and_a_refused_one_is_raised() -> None:
    client = boto3.client("sqs", region_name="eu-west-1")
    stubber = Stubber(client)
    queue = WorkQueue(client, "https://sqs.eu-west-1.amazonaws.com/111111111111/work")
    items = [WorkItem(ITEM.run_id, ITEM.started_at, f"{n:012d}") for n in range(12)]
    stubber.add_response("send_message_batch", {"Successful": [], "Failed": []})
    stubber.add_response("send_message_batch", {"Successful": [], "Failed": []})
    refused = {"Id": "0", "SenderFault": True, "Code": "InvalidParameterValue"}
    stubber.add_response("send_message_batch", {"Successful": [], "Failed": [refused]})
    stubber.activate()

    assert queue.send_all(items) == 12
    with pytest.raises(RuntimeError, match="SQS refused 1 work items"):
        queue.send_all(items[:1])
