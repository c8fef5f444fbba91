"""``make bench`` (SPEC §9): ratios measured in one run, raw figures in bench-results.json.

- sweep throughput over 1,000 buckets (half drifting, some of those tagged exempt) on moto server,
  versus a bare threaded ``get_bucket_encryption`` loop over the same buckets and versus Cloud
  Custodian's ``bucket-encryption`` filter, all on the same endpoint;
- the organization fan-out: the sweep engine (starter, work queue, worker) over 3 accounts x 3
  regions versus the same engine over one account holding the same number of buckets;
- cold start as Lambda imports the event function (``local.lambda_runtime``: the runtime's Python,
  the synthesized asset first, then the Powertools layer, LAMBDA_TASK_ROOT set), versus importing
  the asset's boto3 and creating the same clients in the same kind of container, median of
  several fresh containers each;
- AWS calls per event on the compliant path, the drift path's first alert and its repeat,
  counted at botocore's call site inside the function's container;
- the scanner's peak memory (``--format json``, its own process's peak resident set) over 1,000
  and over 10,000 buckets, half of them drifting: it must not grow with the bucket count.

Every function here runs from the deployed asset through the Lambda runner, out of process.

Usage: python -m local.bench [--buckets N] [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError

from functions.drift_monitor.aws.credentials import AccountAccess, sweep_config
from functions.drift_monitor.aws.publisher import AlertPublisher
from functions.drift_monitor.aws.run_store import RunStore
from functions.drift_monitor.aws.s3_reader import S3Reader
from functions.drift_monitor.aws.state_store import StateStore
from functions.drift_monitor.aws.tag_index import exempt_index
from functions.drift_monitor.domain.clock import epoch_ms
from functions.drift_monitor.domain.models import Trigger
from functions.drift_monitor.domain.policy import DEFAULT_EXEMPT_TAG, Policy
from functions.drift_monitor.domain.settings import DEFAULT_CONCURRENCY
from functions.drift_monitor.sweep.digest import build_digest, run_of_result
from functions.drift_monitor.sweep.engine import sweep
from functions.drift_monitor.sweep.states import record_sweep
from infra.asset import function_asset

from .cloudtrail import s3_call_detail
from .emulator import (
    REPO,
    Emulator,
    create_organization,
    create_run_table,
    create_state_table,
    member_admin,
    moto_server,
    role_trusting_the_manager,
)
from .function import feed_from_queue
from .lambda_runtime import LambdaContainer, lambda_runtime

RESULTS = REPO / "bench-results.json"
# As infra/monitor.py deploys them; not imported from there, which would start jsii and Node.
HANDLER = "drift_monitor.handlers.event.lambda_handler"
STARTER = "drift_monitor.handlers.sweep_starter.lambda_handler"
WORKER = "drift_monitor.handlers.sweep_worker.lambda_handler"
READER_ROLE = "BenchReader"
EXEMPT_KEY, _, EXEMPT_VALUE = DEFAULT_EXEMPT_TAG.partition("=")
C7N_VENV = REPO / ".bench" / "c7n"
C7N_LOCK = Path(__file__).resolve().parent / "bench-c7n.lock"
C7N_VERSION = "0.9.53"
SCAN_SIZES = (1000, 10000)
# Runs the scanner as a child and prints the child's peak resident set in KiB (Linux's unit):
# a fresh parent per measure, since RUSAGE_CHILDREN keeps the largest child it ever waited for.
PEAK_OF_CHILD = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
if done.returncode not in (0, 1):
    sys.exit(done.stderr)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""
KEY = "arn:aws:kms:eu-west-1:123456789012:key/0b8f4ab2-7d3e-4c4a-9a59-5c1f7d0e8a11"

# The baseline container's handler module: the asset's boto3 and the clients the event function
# creates at its cold start, nothing else.
BARE_MODULE = """
import boto3

_session = boto3.Session()
CLIENTS = [_session.client(name) for name in ("s3", "sns", "sqs", "dynamodb")]


