"""``make demo``: a walk through the monitor on the local emulator, printing the emails it sends.

The emulator holds an organization: the monitor's (management) account and two member accounts,
watched in three regions. Member accounts get the member templates as the StackSets would deploy
them; their changes reach the monitor through the forwarding rules and the central bus.

Usage: python -m local.demo CDK_OUT_DIR   (a directory written by ``cdk synth`` with the
organization context, as ``make demo`` does)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from functions.drift_monitor.domain.alerts import render_email
from functions.drift_monitor.sweep.digest import DIGEST, render_digest_email
from scanner.canary import run_canary
from scanner.doctor import Check, Doctor, render_table
from scanner.doctor import exit_code as doctor_exit_code

from .chat_view import ChatView
from .cloudtrail import RecordedS3
from .emulator import create_organization, moto_server
from .function import Invocation
from .lambda_runtime import LambdaContainer, lambda_runtime
from .pipeline import LocalPipeline, ReceivedAlert
from .template import SynthesizedMonitor, TemplateError

# The approved key, by its alias ARN: named by alias only, S3 would resolve it in each uploader's
# account (KMS_KEY_NOT_FULLY_QUALIFIED).
IN_ACCOUNT_KEY = "arn:aws:kms:eu-west-1:123456789012:alias/demo-data"
# Directory and table buckets take a key's ARN, never an alias: the key the demo policy lists.
APPROVED_KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
EXISTING_BUCKETS: dict[str, dict[str, str] | None] = {
    "payments-ledger": None,
    "marketing-assets": None,
    "partner-exchange": None,
    "ml-training-data": None,
    "app-logs": None,
    "legacy-reports": None,
    "reports-archive": None,
    "uploads-inbox": None,
    "sandbox-alice": None,
    "build-cache": {"encryption-monitor:exempt": "true"},
}
FOREIGN_KEY = "arn:aws:kms:eu-west-1:999988887777:key/1a2b3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d"
RULE = "-" * 78
# The organization the demo's templates are synthesized for (Makefile DEMO_CONTEXT).
ORGANIZATION_ID = "o-exampleorg"
MEMBER_ACCOUNTS = ("retail", "analytics")
# §15: the bucket whose alert and RESOLVED notice the demo also prints as the chat shows them.
CHAT_SHOWN = "marketing-assets"


@dataclass(frozen=True)
class Step:
    title: str
    expectation: str
    # Bucket creations wait in the grace queue: deliver them once the grace period has passed.
    after_grace: bool = False


def _scenario(pipeline: LocalPipeline) -> Iterator[Step | tuple[str, str]]:
    """Each step acts on the emulator, then yields what it did and what the monitor should do."""
    s3 = pipeline.recorded_s3
    # Buckets that existed before the monitor was deployed: their creation produced no event.
    for name, tags in EXISTING_BUCKETS.items():
        s3.create_bucket(name, tags=tags, record=False)

    s3.put_encryption("payments-ledger", "aws:kms", IN_ACCOUNT_KEY, bucket_key=True)
    yield "payments-ledger: SSE-KMS with the approved key, bucket key on", "compliant: no alert"

    grace = pipeline.monitor.new_bucket_grace_seconds
    s3.create_bucket("analytics-raw")
    yield Step(
        "analytics-raw: created with no default encryption, and left so",
        f"evaluated {grace} s later (the new-bucket grace period): HIGH: NO_DEFAULT_ENCRYPTION",
        after_grace=True,
    )

    s3.create_bucket("etl-staging")
    s3.put_encryption("etl-staging", "aws:kms", IN_ACCOUNT_KEY, bucket_key=True)
    yield Step(
        "etl-staging: created, then set to SSE-KMS by its infrastructure code a moment later",
        "no alert: the change is compliant, and the creation, evaluated after the grace "
        "period, finds it compliant too",
        after_grace=True,
    )

    s3.put_encryption("marketing-assets", "AES256")
    yield "marketing-assets: set to SSE-S3 (AES256)", "MEDIUM: ALGORITHM_NOT_ALLOWED"

    s3.put_encryption("marketing-assets", "AES256")
    yield (
        "marketing-assets: set to SSE-S3 again (the same drift)",
        "no second email: the repeat is counted (SuppressedRepeats)",
    )

    s3.put_encryption("marketing-assets", "aws:kms", IN_ACCOUNT_KEY, bucket_key=True)
    yield (
        "marketing-assets: fixed (SSE-KMS with the approved key, bucket key on)",
        "INFO: one RESOLVED notice, saying how long it drifted and what fixed it",
    )

    s3.put_encryption("partner-exchange", "aws:kms", FOREIGN_KEY, bucket_key=True)
    yield (
        "partner-exchange: SSE-KMS with a key owned by account 999988887777",
        "HIGH: KMS_KEY_NOT_ALLOWED + KMS_KEY_CROSS_ACCOUNT",
    )

    s3.put_encryption("ml-training-data", "aws:kms:dsse", IN_ACCOUNT_KEY)
    yield "ml-training-data: DSSE-KMS with the approved key", "compliant: no alert"

    s3.put_encryption("app-logs", "aws:kms", IN_ACCOUNT_KEY, bucket_key=False)
    yield "app-logs: SSE-KMS with the approved key, bucket key off", "MEDIUM: BUCKET_KEY_DISABLED"

    s3.put_encryption("legacy-reports", "aws:kms", bucket_key=True)
    yield (
        "legacy-reports: SSE-KMS with the AWS managed key aws/s3",
        "MEDIUM: KMS_KEY_NOT_ALLOWED + AWS_MANAGED_KEY",
    )

    yield from _how_keys_are_named_and_sse_c(s3)

    s3.put_encryption("sandbox-alice", "AES256")
    yield (
        "sandbox-alice: SSE-S3, but the name matches exemptBuckets 'sandbox-*'",
        "exempt: evaluated and logged, no alert",
    )

    s3.put_encryption("build-cache", "AES256")
    yield (
        "build-cache: SSE-S3, tagged encryption-monitor:exempt=true",
        "exempt: no alert (tags are read only because it would have alerted)",
    )

    s3.delete_tags("build-cache")
    yield (
        "build-cache: its exempt tag removed (still SSE-S3)",
        "MEDIUM: ALGORITHM_NOT_ALLOWED, triggered by DeleteBucketTagging",
    )

    s3.create_bucket("tmp-export")
    s3.delete_bucket("tmp-export")
    yield Step(
        "tmp-export: created, then deleted before the monitor could read it",
        "vanished (the deletion at once, the creation after the grace period): no alert",
        after_grace=True,
    )

    s3.denied_put_encryption("payments-ledger")
    yield (
        "payments-ledger: a PutBucketEncryption that S3 refused (errorCode AccessDenied)",
        "dropped by the rule's 'no errorCode' pattern: the function never runs",
    )

    s3.delete_encryption("payments-ledger")
    yield (
        "payments-ledger: DeleteBucketEncryption (a downgrade)",
        "HIGH: the default encryption was removed",
    )

    # §12: the other kinds of bucket, each through its own API and its own CloudTrail source
    s3.create_directory_bucket("ml-features--euw1-az1--x-s3")
    yield Step(
        "ml-features--euw1-az1--x-s3: a directory bucket (S3 Express One Zone), created with "
        "its default SSE-S3",
        f"evaluated {grace} s later: MEDIUM: ALGORITHM_NOT_ALLOWED, kind directory",
        after_grace=True,
    )

    s3.create_table_bucket("analytics-lake", "aws:kms", APPROVED_KEY_ARN)
    yield Step(
        "analytics-lake: a table bucket (S3 Tables) created with SSE-KMS and the approved key",
        f"evaluated {grace} s later: compliant, no alert",
        after_grace=True,
    )

    s3.put_table_encryption("analytics-lake", "AES256")
    yield (
        "analytics-lake: PutTableBucketEncryption to SSE-S3",
        "MEDIUM: ALGORITHM_NOT_ALLOWED, kind table, fix: aws s3tables put-table-bucket-encryption",
    )

    pipeline.put_cloudtrail_event(
        {
            "eventSource": "s3.amazonaws.com",
            "eventName": "PutBucketEncryption",
            "awsRegion": s3.region,
            "recipientAccountId": s3.account,
            "requestParameters": {},
        }
    )
    yield (
        "malformed event: an S3 CloudTrail event with no bucket name",
        "kept in the failure queue with its reason, not retried, no alert",
    )
    yield from _organization_scenario(pipeline)


def _how_keys_are_named_and_sse_c(s3: RecordedS3) -> Iterator[tuple[str, str]]:
    """§13: what S3 does with a key named by alias, and SSE-C opened up again."""
    s3.put_encryption("reports-archive", "aws:kms", "alias/demo-data", bucket_key=True)
    yield (
        "reports-archive: SSE-KMS naming the approved key by alias name only (alias/demo-data)",
        "MEDIUM: KMS_KEY_NOT_FULLY_QUALIFIED (uploads from other accounts would use a key of "
        "theirs); the fix names the key by ARN",
    )

    s3.put_encryption(
        "uploads-inbox", "aws:kms", IN_ACCOUNT_KEY, bucket_key=True, sse_c_blocked=False
    )
    yield (
        "uploads-inbox: SSE-KMS with the approved key, but uploads with customer-provided keys "
        "(SSE-C) no longer blocked",
        "MEDIUM: SSE_C_NOT_BLOCKED (S3 blocks SSE-C on new buckets since April 2026)",
    )


def _organization_scenario(pipeline: LocalPipeline) -> Iterator[tuple[str, str]]:
    """Changes in other regions and in member accounts, forwarded to the monitor."""
    oregon = pipeline.s3_in("us-west-2")
    oregon.create_bucket("web-assets-oregon", record=False)
    oregon.put_encryption("web-assets-oregon", "AES256")
    yield (
        f"web-assets-oregon: SSE-S3, in us-west-2 of the monitor's account {pipeline.account}",
        "forwarded from us-west-2 to the home region: MEDIUM, region us-west-2",
    )

    retail, analytics = pipeline.members[0], pipeline.members[1]
    virginia = pipeline.s3_in("us-east-1", retail)
    virginia.create_bucket("retail-orders", record=False)
    virginia.put_encryption("retail-orders", "AES256")
    yield (
        f"retail-orders: SSE-S3, in member account {retail} (us-east-1)",
        f"forwarded to the central bus, read through the reader role: MEDIUM, account {retail}",
    )

    virginia.create_bucket("retail-ledger", record=False)
    own_key = f"arn:aws:kms:us-east-1:{retail}:alias/demo-data"
    virginia.put_encryption("retail-ledger", "aws:kms:dsse", own_key)
    yield (
        f"retail-ledger: SSE-KMS with its account's demo-data key, in member account {retail}",
        "MEDIUM: KMS_KEY_NOT_ALLOWED (the policy lists only the monitor account's key)",
    )

    # Someone removes the reader role that the StackSet put in the analytics account.
    pipeline.delete_reader_role(analytics)
    oregon_analytics = pipeline.s3_in("us-west-2", analytics)
    oregon_analytics.create_bucket("analytics-events", record=False)
    oregon_analytics.put_encryption("analytics-events", "AES256")
    yield (
        f"analytics-events: changed in member account {analytics}, whose reader role was deleted",
        "LOW: UNVERIFIABLE, naming the role to check (never 'unencrypted')",
    )


def _print_messages(pipeline: LocalPipeline, step: Step, chat: ChatView) -> list[ReceivedAlert]:
    """What a step sent: each email, the chat's view of one bucket's, what the failure queue
    kept. Returns the alerts."""
    alerts = pipeline.received_alerts()
    for alert in alerts:
        _print_email(alert)
    for notification in pipeline.chat_messages():
        if step.title.startswith(CHAT_SHOWN):
            print("    in chat:")
            for line in chat.render(notification):
                print(f"  {line}")
    for message in pipeline.failure_queue_messages():
        print(f"    failure queue: kept the event, reason: {message['attributes']['reason']}")
    return alerts


def _print_email(alert: ReceivedAlert) -> None:
    render = render_digest_email if alert.document["status"] == DIGEST else render_email
    print(f"  {RULE[:76]}")
    print(f"  Subject: {alert.subject}")
    print()
    for line in render(alert.document).splitlines():
        print(f"  {line}".rstrip())
    print(f"  {RULE[:76]}")


def _outcome(invocations: list[Invocation]) -> str:
    if not invocations:
        return "not delivered to the function (the rule did not match)"
    outcomes = []
    for invocation in invocations:
        if not invocation.ok:
            outcomes.append(f"FAILED: {invocation.error}")
        else:
            response = invocation.response
            reason = f" ({response['reason']})" if response.get("reason") else ""
            action = response.get("action")
            done = f" -> {_ACTIONS[action]}" if action in _ACTIONS else ""
            outcomes.append(f"{response['status']}{reason}{done}")
    return "; ".join(outcomes)


_ACTIONS = {
    "ALERT": "alert sent",
    "SUPPRESS": "repeat suppressed",
    "RESOLVE": "RESOLVED notice sent",
}


def _outcomes(function: LambdaContainer, invocations: list[Invocation]) -> str:
    """As ``_outcome``; a batch from the grace queue answers only with its failed items, so its
    verdict is read from the function's log ("Bucket evaluated"), one event per batch here."""
    direct = [i for i in invocations if not i.ok or "batchItemFailures" not in i.response]
    batches = len(invocations) - len(direct)
    evaluated = [r for r in function.log_records() if r.get("message") == "Bucket evaluated"]
    delayed = [
        Invocation(event=None, response={"status": record["status"], "action": record["action"]})
        for record in evaluated[len(evaluated) - batches :]
    ] if batches else []  # fmt: skip
    return _outcome([*direct, *delayed])


