"""The function's configuration, read from its environment once per container."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from .policy import Policy, PolicyError

# The defaults of Powertools' own variables; the stack sets the same values explicitly.
SERVICE_NAME = "s3-encryption-drift-monitor"
METRICS_NAMESPACE = "S3EncryptionDriftMonitor"
# Buckets read at once by the sweep: S3 allows thousands of requests per second per account, a
# Lambda function's network and CPU are the limit long before that.
DEFAULT_CONCURRENCY = 16
MAX_CONCURRENCY = 64
# Deliveries of one sweep work item before the worker records it as failed (and the queue would
# move it to its dead-letter queue); the stack sets the queue's maxReceiveCount to the same value.
DEFAULT_MAX_RECEIVES = 3
# The largest page ListBuckets serves, and so the most buckets one sweep work item holds.
LIST_PAGE_SIZE = 10_000
_ACCOUNT = re.compile(r"^\d{12}$")
_ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,64}$")


class ConfigurationError(RuntimeError):
    """The function's environment is wrong; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    topic_arn: str
    failure_queue_url: str
    policy: Policy
    policy_from_defaults: bool
    member_role_name: str | None  # None: only this account's buckets are read (no organization)


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
    member_role_name: str | None
    concurrency: int
    digest_when_compliant: bool
    max_receives: int  # the work queue's maxReceiveCount: the last attempt records a failure
    page_size: int  # buckets per work item (one ListBuckets page)


def load_settings(environ: Mapping[str, str]) -> Settings:
    _require(environ, "ALERT_TOPIC_ARN", "FAILURE_QUEUE_URL")
    policy, from_defaults = _policy(environ)
    return Settings(
        topic_arn=environ["ALERT_TOPIC_ARN"],
        failure_queue_url=environ["FAILURE_QUEUE_URL"],
        policy=policy,
        policy_from_defaults=from_defaults,
        member_role_name=_role_name(environ),
    )


def load_sweep_starter_settings(environ: Mapping[str, str]) -> SweepStarterSettings:
    _require(environ, "WORK_QUEUE_URL", "RUN_TABLE_NAME")
    raw_accounts = environ.get("SWEEP_ACCOUNTS", "")
    accounts = tuple(
        dict.fromkeys(part.strip() for part in raw_accounts.split(",") if part.strip())
    )
    for account in accounts:
        if not _ACCOUNT.match(account):
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
    _require(environ, "ALERT_TOPIC_ARN", "WORK_QUEUE_URL", "RUN_TABLE_NAME", "REPORT_BUCKET")
    policy, from_defaults = _policy(environ)
    return SweepWorkerSettings(
        topic_arn=environ["ALERT_TOPIC_ARN"],
        policy=policy,
        policy_from_defaults=from_defaults,
        work_queue_url=environ["WORK_QUEUE_URL"],
        run_table=environ["RUN_TABLE_NAME"],
        report_bucket=environ["REPORT_BUCKET"],
        member_role_name=_role_name(environ),
        concurrency=_whole(environ, "SWEEP_CONCURRENCY", DEFAULT_CONCURRENCY, MAX_CONCURRENCY),
        digest_when_compliant=_flag(environ, "DIGEST_WHEN_COMPLIANT"),
        max_receives=_whole(environ, "WORK_MAX_RECEIVES", DEFAULT_MAX_RECEIVES, 1000),
        page_size=_whole(environ, "SWEEP_PAGE_SIZE", LIST_PAGE_SIZE, LIST_PAGE_SIZE),
    )


def _whole(environ: Mapping[str, str], name: str, default: int, maximum: int) -> int:
    raw = environ.get(name, str(default))
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise ConfigurationError(f"{name} must be a whole number from 1 to {maximum}, not {raw!r}")
    return int(raw)


def _flag(environ: Mapping[str, str], name: str) -> bool:
    raw = environ.get(name, "false").lower()
    if raw not in ("true", "false"):
        raise ConfigurationError(f"{name} must be true or false, not {raw!r}")
    return raw == "true"


def _role_name(environ: Mapping[str, str]) -> str | None:
    name = environ.get("MEMBER_ROLE_NAME", "")
    if name and not _ROLE_NAME.match(name):
        raise ConfigurationError(f"MEMBER_ROLE_NAME {name!r} is not an IAM role name")
    return name or None


def _require(environ: Mapping[str, str], *names: str) -> None:
    missing = [name for name in names if not environ.get(name)]
    if missing:
        raise ConfigurationError(f"environment variable {missing[0]} is not set")


def _policy(environ: Mapping[str, str]) -> tuple[Policy, bool]:
    raw_policy = environ.get("ENCRYPTION_POLICY", "").strip()
    try:
        policy = Policy.from_json(raw_policy) if raw_policy else Policy()
    except PolicyError as error:
        raise ConfigurationError(f"ENCRYPTION_POLICY is invalid: {error}") from error
    return policy, not raw_policy
