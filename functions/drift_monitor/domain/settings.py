"""The function's configuration, read from its environment once per container."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from .errors import PolicyError
from .permissions import ROLE_NAME
from .policy import Policy

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
# Remediation (§12): how many buckets it may change per hour.
DEFAULT_REMEDIATION_LIMIT = 20
MAX_REMEDIATION_LIMIT = 1000


class Mode(StrEnum):
    """Remediation (§12): context ``remediation``, environment ``REMEDIATION``."""

    OFF = "off"
    DRY_RUN = "dry-run"
    APPLY = "apply"


_PRODUCT_ARN = re.compile(r"^arn:aws[a-z-]*:securityhub:[a-z0-9-]+:(\d{12}):product/\1/default$")
_EVENT_BUS = re.compile(
    r"^([A-Za-z0-9._\-/]{1,256}|arn:aws[a-z-]*:events:[a-z0-9-]+:\d{12}:event-bus/[A-Za-z0-9._\-/]+)$"
)


# The heartbeat's interval (§14): 15 minutes to a day.
HEARTBEAT_MINUTES = (15, 24 * 60)


class ConfigurationError(RuntimeError):
    """The function's environment is wrong; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    topic_arn: str
    failure_queue_url: str
    policy: Policy
    policy_from_defaults: bool
    member_role_name: str | None  # None: only this account's buckets are read (no organization)
    state_table: str
    # Optional outputs (§11), each None when turned off.
    security_hub_product_arn: str | None = None
    output_event_bus: str | None = None
    remediation: Mode = Mode.OFF
    remediation_limit_per_hour: int = DEFAULT_REMEDIATION_LIMIT
    heartbeat: Heartbeat | None = None  # None: the heartbeat is off
    # §15: the queue of key-event re-evaluations too many for one invocation (keyChecks).
    key_queue_url: str | None = None
    # §15: the chat topic (AWS Chatbot custom notifications); None: no chat configured.
    chat_topic_arn: str | None = None


@dataclass(frozen=True)
class Heartbeat:
    minutes: int  # the schedule's interval
    regions: tuple[str, ...]  # the watched regions, where this account's heartbeat beats


def load_settings(environ: Mapping[str, str]) -> Settings:
    require(environ, "ALERT_TOPIC_ARN", "FAILURE_QUEUE_URL", "STATE_TABLE_NAME")
    policy, from_defaults = policy_from(environ)
    product_arn = security_hub_from(environ)
    bus = environ.get("OUTPUT_EVENT_BUS") or None
    if bus is not None and not _EVENT_BUS.match(bus):
        raise ConfigurationError(f"OUTPUT_EVENT_BUS {bus!r} is not an event bus name or ARN")
    remediation = environ.get("REMEDIATION") or Mode.OFF
    if remediation not in list(Mode):
        raise ConfigurationError(
            f"REMEDIATION must be one of {', '.join(Mode)}, not {remediation!r}"
        )
    return Settings(
        topic_arn=environ["ALERT_TOPIC_ARN"],
        failure_queue_url=environ["FAILURE_QUEUE_URL"],
        policy=policy,
        policy_from_defaults=from_defaults,
        member_role_name=role_name_from(environ),
        state_table=environ["STATE_TABLE_NAME"],
        security_hub_product_arn=product_arn,
        output_event_bus=bus,
        remediation=Mode(remediation),
        remediation_limit_per_hour=whole_number(
            environ, "REMEDIATION_LIMIT_PER_HOUR", DEFAULT_REMEDIATION_LIMIT, MAX_REMEDIATION_LIMIT
        ),
        heartbeat=heartbeat_from(environ),
        key_queue_url=environ.get("KEY_QUEUE_URL") or None,
        chat_topic_arn=environ.get("CHAT_TOPIC_ARN") or None,
    )


def heartbeat_from(environ: Mapping[str, str]) -> Heartbeat | None:
    """``HEARTBEAT_MINUTES`` (unset: off) and ``HEARTBEAT_REGIONS`` (comma-separated)."""
    raw = environ.get("HEARTBEAT_MINUTES") or None
    if raw is None:
        return None
    low, high = HEARTBEAT_MINUTES
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ConfigurationError(
            f"HEARTBEAT_MINUTES must be a whole number from {low} to {high}, not {raw!r}"
        )
    regions = tuple(region for region in environ.get("HEARTBEAT_REGIONS", "").split(",") if region)
    if not regions:
        raise ConfigurationError("HEARTBEAT_REGIONS must name the watched regions")
    return Heartbeat(int(raw), regions)


def security_hub_from(environ: Mapping[str, str]) -> str | None:
    """The product ARN findings are imported under; None: the Security Hub output is off."""
    product_arn = environ.get("SECURITY_HUB_PRODUCT_ARN") or None
    if product_arn is not None and not _PRODUCT_ARN.match(product_arn):
        raise ConfigurationError(
            f"SECURITY_HUB_PRODUCT_ARN {product_arn!r} is not a Security Hub product ARN "
            "(arn:aws:securityhub:<region>:<account>:product/<account>/default)"
        )
    return product_arn


def role_name_from(environ: Mapping[str, str]) -> str | None:
    name = environ.get("MEMBER_ROLE_NAME", "")
    if name and not ROLE_NAME.match(name):
        raise ConfigurationError(f"MEMBER_ROLE_NAME {name!r} is not an IAM role name")
    return name or None


def whole_number(environ: Mapping[str, str], name: str, default: int, maximum: int) -> int:
    """``name`` from 1 to ``maximum``; ``default`` when it is unset or empty."""
    raw = environ.get(name) or str(default)
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise ConfigurationError(f"{name} must be a whole number from 1 to {maximum}, not {raw!r}")
    return int(raw)


def require(environ: Mapping[str, str], *names: str) -> None:
    missing = [name for name in names if not environ.get(name)]
    if missing:
        raise ConfigurationError(f"environment variable {missing[0]} is not set")


def policy_from(environ: Mapping[str, str]) -> tuple[Policy, bool]:
    raw_policy = environ.get("ENCRYPTION_POLICY", "").strip()
    try:
        policy = Policy.from_json(raw_policy) if raw_policy else Policy()
    except PolicyError as error:
        raise ConfigurationError(f"ENCRYPTION_POLICY is invalid: {error}") from error
    return policy, not raw_policy
