"""``s3-encryption-monitor scan``: every bucket of an account against the policy, for people and CI.

The same reader, policy, evaluation and alert documents as the deployed functions; only the
output differs (a table, or one JSON document).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import click
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    ProfileNotFound,
)
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from functions.drift_monitor.alerts import SCHEMA_VERSION, alert_document
from functions.drift_monitor.digest import most_severe_first, summary
from functions.drift_monitor.models import Finding, Status, Trigger
from functions.drift_monitor.policy import Policy, PolicyError
from functions.drift_monitor.s3_reader import RETRY_CONFIG, ListingDenied, S3Reader, sweep_config
from functions.drift_monitor.settings import DEFAULT_CONCURRENCY, MAX_CONCURRENCY
from functions.drift_monitor.sweep import SweepResult, sweep

EXIT_COMPLIANT = 0
EXIT_DRIFT = 1
EXIT_ERROR = 2
_STATUS_ORDER = {Status.DRIFT: 0, Status.UNVERIFIABLE: 1, Status.EXEMPT: 2, Status.COMPLIANT: 3}
_STATUS_STYLE = {
    Status.DRIFT: "bold red",
    Status.UNVERIFIABLE: "yellow",
    Status.EXEMPT: "cyan",
    Status.COMPLIANT: "green",
}


class ScanError(click.ClickException):
    """Could not scan at all (credentials, listing, policy file): exit code 2."""

    exit_code = EXIT_ERROR


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="s3-encryption-drift-monitor")
def main() -> None:
    """S3 Encryption Drift Monitor: audit S3 default encryption against your policy."""


@main.command(
    epilog=(
        "Exit codes: 0 every bucket is compliant or exempt; 1 at least one bucket drifts from the "
        "policy; 2 usage error, no credentials, the buckets cannot be listed, or some bucket "
        "could not be verified (and none drifts)."
    )
)
@click.option(
    "--endpoint-url",
    metavar="URL",
    help="Send every AWS request to this endpoint (a local emulator, say). "
    "Default: AWS itself, or AWS_ENDPOINT_URL if set.",
)
@click.option(
    "--region",
    metavar="REGION",
    help="Region to list buckets from. Each bucket is still read in its own region. "
    "Default: the profile's region, AWS_REGION or AWS_DEFAULT_REGION, else us-east-1.",
)
@click.option(
    "--profile",
    metavar="NAME",
    help="Named profile from your AWS config files. Default: AWS_PROFILE or the default "
    "credential chain.",
)
@click.option(
    "--policy",
    "policy_file",
    type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path),
    metavar="FILE",
    help="JSON policy: the same object as the 'policy' context in cdk.json and the functions' "
    "ENCRYPTION_POLICY. Default: the built-in default policy.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="table: one row per bucket, for people. json: one document (schemaVersion 1) with a "
    "summary and each bucket shaped like the alert document, for machines.",
)
@click.option(
    "--only-drift",
    is_flag=True,
    help="List only buckets that drift or could not be verified. The summary still counts all.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, MAX_CONCURRENCY),
    default=DEFAULT_CONCURRENCY,
    show_default=True,
    help="Buckets read at the same time.",
)
def scan(
    *,
    endpoint_url: str | None,
    region: str | None,
    profile: str | None,
    policy_file: Path | None,
    output_format: str,
    only_drift: bool,
    concurrency: int,
) -> None:
    """Evaluate the default encryption of every bucket in the account.

    Lists the account's buckets, reads each one's default encryption (and, only when it would
    be reported, its tags) in its own region, and judges it against the policy exactly as the
    deployed monitor does. A progress bar is shown on a terminal (on stderr), never in a pipe.
    """
    policy = _load_policy(policy_file)
    session = _session(profile, region)
    home_region = region or session.region_name or "us-east-1"
    account = _account(session, home_region, endpoint_url)
    reader = S3Reader(
        session,
        config=sweep_config(concurrency),
        home_region=home_region,
        endpoint_url=endpoint_url,
    )

    def keep(finding: Finding) -> bool:
        return finding.status is not Status.VANISHED and (finding.alerts or not only_drift)

    with _progress() as advance, _scan_errors(endpoint_url):
        result = sweep(
            account,
            policy,
            reader,
            Trigger(source="scan"),
            keep=keep,
            concurrency=concurrency,
            on_finding=advance,
        )

    if output_format == "json":
        click.echo(json.dumps(scan_document(result, policy), indent=2))
    else:
        _print_table(result, policy_file)
    sys.exit(exit_code(result))


def exit_code(result: SweepResult) -> int:
    if result.tally.statuses[Status.DRIFT]:
        return EXIT_DRIFT
    if result.tally.statuses[Status.UNVERIFIABLE]:
        return EXIT_ERROR
    return EXIT_COMPLIANT


def scan_document(result: SweepResult, policy: Policy) -> dict[str, Any]:
    findings = sorted(result.tally.kept, key=lambda finding: finding.bucket.name)
    return {
        "schemaVersion": SCHEMA_VERSION,
        "account": result.account,
        "summary": summary(result.tally),
        "buckets": [alert_document(finding, policy) for finding in findings],
    }


def _load_policy(policy_file: Path | None) -> Policy:
    if policy_file is None:
        return Policy()
    try:
        return Policy.from_json(policy_file.read_text())
    except PolicyError as error:
        raise ScanError(f"--policy {policy_file}: {error}") from error
    except (OSError, UnicodeDecodeError) as error:
        raise ScanError(f"--policy {policy_file}: cannot read it: {error}") from error


def _session(profile: str | None, region: str | None) -> boto3.Session:
    try:
        return boto3.Session(profile_name=profile, region_name=region)
    except ProfileNotFound as error:
        raise ScanError(f"--profile: {error}") from error


def _account(session: boto3.Session, region: str, endpoint_url: str | None) -> str:
    """The account being scanned: the bucket owner every read is checked against."""
    sts = session.client("sts", region_name=region, endpoint_url=endpoint_url, config=RETRY_CONFIG)
    with _scan_errors(endpoint_url):
        identity = sts.get_caller_identity()
    return str(identity["Account"])


@contextmanager
def _scan_errors(endpoint_url: str | None) -> Iterator[None]:
    """Errors that stop the whole scan, as one line that says what to do."""
    try:
        yield
    except NoCredentialsError as error:
        raise ScanError(
            "no AWS credentials found: configure a profile (--profile or AWS_PROFILE) or set "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        ) from error
    except ListingDenied as error:
        raise ScanError(f"{error}; grant s3:ListAllMyBuckets to scan this account") from error
    except EndpointConnectionError as error:
        where = endpoint_url or "AWS"
        raise ScanError(f"cannot reach {where}: {error}") from error
    except ClientError as error:
        details = error.response.get("Error", {})
        raise ScanError(
            f"{error.operation_name} failed: {details.get('Code')}: {details.get('Message')}"
        ) from error
    except BotoCoreError as error:
        raise ScanError(str(error)) from error


@contextmanager
def _progress() -> Iterator[Any]:
    console = Console(stderr=True)
    with Progress(
        SpinnerColumn(),
        TextColumn("Scanning buckets"),
        TextColumn("{task.completed} evaluated"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as progress:
        task = progress.add_task("scan", total=None)
        yield lambda _finding: progress.advance(task)


def _print_table(result: SweepResult, policy_file: Path | None) -> None:
    console = Console()
    table = Table(title=f"S3 default encryption, account {result.account}", title_justify="left")
    for column in ("Bucket", "Region", "Status", "Severity", "Violations / reason"):
        table.add_column(column, overflow="fold")
    findings = sorted(
        most_severe_first(result.tally.kept),
        key=lambda finding: _STATUS_ORDER[finding.status],
    )
    for finding in findings:
        reason = ", ".join(violation.code.value for violation in finding.violations)
        table.add_row(
            finding.bucket.name,
            finding.bucket.region,
            f"[{_STATUS_STYLE[finding.status]}]{finding.status.value}[/]",
            finding.severity.value if finding.severity else "",
            finding.detail if finding.status is Status.EXEMPT else reason,
        )
    console.print(table)
    counts = summary(result.tally)
    click.echo(
        f"{counts['buckets']} buckets: {counts['compliant']} compliant, {counts['drift']} drift, "
        f"{counts['unverifiable']} unverifiable, {counts['exempt']} exempt"
        + (f", {counts['vanished']} deleted during the scan" if counts["vanished"] else "")
        + f". Policy: {policy_file or 'built-in default'}."
    )
    if counts["drift"] or counts["unverifiable"]:
        click.echo("For each violation's explanation and the command that fixes it: --format json.")
