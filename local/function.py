"""A handler imported into this process, for unit tests of the handler modules; and what every
way of running a function shares: invocations, captured logs and metrics, an SQS event source.

``LocalFunction`` imports the handler from a folder into the test process (its libraries are this
environment's, not Lambda's): a unit test's harness. Everything that proves the deployed monitor
(the end-to-end tests, the demo, the bench) runs functions through ``local.lambda_runtime``
instead, as Lambda runs them. One ``LocalFunction`` is one warm container: the module is imported
once (the cold start) and each ``invoke`` calls the handler. Its stdout (Powertools' JSON logs
and EMF metrics) is captured.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import logging
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

LOCAL_FUNCTION_NAME = "S3EncryptionDriftMonitor-local"


@dataclass
class LambdaContext:
    invoked_function_arn: str
    timeout_seconds: int
    function_name: str = LOCAL_FUNCTION_NAME
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = f"/aws/lambda/{LOCAL_FUNCTION_NAME}"
    log_stream_name: str = "local"
    started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        elapsed = time.monotonic() - self.started
        return max(int((self.timeout_seconds - elapsed) * 1000), 0)


@dataclass(frozen=True)
class Invocation:
    event: Any
    response: Any = None
    error: str | None = None
    calls: tuple[str, ...] = ()  # the AWS operations the invocation called, in order

    @property
    def ok(self) -> bool:
        return self.error is None


class Invocable(Protocol):
    def invoke(self, event: Any) -> Invocation: ...


class LogCapture:
    """What a function printed: Powertools' JSON log records and EMF metrics, among other lines."""

    def __init__(self) -> None:
        self._text = io.StringIO()

    def add(self, text: str) -> None:
        self._text.write(text)

    def records(self) -> list[dict[str, Any]]:
        records = []
        for line in self._text.getvalue().splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                record = json.loads(line)
                if isinstance(record, dict):
                    records.append(record)
        return records

    def metrics(self) -> dict[str, float]:
        """The EMF metrics the function printed, summed by name."""
        totals: dict[str, float] = {}
        for record in self.records():
            if "_aws" in record:
                for metric in record["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                    name = metric["Name"]
                    totals[name] = totals.get(name, 0) + sum(record[name])
        return totals


@contextlib.contextmanager
def _patched_environ(values: Mapping[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


class LocalFunction:
    def __init__(
        self,
        asset_dir: Path,
        handler: str,
        environment: Mapping[str, str],
        *,
        function_arn: str,
        timeout_seconds: int,
    ) -> None:
        self.asset_dir = asset_dir
        self.environment = dict(environment)
        self.function_arn = function_arn
        self.timeout_seconds = timeout_seconds
        self.module_name, _, self.function_name = handler.rpartition(".")
        self.logs = LogCapture()
        self._output = io.StringIO()
        self._handler: Callable[[Any, LambdaContext], Any] | None = None
        self.init_error: str | None = None
        self._start()

    def _start(self) -> None:
        # A new container: nothing of an earlier import survives, including the stdlib loggers
        # that Powertools configured once per service (their handlers wrote to the old stdout).
        package = self.module_name.split(".")[0]
        for name in [n for n in sys.modules if n == package or n.startswith(f"{package}.")]:
            del sys.modules[name]
        for configured in list(logging.Logger.manager.loggerDict.values()):
            if isinstance(configured, logging.Logger) and hasattr(configured, "powertools_handler"):
                configured.handlers.clear()
                for attribute in [a for a in vars(configured) if a.startswith("powertools_")]:
                    delattr(configured, attribute)
                configured.__dict__.pop("init", None)
        sys.path.insert(0, str(self.asset_dir))
        try:
            with _patched_environ(self.environment), contextlib.redirect_stdout(self._output):
                module: ModuleType = importlib.import_module(self.module_name)
            self._handler = getattr(module, self.function_name)
        except Exception as error:
            self.init_error = f"{type(error).__name__}: {error}"
        finally:
            sys.path.remove(str(self.asset_dir))
            self._collect()

    def _collect(self) -> None:
        self.logs.add(self._output.getvalue())
        self._output.seek(0)
        self._output.truncate()

    def invoke(self, event: Any, context: Any = None) -> Invocation:
        """One invocation; ``context`` replaces the LambdaContext Lambda would pass."""
        if self._handler is None:
            return Invocation(event=event, error=f"Init failed: {self.init_error}")
        try:
            with _patched_environ(self.environment), contextlib.redirect_stdout(self._output):
                context = context or LambdaContext(self.function_arn, self.timeout_seconds)
                response = self._handler(event, context)
        except Exception as error:
            return Invocation(event=event, error=f"{type(error).__name__}: {error}")
        finally:
            self._collect()
        return Invocation(event=event, response=response)

    def log_records(self) -> list[dict[str, Any]]:
        return self.logs.records()

    def metrics(self) -> dict[str, float]:
        return self.logs.metrics()


def feed_from_queue(
    function: Invocable, sqs: Any, queue_url: str, region: str, limit: int = 10_000
) -> list[Invocation]:
    """Lambda's SQS event source mapping, batch size 1, until the queue is empty: a message the
    function reports failed becomes visible again at once (its visibility timeout, shortened), and
    the queue's redrive policy moves it to the dead-letter queue after its last receive."""
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    invocations: list[Invocation] = []
    while len(invocations) < limit:
        messages = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=1,
            WaitTimeSeconds=0,
            MessageSystemAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return invocations
        (message,) = messages
        invocation = function.invoke(sqs_event(message, queue_arn, region))
        invocations.append(invocation)
        if not invocation.ok or invocation.response.get("batchItemFailures"):
            sqs.change_message_visibility(
                QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
        else:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    raise RuntimeError(f"the queue did not empty after {limit} invocations")


def sqs_event(message: Mapping[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda's SQS event source mapping passes for one message."""
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": dict(message.get("Attributes", {})),
                "messageAttributes": {},
                "md5OfBody": message.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
        ]
    }
