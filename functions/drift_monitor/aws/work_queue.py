"""Adapter around the sweep's work queue: work items in, one message each."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..domain.work import WorkItem

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


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
