"""``make bench`` (SPEC §9): ratios measured in one run, raw figures in bench-results.json.

- sweep throughput over 1,000 buckets (half compliant) on moto server, versus a bare threaded
  ``get_bucket_encryption`` loop over the same buckets and versus Cloud Custodian's
  ``bucket-encryption`` filter, all on the same endpoint;
- cold start: importing the handler module (which creates its clients) versus ``import boto3``
  plus the same clients, each in a fresh interpreter, median of several;
- AWS calls per event on the compliant and on the drift path, counted at botocore's call site.

Usage: python -m local.bench [--buckets N] [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError

from functions.drift_monitor.digest import SweepRun, build_digest
from functions.drift_monitor.models import Trigger
from functions.drift_monitor.policy import Policy
from functions.drift_monitor.publisher import AlertPublisher
from functions.drift_monitor.s3_reader import S3Reader, sweep_config
from functions.drift_monitor.settings import DEFAULT_CONCURRENCY
from functions.drift_monitor.sweep import sweep

from .cloudtrail import s3_call_detail
from .emulator import REPO, Emulator, moto_server
from .function import LocalFunction

if TYPE_CHECKING:
    pass

RESULTS = REPO / "bench-results.json"
# As infra/monitor.py deploys them; not imported from there, which would start jsii and Node.
FUNCTION_CODE = REPO / "functions"
HANDLER = "drift_monitor.handler.lambda_handler"
C7N_VENV = REPO / ".bench" / "c7n"
C7N_LOCK = Path(__file__).resolve().parent / "bench-c7n.lock"
C7N_VERSION = "0.9.53"
KEY = "arn:aws:kms:eu-west-1:123456789012:key/0b8f4ab2-7d3e-4c4a-9a59-5c1f7d0e8a11"

BARE_COLD_START = """
import time
started = time.perf_counter()
import boto3
session = boto3.Session()
session.client("s3"); session.client("sns"); session.client("sqs")
print((time.perf_counter() - started) * 1000)
"""
OUR_COLD_START = """
import sys, time
sys.path.insert(0, {code!r})
started = time.perf_counter()
import drift_monitor.handler
print((time.perf_counter() - started) * 1000)
"""
# The same question the default policy asks: which buckets are not encrypted with KMS by default.
C7N_POLICY = """policies:
  - name: buckets-not-kms-encrypted
    resource: aws.s3
    filters:
      - not:
          - type: bucket-encryption
            state: true
            crypto: aws:kms
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--buckets", type=int, default=1000, help="buckets to sweep (default 1000)")
    parser.add_argument("--repeats", type=int, default=3, help="sweep runs per contender")
    parser.add_argument("--cold-starts", type=int, default=15, help="fresh interpreters per side")
    args = parser.parse_args(argv)

    results: dict[str, Any] = {
        "machine": _machine(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "buckets": args.buckets,
        "concurrency": DEFAULT_CONCURRENCY,
    }
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as scratch, moto_server(Path(scratch) / "moto.log") as emu:
        _note(f"moto server at {emu.endpoint}; creating {args.buckets} buckets, half compliant")
        names = _populate(emu, args.buckets)
        results.update(_sweep_throughput(emu, names, args.repeats))
        try:
            results.update(_c7n_throughput(emu, Path(scratch), args.buckets))
            results["sweep_vs_c7n"] = (
                results["sweep_buckets_per_second"] / results["c7n_buckets_per_second"]
            )
        except C7nUnavailable as error:
            problems.append(f"Cloud Custodian not measured: {error}")
            results.update({"sweep_vs_c7n": None, "c7n_buckets_per_second": None})
        results.update(_calls_per_event(emu))
    results.update(_cold_start(args.cold_starts))

    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    _print_table(results)
    for problem in problems:
        print(f"\n{problem}", file=sys.stderr)
    return 1 if problems else 0


# -- sweep throughput ---------------------------------------------------------------------------


def _populate(emu: Emulator, count: int) -> list[str]:
    s3 = emu.client("s3", config=Config(max_pool_connections=DEFAULT_CONCURRENCY))
    names = [f"bench-{index:06d}" for index in range(count)]

    def create(index_name: tuple[int, str]) -> None:
        index, name = index_name
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": emu.region})
        algorithm: Any = (
            {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": KEY}
            if index % 2 == 0
            else {"SSEAlgorithm": "AES256"}  # what real S3 reports for a bucket left alone
        )
        s3.put_bucket_encryption(
            Bucket=name,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": algorithm}]
            },
        )

    with ThreadPoolExecutor(DEFAULT_CONCURRENCY) as pool:
        list(pool.map(create, enumerate(names)))
    return names


def _sweep_throughput(emu: Emulator, names: list[str], repeats: int) -> dict[str, Any]:
    bare_s3 = emu.client("s3", config=Config(max_pool_connections=DEFAULT_CONCURRENCY))
    reader = S3Reader(
        emu.session(), config=sweep_config(DEFAULT_CONCURRENCY), endpoint_url=emu.endpoint
    )
    topic_arn = emu.client("sns").create_topic(Name="bench-digest")["TopicArn"]
    publisher = AlertPublisher(emu.client("sns"), topic_arn)

    def bare() -> int:
        def read(name: str) -> None:
            with suppress(ClientError):
                bare_s3.get_bucket_encryption(Bucket=name)

        with ThreadPoolExecutor(DEFAULT_CONCURRENCY) as pool:
            list(pool.map(read, names))
        return len(names)

    def sweep_with(policy: Policy) -> Callable[[], int]:
        def run() -> int:
            started = datetime.now(UTC).isoformat()
            result = sweep(
                emu.account,
                policy,
                reader,
                Trigger(source="sweep"),
                keep=lambda finding: finding.alerts,
                concurrency=DEFAULT_CONCURRENCY,
            )
            run = SweepRun(result, Trigger(source="sweep").to_dict(), started, started)
            publisher.publish(build_digest(run, policy))
            assert result.tally.alerting == len(names) // 2, result.tally.statuses
            return result.tally.evaluated

        return run

    contenders = {
        "bare": bare,
        "sweep": sweep_with(Policy()),
        # The same sweep with tag exemption off (exemptTag null): no GetBucketTagging for the
        # drifted half, to show what the tag reads cost.
        "sweep_no_tags": sweep_with(Policy(exempt_tag=None)),
    }
    for warm_up in contenders.values():  # connection pools and clients, before any timing
        warm_up()
    seconds: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):  # interleaved, so drift in the machine's load hits all alike
        for name, contender in contenders.items():
            seconds[name].append(_timed(contender))
    rate = {name: len(names) / statistics.median(times) for name, times in seconds.items()}
    _note(
        f"sweep {rate['sweep']:.0f} buckets/s, without tag reads {rate['sweep_no_tags']:.0f}, "
        f"bare loop {rate['bare']:.0f}"
    )
    return {
        "sweep_buckets_per_second": rate["sweep"],
        "sweep_no_tags_buckets_per_second": rate["sweep_no_tags"],
        "bare_buckets_per_second": rate["bare"],
        "sweep_seconds": seconds["sweep"],
        "sweep_no_tags_seconds": seconds["sweep_no_tags"],
        "bare_seconds": seconds["bare"],
        "sweep_vs_bare": rate["sweep"] / rate["bare"],
        "sweep_no_tags_vs_bare": rate["sweep_no_tags"] / rate["bare"],
    }


