"""``s3-encryption-monitor scan``: every bucket of one account or many against the policy, for
people and CI.

The same reader, credentials, policy, evaluation and alert documents as the deployed functions;
only the output differs (``scanner/outputs.py``). Each finding goes to the output as it is
evaluated and is not kept: memory does not grow with the number of buckets.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import chain
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

from functions.drift_monitor.aws.accounts import OrganizationDirectory, organization_accounts
from functions.drift_monitor.aws.credentials import RETRY_CONFIG, AccountAccess, sweep_config
from functions.drift_monitor.aws.keys import KeyDirectory
from functions.drift_monitor.aws.s3_reader import S3Reader
from functions.drift_monitor.aws.tag_index import exempt_index
from functions.drift_monitor.domain.clock import iso
from functions.drift_monitor.domain.errors import ListingDenied, PolicyError, RoleRefused
from functions.drift_monitor.domain.models import (
    ACCOUNT_ID,
    Finding,
    ListedBucket,
    Status,
    Trigger,
    is_region_name,
)
from functions.drift_monitor.domain.permissions import DEFAULT_MEMBER_ROLE_NAME
from functions.drift_monitor.domain.policy import Policy
from functions.drift_monitor.domain.settings import DEFAULT_CONCURRENCY, MAX_CONCURRENCY
from functions.drift_monitor.sweep.engine import list_regional, sweep

from .canary import run_canary
from .doctor import ClientFactory, Doctor, NotDeployed, load_manifest, render_json, render_table
from .doctor import exit_code as doctor_exit_code
from .formats import AccountScan, totals
from .outputs import FORMATS, Output, output_for

STACK_NAME = "S3EncryptionDriftMonitor"
EXIT_COMPLIANT = 0
EXIT_DRIFT = 1
EXIT_ERROR = 2


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
        "policy; 2 usage error, no credentials, the buckets cannot be listed, an account could "
        "not be entered, or some bucket could not be verified (and none drifts)."
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
    help="Region to list buckets and assume roles from. Each bucket is still read in its own "
    "region. Default: the profile's region, AWS_REGION or AWS_DEFAULT_REGION, else us-east-1.",
)
@click.option(
    "--profile",
    metavar="NAME",
    help="Named profile from your AWS config files. Default: AWS_PROFILE or the default "
    "credential chain.",
)
@click.option(
    "--accounts",
    "account_list",
    metavar="ID[,ID...]",
    help="Scan these accounts (12-digit ids, comma-separated) through --role-name in each. "
    "Default: only the account of your credentials.",
)
@click.option(
    "--organization",
    is_flag=True,
    help="Scan every active account of your organization (Organizations ListAccounts: run it "
    "from the management account or a delegated administrator).",
)
@click.option(
    "--role-name",
    metavar="NAME",
    default=DEFAULT_MEMBER_ROLE_NAME,
    show_default=True,
    help="Role assumed in each account other than your own: the monitor's member reader role, "
    "or any role with the same read permissions.",
)
@click.option(
    "--regions",
    "region_list",
    metavar="REGION[,REGION...]",
    help="Only buckets in these regions. Default: every region for general purpose buckets; "
    "directory and table buckets, listed per region, in these regions or else --region's.",
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
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="table: one row per bucket, for people. json: one document (schemaVersion 1) with a "
    "summary (per account too) and each bucket shaped like the alert document, for machines. "
    "jsonl: the same bucket documents, one per line. csv: the sweep report's columns. "
    'json-asff: {"Findings": [...]} for Security Hub\'s BatchImportFindings (imported by the '
    "calling account). json-ocsf: a list of OCSF 1.2.0 "
    "Compliance Findings. html: one self-contained page with a chart by account and region.",
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
    account_list: str | None,
    organization: bool,
    role_name: str,
    region_list: str | None,
    policy_file: Path | None,
    output_format: str,
    only_drift: bool,
    concurrency: int,
) -> None:
    """Evaluate the default encryption of every bucket in one account or many.

    Lists each account's buckets, reads each one's default encryption (and, only when it would
    be reported, whether it is tagged exempt) in its own region, and judges it against the
    policy exactly as the deployed monitor does. An account that cannot be entered is reported,
    never skipped. A progress bar is shown on a terminal (on stderr), never in a pipe.
    """
    accounts = _account_ids(account_list)
    regions = _regions(region_list)
    policy = _load_policy(policy_file)
    session = _session(profile, region)
    home_region = region or session.region_name or "us-east-1"
    caller = _account(session, home_region, endpoint_url)
    access = AccountAccess(
        session,
        role_name=role_name,
        home_account=caller,
        home_region=home_region,
        endpoint_url=endpoint_url,
    )
    if organization:
        with _scan_errors(endpoint_url, "--organization"):
            members = organization_accounts(access.client("organizations", home_region))
        if not members:
            raise ScanError(
                "--organization: Organizations listed no active account; run it from the "
                "management account or a delegated administrator, or name them with --accounts"
            )
        accounts = sorted({*accounts, *members})
    reader = S3Reader(access, config=sweep_config(concurrency))

    now = datetime.now(UTC)
    output = output_for(
        output_format,
        sys.stdout,
        policy=policy,
        policy_file=policy_file,
        caller=caller,
        region=home_region,
        now=iso(now),
        now_ms=int(now.timestamp() * 1000),
    )
    scans = []
    with _progress() as advance:
        for account in accounts or [caller]:
            scans.append(
                _scan_account(
                    account,
                    reader,
                    policy=policy,
                    output=_reported(output, only_drift),
                    regions=regions,
                    kind_regions=sorted(regions) if regions else [home_region],
                    concurrency=concurrency,
                    advance=advance,
                    endpoint_url=endpoint_url,
                )
            )
    output.finish(scans)
    sys.exit(exit_code(scans))


def _reported(output: Output, only_drift: bool) -> Callable[[Finding], None]:
    """What the output is given: every finding but deleted buckets (only the alerting ones with
    ``--only-drift``); the counts take them all."""

    def report(finding: Finding) -> None:
        if finding.status is not Status.VANISHED and (finding.alerts or not only_drift):
            output.add(finding)

    return report


def _scan_account(
    account: str,
    reader: S3Reader,
    *,
    policy: Policy,
    output: Callable[[Finding], None],
    regions: frozenset[str] | None,
    kind_regions: list[str],
    concurrency: int,
    advance: Callable[[Finding], None],
    endpoint_url: str | None,
) -> AccountScan:
    """One account; one that cannot be entered or listed is reported, not fatal. So is a
    region whose directory or table buckets could not be listed, beside what was scanned."""
    with _scan_errors(endpoint_url):
        try:
            other_kinds = list_regional(reader, account, kind_regions)
            result = sweep(
                account,
                policy,
                reader,
                Trigger(source="scan"),
                keep=lambda _finding: False,  # written as found, never kept
                buckets=chain(
                    _in_regions(reader.list_buckets(account), regions), other_kinds.buckets
                ),
                exempt_tags=exempt_index(reader.access, account, policy),
                keys=KeyDirectory(reader.access) if policy.key_checks else None,
                organization=_organization_directory(reader, policy),
                concurrency=concurrency,
                on_finding=lambda finding: _both(advance, output, finding),
            )
        except RoleRefused as refused:
            return AccountScan(
                account, None, f"{refused}: is --role-name deployed there and does it trust you?"
            )
        except ListingDenied as denied:
            if reader.access.reads_directly(account):
                raise
            return AccountScan(
                account,
                None,
                f"{denied}; grant s3:ListAllMyBuckets to {reader.access.role_arn(account)}",
            )
    for skipped in other_kinds.skipped:
        click.echo(f"Note: account {account}: {skipped}", err=True)
    return AccountScan(account, result, "; ".join(other_kinds.errors) or None)


def _both(
    first: Callable[[Finding], None], second: Callable[[Finding], None], finding: Finding
) -> None:
    first(finding)
    second(finding)


def _organization_directory(reader: S3Reader, policy: Policy) -> OrganizationDirectory | None:
    if not policy.allow_organization_keys:
        return None
    return OrganizationDirectory.of(reader.access)


def _in_regions(
    listing: Iterable[ListedBucket], regions: frozenset[str] | None
) -> Iterator[ListedBucket]:
    # A bucket whose listing names no region is kept: its region is learned when it is read.
    for listed in listing:
        if regions is None or listed.region is None or listed.region in regions:
            yield listed


def exit_code(scans: list[AccountScan]) -> int:
    counts = totals(scans)
    if counts[Status.DRIFT]:
        return EXIT_DRIFT
    if counts[Status.UNVERIFIABLE] or any(scanned.error for scanned in scans):
        return EXIT_ERROR
    return EXIT_COMPLIANT


def _account_ids(value: str | None) -> list[str]:
    if not value:
        return []
    ids = [part.strip() for part in value.split(",") if part.strip()]
    for account in ids:
        if not ACCOUNT_ID.match(account):
            raise click.BadParameter(
                f"{account!r} is not a 12-digit account id", param_hint="--accounts"
            )
    return sorted(set(ids))


def _regions(value: str | None) -> frozenset[str] | None:
    if not value:
        return None
    names = frozenset(part.strip() for part in value.split(",") if part.strip())
    for name in names:
        if not is_region_name(name):
            raise click.BadParameter(f"{name!r} is not a region name", param_hint="--regions")
    return names


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
def _scan_errors(endpoint_url: str | None, what: str = "") -> Iterator[None]:
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
        prefix = f"{what}: " if what else ""
        raise ScanError(
            f"{prefix}{error.operation_name} failed: {details.get('Code')}: "
            f"{details.get('Message')}"
        ) from error
    except BotoCoreError as error:
        raise ScanError(str(error)) from error


@contextmanager
def _progress() -> Iterator[Callable[[Finding], None]]:
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

        def advance(_finding: Finding) -> None:
            progress.advance(task)

        yield advance


@main.command(
    epilog=(
        "Exit codes: 0 every check passes (or warns); 1 at least one check fails; 2 nothing is "
        "deployed under that name there, no credentials, or a check could not be made."
    )
)
@click.option(
    "--stack",
    default=STACK_NAME,
    show_default=True,
    help="The monitor's stack (its home stack, not a forwarder's).",
)
@click.option(
    "--region",
    metavar="REGION",
    help="The monitor's home region. Default: the profile's region, AWS_REGION or "
    "AWS_DEFAULT_REGION, else us-east-1.",
)
@click.option("--profile", metavar="NAME", help="Named profile from your AWS config files.")
@click.option(
    "--endpoint-url",
    metavar="URL",
    help="Send every AWS request to this endpoint (a local emulator); AWS_ENDPOINT_URL_<SERVICE> "
    "still wins for its service.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
)
@click.option(
    "--live",
    is_flag=True,
    help="Also run a canary round trip in this account and home region: a temporary bucket "
    "given a configuration the policy refuses, the DRIFT alert awaited, the fix, the RESOLVED "
    "notice awaited, everything deleted. Prints the seconds from the API call to the alert.",
)
@click.option(
    "--live-timeout",
    type=click.IntRange(10, 3600),
    default=300,
    show_default=True,
    help="Seconds to wait for each of the canary's two messages.",
)
def doctor(
    *,
    stack: str,
    region: str | None,
    profile: str | None,
    endpoint_url: str | None,
    output_format: str,
    live: bool,
    live_timeout: int,
) -> None:
    """Check that the deployed monitor still sees: its stacks, functions, rules, trails,
    subscriptions, queues, last sweep, StackSets, member reader roles and heartbeat, with
    read-only calls (and, with --live, a canary). Progress on stderr, the report on stdout."""
    session = _session(profile, region)
    home = region or session.region_name or "us-east-1"
    clients = _client_factory(session, endpoint_url)
    console = Console(stderr=True)
    try:
        manifest = load_manifest(clients, stack, home)
    except NotDeployed as missing:
        raise ScanError(str(missing)) from missing
    except NoCredentialsError as error:
        raise ScanError(f"no AWS credentials: {error}") from error
    except (ClientError, BotoCoreError) as error:
        raise ScanError(f"could not read the deployment's parameter: {error}") from error
    checker = Doctor(clients, manifest)
    with console.status("checking", spinner="dots") as status:
        checks = checker.run(on_step=lambda step: status.update(f"checking {step}"))
        if live:
            status.update("canary round trip")
            checks.append(run_canary(clients, manifest, timeout_seconds=live_timeout))
    render = render_json if output_format == "json" else render_table
    click.echo(render(manifest["stack"], checks))
    sys.exit(doctor_exit_code(checks))


def _client_factory(session: boto3.Session, endpoint_url: str | None) -> ClientFactory:
    """One client per service and region; AWS_ENDPOINT_URL_<SERVICE> wins over --endpoint-url
    (boto3's own variable), so one service can be sent elsewhere."""
    made: dict[tuple[str, str], Any] = {}

    def client(service: str, region: str) -> Any:
        if (service, region) not in made:
            specific = os.environ.get(f"AWS_ENDPOINT_URL_{service.upper().replace('-', '_')}")
            made[(service, region)] = session.client(
                service,  # type: ignore[call-overload]
                region_name=region,
                endpoint_url=specific or endpoint_url,
                config=RETRY_CONFIG,
            )
        return made[(service, region)]

    return client
