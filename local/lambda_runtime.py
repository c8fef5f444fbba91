"""Runs a function from ``cdk.out`` as Lambda runs it (SPEC §13), out of this process.

A ``LambdaContainer`` is one warm container: a fresh interpreter of the runtime's Python version
(``infra.asset.RUNTIME_VERSION``, found as the bytecode step finds it; without one, this
interpreter stands in and ``LambdaRuntime.description`` says so), isolated from this machine's
site-packages (``-I -S``), writing no bytecode, whose import path is the function's asset first,
then the pinned Powertools layer's contents, then the standard library. Its environment is the
template's plus what Lambda sets (``_HANDLER``, ``LAMBDA_TASK_ROOT``, the function's name,
memory and region, and a trace id per invocation: active tracing as deployed). The handler
module is imported once (the init phase, timed), then each ``invoke`` is one invocation.

The Powertools layer's contents are installed from hashes (``local/powertools-layer.lock``) with
the container's interpreter into ``.tools/powertools-layer/``, once per lock and Python version.

Usage: python -m local.lambda_runtime  (installs the layer folder and says which Python runs
the functions; ``make setup`` does this)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import uuid
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import IO, Any

from infra.asset import RUNTIME_VERSION, runtime_python

from .function import Invocation, LogCapture

REPO = Path(__file__).resolve().parent.parent
BOOTSTRAP = Path(__file__).resolve().parent / "lambda_bootstrap.py"
LAYER_LOCK = Path(__file__).resolve().parent / "powertools-layer.lock"
LAYERS = REPO / ".tools" / "powertools-layer"
# Lambda's own address for the X-Ray daemon is 169.254.79.129:2000; here nothing may leave the
# machine, so whatever would send trace segments sends them to loopback.
XRAY_DAEMON = "127.0.0.1:2000"
# How long an invocation may run past the function's timeout before the container is killed.
KILL_MARGIN_SECONDS = 30


class RuntimeSetupError(RuntimeError):
    """The layer folder could not be installed."""


@dataclass(frozen=True)
class LambdaRuntime:
    interpreter: str
    version: str  # e.g. 3.13.0
    layer: Path  # the folder Lambda would mount as /opt/python

    @property
    def exact(self) -> bool:
        """Whether this is the runtime's own Python version."""
        return tuple(int(part) for part in self.version.split(".")[:2]) == RUNTIME_VERSION

    @property
    def description(self) -> str:
        wanted = "{}.{}".format(*RUNTIME_VERSION)
        if self.exact:
            return f"Python {self.version} ({self.interpreter}), the functions' runtime version"
        return (
            f"Python {self.version} ({self.interpreter}): no Python {wanted} on this machine, "
            f"so this one stands in for the functions' runtime python{wanted}"
        )