def handler(event, context):
    return None
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
    parser.add_argument(
        "--fan-out-repeats", type=int, default=3, help="engine runs per topology (fan-out)"
    )
    parser.add_argument(
        "--scan-buckets",
        type=lambda value: tuple(int(part) for part in value.split(",")),
        default=SCAN_SIZES,
        help="bucket counts of the scanner's memory measure, ascending (default 1000,10000)",
    )
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
    with tempfile.TemporaryDirectory() as scratch, moto_server(Path(scratch) / "moto.log") as emu:
        results.update(_fan_out(emu, args.buckets, args.fan_out_repeats))
    with tempfile.TemporaryDirectory() as scratch, moto_server(Path(scratch) / "moto.log") as emu:
        results.update(_scanner_memory(emu, args.scan_buckets))
    results.update(_cold_start(args.cold_starts))

    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    _print_table(results)
    for problem in problems:
        print(f"\n{problem}", file=sys.stderr)
    return 1 if problems else 0


# -- sweep throughput ---------------------------------------------------------------------------


def _rule(by_default: dict[str, Any]) -> dict[str, Any]:
    """A default-encryption rule with SSE-C blocked, as S3 sets new buckets up since April 2026."""
    return {
        "ApplyServerSideEncryptionByDefault": by_default,
        "BlockedEncryptionTypes": {"EncryptionType": ["SSE-C"]},
    }


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
            ServerSideEncryptionConfiguration={"Rules": [_rule(algorithm)]},
        )
        if index % 20 == 1:  # one drifting bucket in ten is tagged exempt
            s3.put_bucket_tagging(
                Bucket=name, Tagging={"TagSet": [{"Key": EXEMPT_KEY, "Value": EXEMPT_VALUE}]}
            )

    with ThreadPoolExecutor(DEFAULT_CONCURRENCY) as pool:
        list(pool.map(create, enumerate(names)))
    return names


def _sweep_throughput(emu: Emulator, names: list[str], repeats: int) -> dict[str, Any]:
    bare_s3 = emu.client("s3", config=Config(max_pool_connections=DEFAULT_CONCURRENCY))
    access = AccountAccess(emu.session(), home_account=emu.account, endpoint_url=emu.endpoint)
    reader = S3Reader(access, config=sweep_config(DEFAULT_CONCURRENCY))
    topic_arn = emu.client("sns").create_topic(Name="bench-digest")["TopicArn"]
    publisher = AlertPublisher(emu.client("sns"), topic_arn)
    create_state_table(emu, "bench-sweep-states")
    states = StateStore(emu.client("dynamodb"), "bench-sweep-states")
    policy = Policy()
    exempt = len([i for i in range(len(names)) if i % 20 == 1])

    def bare() -> int:
        def read(name: str) -> None:
            with suppress(ClientError):
                bare_s3.get_bucket_encryption(Bucket=name)

        with ThreadPoolExecutor(DEFAULT_CONCURRENCY) as pool:
            list(pool.map(read, names))
        return len(names)

    def ours(*, with_state: bool = True) -> int:
        """The whole sweep of one work item: assess every bucket (exempt ones found in bulk by
        the tagging API), record every verdict in the state table, then build and publish the
        digest. Without the state: the evaluation alone, to show what the table costs."""
        started = datetime.now(UTC).isoformat()
        trigger = Trigger(source="sweep")
        evaluated_at = epoch_ms()
        result = sweep(
            emu.account,
            policy,
            reader,
            trigger,
            keep=lambda _finding: True,
            exempt_tags=exempt_index(access, emu.account, policy),
            concurrency=DEFAULT_CONCURRENCY,
        )
        if with_state:
            record_sweep(states, emu.account, result.tally.kept, evaluated_at, datetime.now(UTC))
        run = run_of_result(result, policy, trigger.to_dict(), started, started)
        publisher.publish(build_digest(run, policy))
        assert result.tally.alerting == len(names) // 2 - exempt, result.tally.statuses
        return result.tally.evaluated

    def stateless() -> int:
        return ours(with_state=False)

    contenders = {"bare": bare, "sweep": ours, "stateless": stateless}
    for warm_up in contenders.values():  # connection pools and clients, before any timing
        warm_up()
    seconds: dict[str, list[float]] = {name: [] for name in contenders}
    cpu: list[float] = []
    for _ in range(repeats):  # interleaved, so drift in the machine's load hits all alike
        for name, contender in contenders.items():
            cpu_before = time.process_time()
            seconds[name].append(_timed(contender))
            if name == "sweep":
                cpu.append(time.process_time() - cpu_before)
    rate = {name: len(names) / statistics.median(times) for name, times in seconds.items()}
    _note(
        f"sweep {rate['sweep']:.0f} buckets/s ({rate['stateless']:.0f} without the state "
        f"table), bare loop {rate['bare']:.0f}"
    )
    return {
        "sweep_buckets_per_second": rate["sweep"],
        "bare_buckets_per_second": rate["bare"],
        "sweep_seconds": seconds["sweep"],
        "bare_seconds": seconds["bare"],
        "sweep_vs_bare": rate["sweep"] / rate["bare"],
        # The same sweep without reading and writing the state table: its share of the cost.
        "stateless_sweep_buckets_per_second": rate["stateless"],
        "stateless_sweep_seconds": seconds["stateless"],
        "stateless_vs_bare": rate["stateless"] / rate["bare"],
        # What the state table adds per bucket: one query of the open rows per account and
        # region, and a write per verdict that moved.
        "state_ms_per_bucket": 1000 * (1 / rate["sweep"] - 1 / rate["stateless"]),
        "exempt_buckets": exempt,
        # Our side of a bucket (botocore, evaluation, digest), without the emulator's work.
        "sweep_cpu_ms_per_bucket": 1000 * statistics.median(cpu) / len(names),
    }