def _sweep(pipeline: LocalPipeline, number: int) -> tuple[str, str, str]:
    """The scheduled sweep, once: every account of the organization, every bucket, including
    those no event reported; one digest with each account's counts."""
    print(f"{number:>2}. the daily sweep runs (its schedule, invoked here by hand)")
    print(
        "    expected: one work item per account; one digest with per-account counts, the "
        "analytics account reported unreachable, the full report in the report bucket"
    )
    invocations = pipeline.run_sweep()
    failed = [i.error for i in invocations if not i.ok]
    outcome = f"FAILED: {failed[0]}" if failed else f"{len(invocations) - 1} work items"
    alerts = pipeline.received_alerts()
    outcome += ", DIGEST sent" if alerts else ", every bucket compliant: no digest"
    print(f"    functions: starter, then the worker: {outcome}")
    for alert in alerts:
        _print_email(alert)
    reports = sorted(key for key in pipeline.report_objects() if "/buckets/" in key)
    print(f"    report bucket: {len(reports)} files, for example {reports[0] if reports else '-'}")
    print()
    return "sweep", outcome, ", ".join(a.document["severity"] for a in alerts) or "-"


def _silent_path(
    pipeline: LocalPipeline, function: LambdaContainer, number: int
) -> tuple[tuple[str, str, str], datetime]:
    """§14's heartbeat: every account and region beats; one path is broken on purpose, goes
    silent, alerts once, and resolves when it is repaired. The watchdog's clock is its event's
    time, so the demo plays 40 minutes by giving it (and the beats) later times."""
    analytics = pipeline.members[1]
    print(f"{number:>2}. the heartbeat: every account and region beats every 15 minutes")
    print(
        "    expected: beats recorded without alerts; the analytics account's us-west-2 "
        "forwarder disabled -> one EVENT_PATH_SILENT alert (HIGH) after two missed beats, "
        "then a RESOLVED notice once it is enabled again"
    )
    pipeline.beat()
    beats = pipeline.deliver(function)
    print(f"    {len(beats)} heartbeats delivered: {_outcome(beats[:1])} (each)")
    start = datetime.now(UTC)
    pipeline.switch_forwarder(analytics, "us-west-2", enabled=False)
    pipeline.beat(at=start + timedelta(minutes=40))
    pipeline.deliver(function)
    watchdog = function.invoke(pipeline.watchdog_event(start + timedelta(minutes=40)))
    print(f"    watchdog 40 minutes later: silent {watchdog.response['silent']}")
    alerts = pipeline.received_alerts()
    for alert in alerts:
        _print_email(alert)
    pipeline.switch_forwarder(analytics, "us-west-2", enabled=True)
    pipeline.beat(analytics, "us-west-2", at=start + timedelta(minutes=45))
    back = pipeline.deliver(function)
    print(f"    forwarder enabled again, next beat: {_outcome(back)}")
    notices = pipeline.received_alerts()
    for notice in notices:
        _print_email(notice)
    print()
    severity = ", ".join(a.document["severity"] for a in [*alerts, *notices]) or "-"
    outcome = f"{watchdog.response['silent']} silent, then resolved"
    # The demo's clock from here on: 46 minutes after the first beats.
    return ("silent event path", outcome, severity), start + timedelta(minutes=46)