class C7nUnavailable(RuntimeError):
    pass


def _c7n_throughput(emu: Emulator, scratch: Path, count: int) -> dict[str, Any]:
    custodian = _install_c7n()
    policy_file = scratch / "c7n-policy.yml"
    policy_file.write_text(C7N_POLICY)
    output = scratch / "c7n-output"
    environment = {**os.environ, **emu.environment()}
    _note(f"Cloud Custodian {C7N_VERSION}: bucket-encryption over {count} buckets")
    started = time.perf_counter()
    run = subprocess.run(
        [
            str(custodian),
            "run",
            "--cache-period",
            "0",
            "-s",
            str(output),
            "-r",
            emu.region,
            str(policy_file),
        ],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if run.returncode != 0:
        raise C7nUnavailable(f"custodian exited {run.returncode}: {run.stderr[-2000:]}")
    # It found what the sweep found (the AES256 half), so it really read every bucket.
    matched = json.loads((output / "buckets-not-kms-encrypted" / "resources.json").read_text())
    rate = count / seconds
    _note(f"Cloud Custodian {rate:.1f} buckets/s ({len(matched)} matched)")
    return {
        "c7n_version": C7N_VERSION,
        "c7n_seconds": round(seconds, 2),
        "c7n_buckets_per_second": rate,
        "c7n_matched": len(matched),
    }


def _install_c7n() -> Path:
    custodian = C7N_VENV / "bin" / "custodian"
    marker = C7N_VENV / ".installed"
    if marker.exists() and marker.read_text() == C7N_LOCK.read_text():
        return custodian
    _note(f"installing Cloud Custodian {C7N_VERSION} into {C7N_VENV} (its own environment)")
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(C7N_VENV)],
        [
            str(C7N_VENV / "bin" / "pip"),
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--require-hashes",
            "--no-deps",
            "-r",
            str(C7N_LOCK),
        ],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise C7nUnavailable(f"{' '.join(step[:3])} failed: {done.stderr[-2000:]}")
    marker.write_text(C7N_LOCK.read_text())
    return custodian