# -- organization fan-out -----------------------------------------------------------------------


def _fan_out(emu: Emulator, buckets: int, repeats: int) -> dict[str, Any]:
    """The engine over one account of ``buckets`` buckets, versus over 3 accounts x 3 regions
    holding as many in all; both sets are member accounts read through a reader role."""
    accounts = create_organization(emu, [f"bench-{n}" for n in range(4)])
    single, organization = accounts[0], accounts[1:]
    regions = ("eu-west-1", "us-east-1", "us-west-2")
    _note(f"fan-out: {buckets} buckets in 1 account, and in 3 accounts x 3 regions")
    for account in accounts:  # the member template's reader role, trusted by the bench's worker
        role_trusting_the_manager(emu, account, READER_ROLE)
    _populate_account(emu, single, [("eu-west-1", buckets)])
    per_place = buckets // 9
    places = [(region, per_place) for region in regions]
    for index, account in enumerate(organization):
        extra = buckets - 9 * per_place if index == 0 else 0
        _populate_account(emu, account, [(places[0][0], per_place + extra), *places[1:]])
    engine = _Engine(emu)
    contenders = {"single": (single,), "organization": tuple(organization)}
    for members in contenders.values():  # warm up
        engine.run(members)
    seconds: dict[str, list[float]] = {name: [] for name in contenders}
    items: dict[str, int] = {}
    for _ in range(repeats):
        for name, members in contenders.items():
            started = time.perf_counter()
            items[name], swept = engine.run(members)
            seconds[name].append(time.perf_counter() - started)
            assert swept >= buckets, (name, swept)
    single_s, organization_s = (statistics.median(seconds[n]) for n in contenders)
    _note(f"fan-out: one account {single_s:.2f} s, 3 accounts x 3 regions {organization_s:.2f} s")
    return {
        "fan_out_single_seconds": seconds["single"],
        "fan_out_organization_seconds": seconds["organization"],
        "fan_out_items": items,
        "fan_out_ratio": organization_s / single_s,
        "fan_out_single_seconds_median": single_s,
        "fan_out_organization_seconds_median": organization_s,
        "engine_buckets_per_second": buckets / single_s,
    }


