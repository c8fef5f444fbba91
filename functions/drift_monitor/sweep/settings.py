"""The sweep functions' configuration, read from their environment once per container."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..domain.models import ACCOUNT_ID, is_region_name
from ..domain.policy import Policy
from ..domain.settings import (
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_RECEIVES,
    LIST_PAGE_SIZE,
    MAX_CONCURRENCY,
    ConfigurationError,
    Heartbeat,
    heartbeat_from,
    policy_from,
    require,
    role_name_from,
    security_hub_from,
    whole_number,
)


@dataclass(frozen=True)
class SweepStarterSettings:
    work_queue_url: str
    run_table: str
    accounts: tuple[str, ...]  # explicit accounts to sweep besides this one
    organization: bool  # sweep every active account of the organization (ListAccounts)


@dataclass(frozen=True)
class SweepWorkerSettings:
    topic_arn: str
    policy: Policy
    policy_from_defaults: bool
    work_queue_url: str
    run_table: str
    report_bucket: str
    state_table: str
    security_hub_product_arn: str | None  # None: the Security Hub output is off
    member_role_name: str | None
    concurrency: int
    digest_when_compliant: bool
    max_receives: int  # the work queue's maxReceiveCount: the last attempt records a failure
    page_size: int  # buckets per work item (one ListBuckets page)
    # Where directory and table buckets are listed (their listings are per region): the watched
    # regions; by default the function's own.
    regions: tuple[str, ...] = ()
    # Deployed by a StackSets delegated administrator: the management account has no reader role
    # unless its own stacks were deployed there.
    delegated_admin: bool = False
    heartbeat: Heartbeat | None = None  # on: the digest lists the silent event paths


def load_sweep_starter_settings(environ: Mapping[str, str]) -> SweepStarterSettings:
    require(environ, "WORK_QUEUE_URL", "RUN_TABLE_NAME")
    raw_accounts = environ.get("SWEEP_ACCOUNTS", "")
    accounts = tuple(
        dict.fromkeys(part.strip() for part in raw_accounts.split(",") if part.strip())
    )
    for account in accounts:
        if not ACCOUNT_ID.match(account):
            raise ConfigurationError(
                f"SWEEP_ACCOUNTS must be comma-separated 12-digit account ids, not {account!r}"
            )
    return SweepStarterSettings(
        work_queue_url=environ["WORK_QUEUE_URL"],
        run_table=environ["RUN_TABLE_NAME"],
        accounts=accounts,
        organization=_flag(environ, "SWEEP_ORGANIZATION"),
    )


def load_sweep_worker_settings(environ: Mapping[str, str]) -> SweepWorkerSettings:
    require(
        environ,
        "ALERT_TOPIC_ARN",
        "WORK_QUEUE_URL",
        "RUN_TABLE_NAME",
        "REPORT_BUCKET",
        "STATE_TABLE_NAME",
    )
    policy, from_defaults = policy_from(environ)
    return SweepWorkerSettings(
        topic_arn=environ["ALERT_TOPIC_ARN"],
        policy=policy,
        policy_from_defaults=from_defaults,
        work_queue_url=environ["WORK_QUEUE_URL"],
        run_table=environ["RUN_TABLE_NAME"],
        report_bucket=environ["REPORT_BUCKET"],
        state_table=environ["STATE_TABLE_NAME"],
        security_hub_product_arn=security_hub_from(environ),
        member_role_name=role_name_from(environ),
        concurrency=whole_number(
            environ, "SWEEP_CONCURRENCY", DEFAULT_CONCURRENCY, MAX_CONCURRENCY
        ),
        digest_when_compliant=_flag(environ, "DIGEST_WHEN_COMPLIANT"),
        max_receives=whole_number(environ, "WORK_MAX_RECEIVES", DEFAULT_MAX_RECEIVES, 1000),
        page_size=whole_number(environ, "SWEEP_PAGE_SIZE", LIST_PAGE_SIZE, LIST_PAGE_SIZE),
        regions=_regions(environ),
        delegated_admin=_flag(environ, "DELEGATED_ADMIN"),
        heartbeat=heartbeat_from(environ),
    )


def _regions(environ: Mapping[str, str]) -> tuple[str, ...]:
    raw = environ.get("BUCKET_REGIONS") or environ.get("AWS_REGION", "")
    regions = tuple(region.strip() for region in raw.split(",") if region.strip())
    if not regions:
        raise ConfigurationError("BUCKET_REGIONS (or AWS_REGION) must name at least one region")
    for region in regions:
        if not is_region_name(region):
            raise ConfigurationError(f"BUCKET_REGIONS: {region!r} is not an AWS region name")
    return regions


def _flag(environ: Mapping[str, str], name: str) -> bool:
    raw = environ.get(name, "false").lower()
    if raw not in ("true", "false"):
        raise ConfigurationError(f"{name} must be true or false, not {raw!r}")
    return raw == "true"
