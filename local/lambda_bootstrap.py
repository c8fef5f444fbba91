"""The inside of a local Lambda container: what Lambda's Python runtime does, stdlib only.

Started by ``local.lambda_runtime`` as ``python -I -S -B lambda_bootstrap.py ASSET LAYER...``: no
site packages, no user environment, no bytecode written (Lambda's /var/task and /opt are
read-only). The import path is ASSET (the function's code, /var/task on Lambda) first, then each
LAYER (the layers' ``python`` folders, /opt/python), then the interpreter's standard library:
Lambda's order (Lambda Developer Guide, "Working with .zip file archives for Python Lambda
functions", dependency search path).

The handler (``_HANDLER``) is imported once, as Lambda's init phase does; then each line on stdin
is one invocation and each line written to the protocol stream (the original stdout) its answer.
What the function prints (Powertools' JSON logs and EMF metrics) is captured and returned with
the answer; the AWS calls it makes are counted at botocore's call site.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import sys
import time
import uuid
from typing import Any


class Context:
    """The context object Lambda passes the handler."""

    def __init__(self, spec: dict[str, Any], deadline: float, remaining: list[int]) -> None:
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ["AWS_LAMBDA_FUNCTION_VERSION"]
        self.memory_limit_in_mb = int(os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"])
        self.log_group_name = os.environ["AWS_LAMBDA_LOG_GROUP_NAME"]
        self.log_stream_name = os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]
        self.invoked_function_arn = spec["invoked_function_arn"]
        self.aws_request_id = spec["aws_request_id"]
        self.identity = None
        self.client_context = None
        self._deadline = deadline
        self._remaining = remaining  # scripted answers, for tests of the time limit

    def get_remaining_time_in_millis(self) -> int:
        if self._remaining:
            return self._remaining.pop(0) if len(self._remaining) > 1 else self._remaining[0]
        return max(int((self._deadline - time.monotonic()) * 1000), 0)


class CallCounter:
    """The operations of every AWS call, counted where botocore makes it."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def install(self) -> None:
        client = sys.modules.get("botocore.client")
        if client is None:
            return  # the function imported no AWS SDK
        original = client.BaseClient._make_api_call
        counter = self

        def counting(self: Any, operation: str, params: Any) -> Any:
            counter.calls.append(operation)
            return original(self, operation, params)

        client.BaseClient._make_api_call = counting

    def take(self) -> list[str]:
        taken, self.calls = self.calls, []
        return taken


def _error(error: BaseException) -> dict[str, str]:
    return {"errorType": type(error).__name__, "errorMessage": str(error)}


def main() -> None:
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # stray writes to the file descriptor never reach the protocol
    captured = io.StringIO()
    sys.stdout = captured
    sys.path[:0] = sys.argv[1:]

    def answer(message: dict[str, Any]) -> None:
        message["logs"] = captured.getvalue()
        captured.seek(0)
        captured.truncate()
        protocol.write(json.dumps(message) + "\n")

    module_name, _, function_name = os.environ["_HANDLER"].rpartition(".")
    started, started_cpu = time.perf_counter(), time.process_time()
    handler = None
    init: dict[str, Any] = {"python": sys.version.split()[0]}
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
    except Exception as error:
        init["error"] = _error(error)
    init["initMs"] = (time.perf_counter() - started) * 1000
    init["initCpuMs"] = (time.process_time() - started_cpu) * 1000
    init["modules"] = sorted(sys.modules)
    # Where each top-level package was imported from: the asset, a layer or the stdlib.
    init["files"] = {
        name: str(getattr(module, "__file__", None))
        for name, module in sorted(sys.modules.items())
        if "." not in name
    }
    counter = CallCounter()
    counter.install()
    answer(init)

    timeout = int(os.environ["LOCAL_LAMBDA_TIMEOUT_SECONDS"])
    for line in sys.stdin:
        request = json.loads(line)
        os.environ["_X_AMZN_TRACE_ID"] = (
            f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};"
            "Sampled=1"
        )
        reply: dict[str, Any] = {}
        if handler is None:
            reply["error"] = {**init["error"], "errorType": "Runtime.ImportModuleError"}
        else:
            context = Context(
                request["context"], time.monotonic() + timeout, list(request.get("remaining", []))
            )
            try:
                response = handler(request["event"], context)
            except Exception as error:
                reply["error"] = _error(error)
            else:
                try:
                    reply["response"] = json.loads(json.dumps(response))
                except (TypeError, ValueError) as error:
                    reply["error"] = {**_error(error), "errorType": "Runtime.MarshalError"}
        reply["calls"] = counter.take()
        answer(reply)


if __name__ == "__main__":
    main()