def _populate_account(emu: Emulator, account: str, places: list[tuple[str, int]]) -> None:
    session = member_admin(emu, account).session()

    def create(job: tuple[str, str, int]) -> None:
        region, name, index = job
        s3 = clients[region]
        location: Any = {}
        if region != "us-east-1":
            location = {"CreateBucketConfiguration": {"LocationConstraint": region}}
        s3.create_bucket(Bucket=name, **location)
        by_default: Any = (
            {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": KEY}
            if index % 2 == 0
            else {"SSEAlgorithm": "AES256"}
        )
        configuration: Any = {"Rules": [_rule(by_default)]}
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration=configuration)

    clients = {
        region: session.client(
            "s3",
            region_name=region,
            endpoint_url=emu.endpoint,
            config=Config(max_pool_connections=DEFAULT_CONCURRENCY),
        )
        for region, _ in places
    }
    jobs = [
        (region, f"fan-{account[-6:]}-{region}-{index:05d}", index)
        for region, count in places
        for index in range(count)
    ]
    with ThreadPoolExecutor(DEFAULT_CONCURRENCY) as pool:
        list(pool.map(create, jobs))


class _Engine:
    """The sweep engine as the stack deploys it, minus Lambda: the starter and the worker from the
    function code, a work queue with its redrive policy, the run table and the report bucket."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.sqs = emu.client("sqs")
        self.queue = self.sqs.create_queue(QueueName="bench-work")["QueueUrl"]
        topic = emu.client("sns").create_topic(Name="bench-fan-out")["TopicArn"]
        create_run_table(emu, "bench-runs")
        create_state_table(emu, "bench-states")
        emu.client("s3").create_bucket(
            Bucket="bench-reports", CreateBucketConfiguration={"LocationConstraint": emu.region}
        )
        self.environment = {
            **emu.environment(),
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "WORK_QUEUE_URL": self.queue,
            "RUN_TABLE_NAME": "bench-runs",
            "STATE_TABLE_NAME": "bench-states",
            "ALERT_TOPIC_ARN": topic,
            "REPORT_BUCKET": "bench-reports",
            "MEMBER_ROLE_NAME": READER_ROLE,
        }

    def run(self, accounts: tuple[str, ...]) -> tuple[int, int]:
        """One run over ``accounts`` (and the monitor's own); returns (work items, buckets)."""
        environment = {**self.environment, "SWEEP_ACCOUNTS": ",".join(accounts)}
        arn = f"arn:aws:lambda:{self.emu.region}:{self.emu.account}:function:bench"
        asset = function_asset().path
        with LambdaContainer(
            asset, STARTER, environment, function_arn=arn, timeout_seconds=60
        ) as starter:
            started = starter.invoke({"id": str(uuid.uuid4()), "time": _now(), "detail": {}})
        if not started.ok:
            raise RuntimeError(started.error)
        with LambdaContainer(
            asset, WORKER, environment, function_arn=arn, timeout_seconds=300, memory_mb=1024
        ) as worker:
            invocations = feed_from_queue(worker, self.sqs, self.queue, self.emu.region)
        failed = [i for i in invocations if not i.ok or i.response["batchItemFailures"]]
        if failed:
            raise RuntimeError(f"work items failed: {failed[0]}")
        run = RunStore(self.emu.client("dynamodb"), "bench-runs").run(started.response["run"])
        return len(invocations), sum(run.statuses.values())


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
    create_state_table(emu, "bench-calls-states")
    for name, algorithm in (("calls-compliant", "aws:kms"), ("calls-drift", "AES256")):
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": emu.region})
        rule: Any = {
            "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": algorithm},
            "BlockedEncryptionTypes": {"EncryptionType": ["SSE-C"]},
        }
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": [rule]})
    function = LambdaContainer(
        function_asset().path,
        HANDLER,
        {
            **emu.environment(),
            "ALERT_TOPIC_ARN": topic,
            "FAILURE_QUEUE_URL": queue,
            "STATE_TABLE_NAME": "bench-calls-states",
            "ENCRYPTION_POLICY": Policy().to_json(),
        },
        function_arn=f"arn:aws:lambda:{emu.region}:{emu.account}:function:bench",
        timeout_seconds=60,
    )
    if function.init_error:
        raise RuntimeError(function.init_error)
    counted = {}
    paths = (
        ("compliant", "calls-compliant"),
        ("drift", "calls-drift"),
        ("repeat", "calls-drift"),  # the same drift again: counted, not re-sent
    )
    for path, bucket in paths:
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
        invocation = function.invoke(event)
        if not invocation.ok:
            raise RuntimeError(invocation.error)
        counted[path] = list(invocation.calls)  # counted inside the container
    _note(
        f"calls per event: compliant {counted['compliant']}, drift {counted['drift']}, "
        f"repeated drift {counted['repeat']}"
    )
    return {
        "calls_compliant": len(counted["compliant"]),
        "calls_drift": len(counted["drift"]),
        "calls_repeat": len(counted["repeat"]),
        "calls_compliant_operations": counted["compliant"],
        "calls_drift_operations": counted["drift"],
        "calls_repeat_operations": counted["repeat"],
    }