@cache
def lambda_runtime() -> LambdaRuntime:
    """The interpreter the containers run, and the layer folder installed for it."""
    interpreter = runtime_python() or sys.executable
    version = subprocess.run(
        [interpreter, "-I", "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return LambdaRuntime(interpreter, version, powertools_layer(interpreter, version))


def powertools_layer(interpreter: str, version: str, lock: Path = LAYER_LOCK) -> Path:
    """The layer's ``python`` folder for ``interpreter``, installed from ``lock`` if missing."""
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()[:12]
    target = LAYERS / f"python{version}-{digest}"
    folder = target / "python"
    if folder.is_dir():
        return folder
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    done = subprocess.run(
        [interpreter, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--no-input", "--require-hashes", "--no-deps", "--only-binary", ":all:",
         "--target", str(staging / "python"), "-r", str(lock)],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeSetupError(f"installing {lock.name} failed: {done.stderr.strip()[-2000:]}")
    try:
        staging.rename(target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)  # another process installed it meanwhile
    return folder


def function_name_of(function_arn: str) -> str:
    return function_arn.split(":")[6]


def region_of(function_arn: str) -> str:
    return function_arn.split(":")[3]


class LambdaContainer:
    """One container of a function: its init phase at construction, then invocations."""

    def __init__(
        self,
        asset_dir: Path,
        handler: str,
        environment: Mapping[str, str],
        *,
        function_arn: str,
        timeout_seconds: int,
        memory_mb: int = 128,
        runtime: LambdaRuntime | None = None,
        task_root_set: bool = True,
        folders: Sequence[Path] = (),
        on_invoked: Callable[[Invocation], None] | None = None,
    ) -> None:
        """``folders`` come after the layer on the import path (the bench's baseline module);
        ``task_root_set`` False leaves out LAMBDA_TASK_ROOT, which only Lambda sets: an asset
        must import without it too (a shipped library may behave otherwise outside Lambda).
        ``on_invoked`` sees every invocation (the local Lambda service counts them)."""
        self._on_invoked = on_invoked
        self.runtime = runtime or lambda_runtime()
        self.asset_dir = asset_dir
        self.handler = handler
        self.function_arn = function_arn
        self.timeout_seconds = timeout_seconds
        self.logs = LogCapture()
        name = function_name_of(function_arn)
        region = region_of(function_arn)
        lambda_environment = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "_HANDLER": handler,
            "AWS_EXECUTION_ENV": "AWS_Lambda_python{}.{}".format(*RUNTIME_VERSION),
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"local/[$LATEST]{uuid.uuid4().hex}",
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            # Active tracing (as deployed): Lambda sets these and a trace id per invocation.
            "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
            "AWS_XRAY_DAEMON_ADDRESS": XRAY_DAEMON,
            "LOCAL_LAMBDA_TIMEOUT_SECONDS": str(timeout_seconds),
        }
        if task_root_set:
            lambda_environment["LAMBDA_TASK_ROOT"] = str(asset_dir)
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed with the container
        self._process = subprocess.Popen(
            [self.runtime.interpreter, "-I", "-S", "-B", str(BOOTSTRAP),
             str(asset_dir), str(self.runtime.layer), *map(str, folders)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env={**lambda_environment, **environment},
            text=True,
            bufsize=1,
        )  # fmt: skip
        self._answers: queue.Queue[str | None] = queue.Queue()
        assert self._process.stdout is not None
        threading.Thread(
            target=_read_lines, args=(self._process.stdout, self._answers), daemon=True
        ).start()
        self._finalizer = weakref.finalize(self, _stop, self._process, self._stderr)
        self._lock = threading.Lock()
        init = self._answer(timeout_seconds + KILL_MARGIN_SECONDS)
        self.python = str(init.get("python", ""))
        self.init_ms = float(init.get("initMs", 0.0))
        self.init_cpu_ms = float(init.get("initCpuMs", 0.0))  # steadier on a busy machine
        self.modules = frozenset(init.get("modules", ()))
        self.files: dict[str, str] = dict(init.get("files", {}))
        error = init.get("error")
        self.init_error = (
            None if error is None else f"{error['errorType']}: {error['errorMessage']}"
        )

    def invoke(self, event: Any, *, remaining_ms: Sequence[int] = ()) -> Invocation:
        """One invocation; ``remaining_ms``: what ``context.get_remaining_time_in_millis()``
        answers in turn (the last one repeated), instead of the time left before the timeout."""
        request = {
            "event": event,
            "context": {
                "invoked_function_arn": self.function_arn,
                "aws_request_id": str(uuid.uuid4()),
            },
            "remaining": list(remaining_ms),
        }
        with self._lock:
            stdin = self._process.stdin
            assert stdin is not None
            try:
                stdin.write(json.dumps(request) + "\n")
                stdin.flush()
            except OSError:
                return Invocation(event=event, error=f"Container exited: {self._stderr_tail()}")
            reply = self._answer(self.timeout_seconds + KILL_MARGIN_SECONDS)
        calls = tuple(reply.get("calls", ()))
        error = reply.get("error")
        if error is not None:
            invocation = Invocation(event=event, error=_describe(error), calls=calls)
        else:
            invocation = Invocation(event=event, response=reply.get("response"), calls=calls)
        if self._on_invoked is not None:
            self._on_invoked(invocation)
        return invocation

    def _answer(self, timeout: float) -> dict[str, Any]:
        try:
            line = self._answers.get(timeout=timeout)
        except queue.Empty:
            self.close()
            return {"error": {"errorType": "Runtime.Timeout", "errorMessage": "Task timed out"}}
        if line is None:
            return {
                "error": {"errorType": "Runtime.ExitError", "errorMessage": self._stderr_tail()}
            }
        answer: dict[str, Any] = json.loads(line)
        self.logs.add(str(answer.pop("logs", "")))
        return answer

    def _stderr_tail(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace").strip()[-2000:] or "no output"

    def log_records(self) -> list[dict[str, Any]]:
        return self.logs.records()

    def metrics(self) -> dict[str, float]:
        return self.logs.metrics()

    def close(self) -> None:
        self._finalizer()

    def __enter__(self) -> LambdaContainer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _describe(error: Mapping[str, str]) -> str:
    return f"{error['errorType']}: {error['errorMessage']}"


def _read_lines(stream: IO[str], answers: queue.Queue[str | None]) -> None:
    for line in stream:
        answers.put(line)
    answers.put(None)  # the container exited


def _stop(process: subprocess.Popen[str], stderr: IO[bytes]) -> None:
    if process.stdin is not None:
        with contextlib.suppress(OSError):  # already gone
            process.stdin.close()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    stderr.close()


def main() -> int:
    print(lambda_runtime().description)
    print(f"Powertools layer folder: {lambda_runtime().layer.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