def _doctor(pipeline: LocalPipeline, function: LambdaContainer, number: int, now: datetime) -> None:
    """``s3-encryption-monitor doctor`` on the demo deployment, its canary, and one piece broken
    on purpose (the trail stopped)."""
    session = pipeline.emulator.session()
    with pipeline.lambda_service() as lambda_url:

        def clients(service: str, region: str) -> Any:
            endpoint = lambda_url if service == "lambda" else pipeline.emulator.endpoint
            return session.client(  # type: ignore[call-overload]
                service, region_name=region, endpoint_url=endpoint
            )

        print(f"{number:>2}. s3-encryption-monitor doctor on this deployment, with --live")
        print(
            "    expected: every check passes but the analytics reader role deleted above; the "
            "canary's alert and notice arrive within seconds"
        )
        with pipeline.serve(function):
            checks = Doctor(clients, pipeline.manifest, now=now).run()
            checks.append(run_canary(clients, pipeline.manifest, timeout_seconds=60))
        _print_report(pipeline, checks)

        print(f"{number + 1:>2}. the trail is stopped on purpose; the doctor again")
        print("    expected: FAIL trail, in each watched region, with the fix")
        cloudtrail = pipeline.emulator.client("cloudtrail")
        cloudtrail.stop_logging(Name=pipeline.trail_name)
        _print_report(pipeline, Doctor(clients, pipeline.manifest, now=now).run())
        cloudtrail.start_logging(Name=pipeline.trail_name)