# -- cold start ---------------------------------------------------------------------------------


def _cold_start(samples: int) -> dict[str, Any]:
    """Fresh containers of the event function as Lambda starts them, against fresh containers of
    the same kind whose handler module only imports the asset's boto3 and creates the same four
    clients: the difference is the monitor's own code and Powertools. A third side runs the
    asset stripped of its bytecode (a synth machine without Python 3.13)."""
    environment = {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_EC2_METADATA_DISABLED": "true",
        "ALERT_TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:alerts",
        "FAILURE_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/failures",
        "STATE_TABLE_NAME": "states",
        "ENCRYPTION_POLICY": Policy().to_json(),
        "POWERTOOLS_SERVICE_NAME": "s3-encryption-drift-monitor",
        "POWERTOOLS_METRICS_NAMESPACE": "S3EncryptionDriftMonitor",
    }
    asset = function_asset().path
    arn = "arn:aws:lambda:eu-west-1:123456789012:function:bench"
    with tempfile.TemporaryDirectory() as scratch:
        baseline = Path(scratch) / "baseline"
        baseline.mkdir()
        (baseline / "bench_bare.py").write_text(BARE_MODULE)
        plain = Path(scratch) / "plain"
        shutil.copytree(asset, plain, ignore=shutil.ignore_patterns("__pycache__"))
        sides = {
            "bare": (asset, "bench_bare.handler", (baseline,)),
            "deployed": (asset, HANDLER, ()),
            "no_bytecode": (plain, HANDLER, ()),
        }
        samples_ms: dict[str, list[float]] = {side: [] for side in sides}
        for _ in range(samples):
            for side, (code, handler, folders) in sides.items():
                with LambdaContainer(
                    code, handler, environment, function_arn=arn, timeout_seconds=60,
                    folders=folders,
                ) as container:  # fmt: skip
                    if container.init_error:
                        raise RuntimeError(f"{side}: {container.init_error}")
                    samples_ms[side].append(container.init_ms)
    median = {side: statistics.median(values) for side, values in samples_ms.items()}
    bare = median["bare"]
    _note(
        f"cold start as Lambda imports it ({lambda_runtime().description}): deployed "
        f"{median['deployed']:.0f} ms (without bytecode {median['no_bytecode']:.0f} ms), "
        f"the asset's boto3 + clients {bare:.0f} ms"
    )
    results: dict[str, Any] = {
        "cold_start_bare_ms": bare,
        "cold_start_python": lambda_runtime().version,
    }
    for side, prefix in (
        ("deployed", "cold_start"),
        ("no_bytecode", "cold_start_without_bytecode"),
    ):
        results[f"{prefix}_ms"] = median[side]
        results[f"{prefix}_samples_ms"] = samples_ms[side]
        results[f"{prefix}_ratio"] = median[side] / bare
    results["cold_start_bare_samples_ms"] = samples_ms["bare"]
    return results


# -- scanner memory -----------------------------------------------------------------------------


