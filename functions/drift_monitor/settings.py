"""The function's configuration, read from its environment once per container."""

from __future__ import annotations

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


class ConfigurationError(RuntimeError):
    """The function's environment is wrong; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    topic_arn: str
    failure_queue_url: str
    policy: Policy
    policy_from_defaults: bool


@dataclass(frozen=True)
class SweepSettings:
    topic_arn: str
    policy: Policy
    policy_from_defaults: bool
    concurrency: int
    digest_when_compliant: bool


def load_settings(environ: Mapping[str, str]) -> Settings:
    _require(environ, "ALERT_TOPIC_ARN", "FAILURE_QUEUE_URL")
    policy, from_defaults = _policy(environ)
    return Settings(
        topic_arn=environ["ALERT_TOPIC_ARN"],
        failure_queue_url=environ["FAILURE_QUEUE_URL"],
        policy=policy,
        policy_from_defaults=from_defaults,
    )


def load_sweep_settings(environ: Mapping[str, str]) -> SweepSettings:
    _require(environ, "ALERT_TOPIC_ARN")
    policy, from_defaults = _policy(environ)
    raw_concurrency = environ.get("SWEEP_CONCURRENCY", str(DEFAULT_CONCURRENCY))
    if not raw_concurrency.isdigit() or not 1 <= int(raw_concurrency) <= MAX_CONCURRENCY:
        raise ConfigurationError(
            f"SWEEP_CONCURRENCY must be a whole number from 1 to {MAX_CONCURRENCY}, "
            f"not {raw_concurrency!r}"
        )
    raw_flag = environ.get("DIGEST_WHEN_COMPLIANT", "false").lower()
    if raw_flag not in ("true", "false"):
        raise ConfigurationError(f"DIGEST_WHEN_COMPLIANT must be true or false, not {raw_flag!r}")
    return SweepSettings(
        topic_arn=environ["ALERT_TOPIC_ARN"],
        policy=policy,
        policy_from_defaults=from_defaults,
        concurrency=int(raw_concurrency),
        digest_when_compliant=raw_flag == "true",
    )


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
