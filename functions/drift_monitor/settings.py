"""The function's configuration, read from its environment once per container."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .policy import Policy, PolicyError

# The defaults of Powertools' own variables; the stack sets the same values explicitly.
SERVICE_NAME = "s3-encryption-drift-monitor"
METRICS_NAMESPACE = "S3EncryptionDriftMonitor"


class ConfigurationError(RuntimeError):
    """The function's environment is wrong; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    topic_arn: str
    failure_queue_url: str
    policy: Policy
    policy_from_defaults: bool


def load_settings(environ: Mapping[str, str]) -> Settings:
    missing = [name for name in ("ALERT_TOPIC_ARN", "FAILURE_QUEUE_URL") if not environ.get(name)]
    if missing:
        raise ConfigurationError(f"environment variable {missing[0]} is not set")
    raw_policy = environ.get("ENCRYPTION_POLICY", "").strip()
    try:
        policy = Policy.from_json(raw_policy) if raw_policy else Policy()
    except PolicyError as error:
        raise ConfigurationError(f"ENCRYPTION_POLICY is invalid: {error}") from error
    return Settings(
        topic_arn=environ["ALERT_TOPIC_ARN"],
        failure_queue_url=environ["FAILURE_QUEUE_URL"],
        policy=policy,
        policy_from_defaults=not raw_policy,
    )