def _scanner_memory(emu: Emulator, sizes: tuple[int, ...]) -> dict[str, Any]:
    """The scanner's peak memory as the account grows to each size: every other bucket is left
    as S3 creates it (SSE-S3, drifting from the default policy, with a violation and a fix)."""
    s3 = emu.client("s3", config=Config(max_pool_connections=DEFAULT_CONCURRENCY))
    scanner = Path(sys.executable).with_name("s3-encryption-monitor")
    environment = {**os.environ, **emu.environment()}

    def create(index: int) -> None:
        name = f"scan-{index:07d}"
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": emu.region})
        if index % 2 == 0:
            s3.put_bucket_encryption(
                Bucket=name,
                ServerSideEncryptionConfiguration={
                    "Rules": [_rule({"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": KEY})]
                },
            )

    peaks: dict[str, float] = {}
    created = 0
    for size in sorted(sizes):
        _note(f"scanner memory: {size} buckets")
        with ThreadPoolExecutor(DEFAULT_CONCURRENCY) as pool:
            list(pool.map(create, range(created, size)))
        created = size
        measured = subprocess.run(
            [sys.executable, "-c", PEAK_OF_CHILD, str(scanner), "scan", "--format", "json"],
            env=environment,
            capture_output=True,
            text=True,
            check=True,
        )
        peaks[str(size)] = int(measured.stdout) / 1024
    smallest, largest = peaks[str(min(sizes))], peaks[str(max(sizes))]
    return {
        "scanner_peak_mb": peaks,
        "scanner_peak_growth": largest / smallest,
        "scanner_kb_per_bucket": (largest - smallest) * 1024 / (max(sizes) - min(sizes)),
    }


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
            "  the same sweep without the state table (§11)",
            f"{results['stateless_sweep_buckets_per_second']:.0f} buckets/s",
            f"{results['bare_buckets_per_second']:.0f} buckets/s",
            f"{results['stateless_vs_bare']:.2f}x",
            "",
        ),
        (
            "  the state table's cost per bucket (open rows queried, moved rows written)",
            f"{results['state_ms_per_bucket']:.2f} ms",
            "",
            "",
            "",
        ),
        (
            "organization fan-out, 3 accounts x 3 regions vs 1 account",
            f"{results['fan_out_organization_seconds_median']:.2f} s",
            f"{results['fan_out_single_seconds_median']:.2f} s",
            f"{results['fan_out_ratio']:.2f}x",
            "<= 1.25x",
        ),
        (
            f"sweep vs Cloud Custodian {C7N_VERSION} bucket-encryption",
            f"{sweep_rate:.0f} buckets/s",
            f"{c7n_rate:.1f} buckets/s" if c7n_rate else "not measured",
            f"{results['sweep_vs_c7n']:.1f}x" if c7n_rate else "-",
            ">= 10x",
        ),
        (
            f"cold start as Lambda imports it (Python {results['cold_start_python']}, asset, "
            "layer) vs the asset's boto3 + clients",
            f"{results['cold_start_ms']:.0f} ms",
            f"{results['cold_start_bare_ms']:.0f} ms",
            f"{results['cold_start_ratio']:.2f}x",
            "<= 1.15x",
        ),
        (
            "  the asset without bytecode (synth without Python 3.13)",
            f"{results['cold_start_without_bytecode_ms']:.0f} ms",
            f"{results['cold_start_bare_ms']:.0f} ms",
            f"{results['cold_start_without_bytecode_ratio']:.2f}x",
            "",
        ),
        ("AWS calls per event, compliant path", str(results["calls_compliant"]), "", "", "= 2"),
        (
            "AWS calls per event, drift path: first alert / repeat",
            f"{results['calls_drift']} / {results['calls_repeat']}",
            "",
            "",
            "<= 4 / 3",
        ),
    ]
    sizes = sorted(results["scanner_peak_mb"], key=int)
    small, large = sizes[0], sizes[-1]
    rows.append(
        (
            f"scanner peak memory, --format json: {large} buckets vs {small}",
            f"{results['scanner_peak_mb'][large]:.0f} MB",
            f"{results['scanner_peak_mb'][small]:.0f} MB",
            f"{results['scanner_peak_growth']:.2f}x",
            "< 2x",
        )
    )
    rows.append(
        (
            "  memory the scanner adds per bucket between them",
            f"{results['scanner_kb_per_bucket']:.2f} KB",
            "",
            "",
            "",
        )
    )
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


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _timed(work: Callable[[], int]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def _note(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
