"""Adapters that send: alerts to SNS, unprocessable events to the failure queue."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient

    from ..domain.alerts import Alert


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
            Message=alert.message(),
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
