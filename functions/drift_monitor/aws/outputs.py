"""Adapters for the optional outputs beside SNS: AWS Security Hub, an EventBridge bus and the
chat topic (§15).

Each sends one call per alert or notice and raises when AWS reports the entry failed, so a
failed output fails the invocation like a failed publish (retried, then kept).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from ..domain.asff import asff_finding
from ..domain.chat import chat_notification

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_sns import SNSClient

EVENT_SOURCE = "s3-encryption-monitor"
IMPORT_BATCH = 100  # findings per BatchImportFindings call
DETAIL_TYPES = {
    "DRIFT": "S3 Encryption Drift",
    "UNVERIFIABLE": "S3 Encryption Unverifiable",
    "RESOLVED": "S3 Encryption Drift Resolved",
}


class OutputFailed(RuntimeError):
    """An output refused the alert or notice; the invocation fails so it is sent again."""


class Output(Protocol):
    def send(self, document: dict[str, Any], now: str, *, created: bool = False) -> None:
        """``created``: the first message ever about this bucket."""


class SecurityHubOutput:
    def __init__(self, client: Any, product_arn: str) -> None:
        self._client = client
        # arn:<partition>:securityhub:<region>:<account>:product/<account>/default
        _, _, _, self._region, self._account, _ = product_arn.split(":", 5)

    def send(self, document: dict[str, Any], now: str, *, created: bool = False) -> None:
        self.send_many([(document, created)], now)

    def send_many(self, documents: Sequence[tuple[dict[str, Any], bool]], now: str) -> None:
        """A hundred findings per call, Security Hub's limit (a sweep page's open findings);
        each document with whether this import creates its finding."""
        findings = [
            asff_finding(
                document,
                importer_account=self._account,
                importer_region=self._region,
                now=now,
                created=created,
            )
            for document, created in documents
        ]
        for start in range(0, len(findings), IMPORT_BATCH):
            response = self._client.batch_import_findings(
                Findings=findings[start : start + IMPORT_BATCH]
            )
            if response.get("FailedCount"):
                failed = response.get("FailedFindings") or [{}]
                raise OutputFailed(
                    f"Security Hub refused finding {failed[0].get('Id')}: "
                    f"{failed[0].get('ErrorCode')} {failed[0].get('ErrorMessage')}"
                )


class EventBusOutput:
    def __init__(self, client: EventBridgeClient, bus: str) -> None:
        self._client = client
        self._bus = bus

    def send(self, document: dict[str, Any], now: str, *, created: bool = False) -> None:
        response = self._client.put_events(
            Entries=[
                {
                    "EventBusName": self._bus,
                    "Source": EVENT_SOURCE,
                    "DetailType": DETAIL_TYPES[document["status"]],
                    "Detail": json.dumps(document),
                    "Resources": [document["bucketArn"]],
                }
            ]
        )
        if response.get("FailedEntryCount"):
            entry = response["Entries"][0]
            raise OutputFailed(
                f"EventBridge refused the event: {entry.get('ErrorCode')} "
                f"{entry.get('ErrorMessage')}"
            )


class ChatOutput:
    """Each alert and notice as a custom notification on the chat topic, which Amazon Q
    Developer in chat applications delivers to the configured Slack and Teams channels."""

    def __init__(self, sns: SNSClient, topic_arn: str) -> None:
        self._sns = sns
        self._topic_arn = topic_arn

    def send(self, document: dict[str, Any], now: str, *, created: bool = False) -> None:
        self._sns.publish(TopicArn=self._topic_arn, Message=json.dumps(chat_notification(document)))