def _print_report(pipeline: LocalPipeline, checks: list[Check]) -> None:
    print(f"    exit code {doctor_exit_code(checks)}")
    for line in render_table(pipeline.stack_name, checks).splitlines():
        print(f"    {line}".rstrip())
    print()


def run(outdir: Path) -> int:
    monitor = SynthesizedMonitor.load(outdir)
    started = time.monotonic()
    summary: list[tuple[str, str, str]] = []
    if monitor.member_reader is None:
        raise TemplateError(
            f"{outdir} was synthesized without the organization context: run `make demo`"
        )
    with (
        tempfile.TemporaryDirectory() as scratch,
        moto_server(Path(scratch) / "moto.log", organization_id=ORGANIZATION_ID) as emu,
    ):
        members = create_organization(emu, list(MEMBER_ACCOUNTS))
        pipeline = LocalPipeline(monitor, emu)
        for member in members:
            pipeline.deploy_member(member)
        function = pipeline.start_function()
        if function.init_error:
            print(f"The function failed to start: {function.init_error}", file=sys.stderr)
            return 1
        policy = json.loads(pipeline.function_environment()["ENCRYPTION_POLICY"])
        print("S3 Encryption Drift Monitor: local demo")
        print(f"  emulator: moto server at {emu.endpoint}")
        print(
            f"  accounts: {emu.account} (the monitor's, managing organization "
            f"{ORGANIZATION_ID}), members {', '.join(members)} (reader role and forwarders "
            "deployed from the member templates)"
        )
        print(f"  regions:  {emu.region} (home), {', '.join(monitor.forwarders)} (forwarded)")
        print(f"  template: {outdir / 'S3EncryptionDriftMonitor.template.json'}")
        print(f"  function: {monitor.handler} from {monitor.asset_dir.name}")
        print(f"  runtime:  as Lambda imports it, {lambda_runtime().description}")
        print(f"  policy:   {json.dumps(policy)}")
        print()
        chat = ChatView("Slack #s3-encryption (Amazon Q Developer in chat applications)")
        steps = _scenario(pipeline)
        for number, yielded in enumerate(steps, start=1):
            step = yielded if isinstance(yielded, Step) else Step(*yielded)
            print(f"{number:>2}. {step.title}")
            print(f"    expected: {step.expectation}")
            invocations = pipeline.deliver(function)
            if step.after_grace:
                time.sleep(monitor.new_bucket_grace_seconds + 0.5)
                invocations += pipeline.deliver_new_buckets(function)
            outcome = _outcomes(function, invocations)
            print(f"    function: {outcome}")
            alerts = _print_messages(pipeline, step, chat)
            severity = ", ".join(a.document["severity"] for a in alerts) or "-"
            summary.append((step.title.split(":")[0], outcome, severity))
            print()
        summary.append(_sweep(pipeline, len(summary) + 1))
        silent_path, now = _silent_path(pipeline, function, len(summary) + 1)
        summary.append(silent_path)
        _doctor(pipeline, function, len(summary) + 1, now)

    print("Summary")
    width = max(18, *(len(name) for name, _, _ in summary))
    print(f"  {'bucket / case':<{width}} {'alert':<8} function outcome")
    for name, outcome, severity in summary:
        print(f"  {name:<{width}} {severity:<8} {outcome}")
    alerts_sent = sum(1 for _, _, severity in summary if severity != "-")
    print(
        f"\n{alerts_sent} alert emails for {len(summary)} cases, "
        f"in {time.monotonic() - started:.1f} s on the local emulator."
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("outdir", type=Path, help="directory written by `cdk synth`")
    args = parser.parse_args(argv)
    try:
        return run(args.outdir)
    except TemplateError as error:
        print(f"Cannot run the demo: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
