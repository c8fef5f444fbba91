"""Adapters that send: alerts to SNS, unprocessable events to the failure queue, sweep work to
the work queue."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .alerts import Alert, message_body
from .work import WorkItem

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient


class AlertPublisher:
    def __init__(self, sns: SNSClient, topic_arn: str) -> None:
        self._sns = sns
        self._topic_arn = topic_arn

    def publish(self, alert: Alert) -> str:
        """One ``Publish``: the email text for email subscribers, the JSON document for the rest."""
        response = self._sns.publish(
            TopicArn=self._topic_arn,
            Subject=alert.subject,
            MessageStructure="json",
            Message=message_body(alert),
            MessageAttributes={
                name: {"DataType": "String", "StringValue": value}
                for name, value in alert.attributes.items()
            },
        )
        return response["MessageId"]


class FailureQueue:
    """Keeps events that can never succeed, exactly as they arrived, with the reason beside them."""

    def __init__(self, sqs: SQSClient, queue_url: str) -> None:
        self._sqs = sqs
        self._queue_url = queue_url

    def keep(self, event: Any, reason: str) -> str:
        response = self._sqs.send_message(
            QueueUrl=self._queue_url,
            MessageBody=json.dumps(event, default=repr),
            MessageAttributes={
                "reason": {"DataType": "String", "StringValue": reason[:1024]},
                "kind": {"DataType": "String", "StringValue": "INVALID_EVENT"},
            },
        )
        return response["MessageId"]


class WorkQueue:
    """The sweep's work items, one queue message each."""

    def __init__(self, sqs: SQSClient, queue_url: str) -> None:
        self._sqs = sqs
        self._queue_url = queue_url

    def send(self, item: WorkItem) -> None:
        self._sqs.send_message(QueueUrl=self._queue_url, MessageBody=item.to_json())

    def send_all(self, items: Iterable[WorkItem]) -> int:
        """Sends in batches of ten (SQS's limit); raises if SQS refused any of them."""
        pending = list(items)
        sent = 0
        for start in range(0, len(pending), 10):
            batch = pending[start : start + 10]
            response = self._sqs.send_message_batch(
                QueueUrl=self._queue_url,
                Entries=[
                    {"Id": str(index), "MessageBody": item.to_json()}
                    for index, item in enumerate(batch)
                ],
            )
            failed = response.get("Failed", [])
            if failed:
                raise RuntimeError(f"SQS refused {len(failed)} work items: {failed[0]}")
            sent += len(batch)
        return sent
