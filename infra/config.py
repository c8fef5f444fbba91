"""Synth-time configuration: read from CDK context, validated once, with errors naming the key."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from functions.drift_monitor.policy import Policy, PolicyError

_EMAIL = re.compile(r"^[^@\s,]+@[^@\s,]+\.[^@\s,]+$")
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\(\S+( \S+){5}\)$")
DEFAULT_SWEEP_SCHEDULE = "rate(1 day)"
_LAYER_ARN = re.compile(r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:layer:[A-Za-z0-9_-]+:\d+$")


class ConfigError(ValueError):
    """Invalid context; the message names the context key (and field) to fix."""


@dataclass(frozen=True)
class MonitorProps:
    """Everything the monitor construct needs, already validated."""

    policy: Policy = field(default_factory=Policy)
    alert_emails: tuple[str, ...] = ()
    create_trail: bool = False
    # Defaults to the official Powertools layer of the version pinned in pyproject.toml.
    powertools_layer_arn: str | None = None
    # An EventBridge schedule expression; None turns the sweep off.
    sweep_schedule: str | None = DEFAULT_SWEEP_SCHEDULE
    digest_when_compliant: bool = False


CONTEXT_KEYS = (
    "policy",
    "alertEmails",
    "createTrail",
    "powertoolsLayerArn",
    "sweepSchedule",
    "sweepDigestWhenCompliant",
)


def props_from_context(context: dict[str, Any]) -> MonitorProps:
    return MonitorProps(
        policy=_policy(context.get("policy")),
        alert_emails=_emails(context.get("alertEmails")),
        create_trail=_flag("createTrail", context.get("createTrail")),
        powertools_layer_arn=_layer_arn(context.get("powertoolsLayerArn")),
        sweep_schedule=_schedule(context.get("sweepSchedule")),
        digest_when_compliant=_flag(
            "sweepDigestWhenCompliant", context.get("sweepDigestWhenCompliant")
        ),
    )


def _policy(value: Any) -> Policy:
    if value is None:
        return Policy()
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as error:
            raise ConfigError(f"context 'policy' is not valid JSON: {error}") from error
    try:
        return Policy.from_dict(value)
    except PolicyError as error:
        raise ConfigError(f"context 'policy' is invalid: {error}") from error


def _emails(value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(
            "context 'alertEmails' must be a list of addresses or a comma-separated string"
        )
    for address in value:
        if not _EMAIL.match(address):
            raise ConfigError(f"context 'alertEmails': {address!r} is not an email address")
    return tuple(dict.fromkeys(value))


def _flag(name: str, value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ConfigError(f"context '{name}' must be true or false, got {value!r}")


def _layer_arn(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _LAYER_ARN.match(value):
        raise ConfigError(
            f"context 'powertoolsLayerArn': {value!r} is not a Lambda layer version ARN"
        )
    return value


def _schedule(value: Any) -> str | None:
    if value is None or value == "":
        return DEFAULT_SWEEP_SCHEDULE
    if value == "off":
        return None
    hint = "'off', 'rate(N minutes|hours|days)' or 'cron(...)' with six fields"
    if not isinstance(value, str):
        raise ConfigError(f"context 'sweepSchedule' must be {hint}, got {value!r}")
    rate = _RATE.match(value)
    if rate:
        amount, unit = int(rate.group(1)), rate.group(2)
        if amount < 1 or (amount == 1) != (not unit.endswith("s")):
            raise ConfigError(
                f"context 'sweepSchedule': {value!r} is not a valid rate (EventBridge wants "
                "'rate(1 day)' but 'rate(2 days)')"
            )
        if unit.startswith("minute") and amount < 60:
            raise ConfigError(
                f"context 'sweepSchedule': {value!r} is more often than hourly; a sweep can run "
                "for 15 minutes and events already report changes as they happen"
            )
        return value
    if _CRON.match(value):
        return value
    raise ConfigError(f"context 'sweepSchedule' must be {hint}, got {value!r}")