# -- calls per event ----------------------------------------------------------------------------


def _calls_per_event(emu: Emulator) -> dict[str, Any]:
    s3 = emu.client("s3")
    sns = emu.client("sns")
    sqs = emu.client("sqs")
    topic = sns.create_topic(Name="bench-alerts")["TopicArn"]
    queue = sqs.create_queue(QueueName="bench-failures")["QueueUrl"]
    for name, algorithm in (("calls-compliant", "aws:kms"), ("calls-drift", "AES256")):
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": emu.region})
        by_default: Any = {"SSEAlgorithm": algorithm}
        s3.put_bucket_encryption(
            Bucket=name,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": by_default}]
            },
        )
    function = LocalFunction(
        FUNCTION_CODE,
        HANDLER,
        {
            **emu.environment(),
            "ALERT_TOPIC_ARN": topic,
            "FAILURE_QUEUE_URL": queue,
            "ENCRYPTION_POLICY": Policy().to_json(),
            "POWERTOOLS_TRACE_DISABLED": "true",
        },
        function_arn=f"arn:aws:lambda:{emu.region}:{emu.account}:function:bench",
        timeout_seconds=60,
    )
    if function.init_error:
        raise RuntimeError(function.init_error)
    counted = {}
    for path, bucket in (("compliant", "calls-compliant"), ("drift", "calls-drift")):
        event = {
            "version": "0",
            "id": "bench",
            "detail-type": "AWS API Call via CloudTrail",
            "source": "aws.s3",
            "account": emu.account,
            "region": emu.region,
            "detail": s3_call_detail(
                "PutBucketEncryption", bucket, account=emu.account, region=emu.region
            ),
        }
        with _counting_calls() as calls:
            invocation = function.invoke(event)
        if not invocation.ok:
            raise RuntimeError(invocation.error)
        counted[path] = list(calls)
    _note(f"calls per event: compliant {counted['compliant']}, drift {counted['drift']}")
    return {
        "calls_compliant": len(counted["compliant"]),
        "calls_drift": len(counted["drift"]),
        "calls_compliant_operations": counted["compliant"],
        "calls_drift_operations": counted["drift"],
    }


@contextmanager
def _counting_calls() -> Iterator[list[str]]:
    calls: list[str] = []
    original = BaseClient._make_api_call  # type: ignore[attr-defined]

    def counting(self: BaseClient, operation: str, params: Any) -> Any:
        calls.append(operation)
        return original(self, operation, params)

    BaseClient._make_api_call = counting  # type: ignore[attr-defined]
    try:
        yield calls
    finally:
        BaseClient._make_api_call = original  # type: ignore[attr-defined]


