"""Adapters for the optional outputs beside SNS: AWS Security Hub and an EventBridge bus.

Each sends one call per alert or notice and raises when AWS reports the entry failed, so a
failed output fails the invocation like a failed publish (retried, then kept).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Protocol

from .asff import asff_finding

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient

EVENT_SOURCE = "s3-encryption-monitor"
DETAIL_TYPES = {
    "DRIFT": "S3 Encryption Drift",
    "UNVERIFIABLE": "S3 Encryption Unverifiable",
    "RESOLVED": "S3 Encryption Drift Resolved",
}


class OutputFailed(RuntimeError):
    """An output refused the alert or notice; the invocation fails so it is sent again."""


class Output(Protocol):
    def send(self, document: dict[str, Any], now: str) -> None: ...


class SecurityHubOutput:
    def __init__(self, client: Any, product_arn: str) -> None:
        self._client = client
        # arn:<partition>:securityhub:<region>:<account>:product/<account>/default
        _, _, _, self._region, self._account, _ = product_arn.split(":", 5)

    def send(self, document: dict[str, Any], now: str) -> None:
        finding = asff_finding(
            document, importer_account=self._account, importer_region=self._region, now=now
        )
        response = self._client.batch_import_findings(Findings=[finding])
        if response.get("FailedCount"):
            failed = response.get("FailedFindings") or [{}]
            raise OutputFailed(
                f"Security Hub refused finding {finding['Id']}: "
                f"{failed[0].get('ErrorCode')} {failed[0].get('ErrorMessage')}"
            )


class EventBusOutput:
    def __init__(self, client: EventBridgeClient, bus: str) -> None:
        self._client = client
        self._bus = bus

    def send(self, document: dict[str, Any], now: str) -> None:
        response = self._client.put_events(
            Entries=[
                {
                    "EventBusName": self._bus,
                    "Source": EVENT_SOURCE,
                    "DetailType": DETAIL_TYPES[document["status"]],
                    "Detail": json.dumps(document),
                    "Resources": [f"arn:aws:s3:::{document['bucket']}"],
                }
            ]
        )
        if response.get("FailedEntryCount"):
            entry = response["Entries"][0]
            raise OutputFailed(
                f"EventBridge refused the event: {entry.get('ErrorCode')} "
                f"{entry.get('ErrorMessage')}"
            )
