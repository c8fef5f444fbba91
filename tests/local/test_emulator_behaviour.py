"""What the emulator does because AWS documents it, each shown as it would fail without it."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

from botocore.exceptions import ClientError

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