# -- cold start ---------------------------------------------------------------------------------


def _cold_start(samples: int) -> dict[str, Any]:
    # As in Lambda: the task root set (so the Tracer is active and patches botocore), the
    # template's variables, and nothing on disk cached from this process.
    environment = {
        **os.environ,
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "LAMBDA_TASK_ROOT": str(FUNCTION_CODE),
        "AWS_LAMBDA_FUNCTION_NAME": "bench",
        "ALERT_TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:alerts",
        "FAILURE_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/failures",
        "ENCRYPTION_POLICY": Policy().to_json(),
        "POWERTOOLS_SERVICE_NAME": "s3-encryption-drift-monitor",
        "POWERTOOLS_METRICS_NAMESPACE": "S3EncryptionDriftMonitor",
    }
    ours_script = OUR_COLD_START.format(code=str(FUNCTION_CODE))
    bare_ms, our_ms = [], []
    for _ in range(samples):
        bare_ms.append(_fresh_interpreter(BARE_COLD_START, environment))
        our_ms.append(_fresh_interpreter(ours_script, environment))
    bare, ours = statistics.median(bare_ms), statistics.median(our_ms)
    _note(f"cold start: ours {ours:.0f} ms, import boto3 + clients {bare:.0f} ms")
    return {
        "cold_start_ms": ours,
        "cold_start_bare_ms": bare,
        "cold_start_samples_ms": our_ms,
        "cold_start_bare_samples_ms": bare_ms,
        "cold_start_ratio": ours / bare,
    }


def _fresh_interpreter(script: str, environment: dict[str, str]) -> float:
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout.strip().splitlines()[-1])


# -- output -------------------------------------------------------------------------------------


def _print_table(results: dict[str, Any]) -> None:
    sweep_rate, c7n_rate = results["sweep_buckets_per_second"], results["c7n_buckets_per_second"]
    rows = [
        (
            f"sweep vs bare get_bucket_encryption loop ({results['buckets']} buckets)",
            f"{sweep_rate:.0f} buckets/s",
            f"{results['bare_buckets_per_second']:.0f} buckets/s",
            f"{results['sweep_vs_bare']:.2f}x",
            ">= 0.80x",
        ),
        (
            "  the same sweep with exemptTag null (no tag reads)",
            f"{results['sweep_no_tags_buckets_per_second']:.0f} buckets/s",
            f"{results['bare_buckets_per_second']:.0f} buckets/s",
            f"{results['sweep_no_tags_vs_bare']:.2f}x",
            "",
        ),
        (
            f"sweep vs Cloud Custodian {C7N_VERSION} bucket-encryption",
            f"{sweep_rate:.0f} buckets/s",
            f"{c7n_rate:.1f} buckets/s" if c7n_rate else "not measured",
            f"{results['sweep_vs_c7n']:.1f}x" if c7n_rate else "-",
            ">= 10x",
        ),
        (
            "cold start vs import boto3 + same clients (median)",
            f"{results['cold_start_ms']:.0f} ms",
            f"{results['cold_start_bare_ms']:.0f} ms",
            f"{results['cold_start_ratio']:.2f}x",
            "<= 1.25x",
        ),
        ("AWS calls per event, compliant path", str(results["calls_compliant"]), "", "", "= 1"),
        ("AWS calls per event, drift path", str(results["calls_drift"]), "", "", "<= 3"),
    ]
    headers = ("measure", "ours", "baseline", "ratio", "budget")
    widths = [max(len(row[i]) for row in (headers, *rows)) for i in range(len(headers))]
    print(f"make bench on {results['machine']}, {results['date']}")
    for row in (headers, *rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    print(f"Raw figures: {RESULTS.relative_to(REPO)}")


def _machine() -> str:
    return (
        f"{os.cpu_count()} CPUs, {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}, boto3 {version('boto3')}, moto {version('moto')}"
    )


def _timed(work: Callable[[], int]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def _note(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
