"""Synth-time configuration: read from CDK context, validated once, with errors naming the key."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import boto3

from functions.drift_monitor.domain.errors import PolicyError
from functions.drift_monitor.domain.models import ACCOUNT_ID
from functions.drift_monitor.domain.permissions import DEFAULT_MEMBER_ROLE_NAME, ROLE_NAME
from functions.drift_monitor.domain.policy import Policy
from functions.drift_monitor.domain.settings import (
    DEFAULT_REMEDIATION_LIMIT,
    HEARTBEAT_MINUTES,
    MAX_REMEDIATION_LIMIT,
    Mode,
)

from .forwarding import monitored_events

_EMAIL = re.compile(r"^[^@\s,]+@[^@\s,]+\.[^@\s,]+$")
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\(\S+( \S+){5}\)$")
DEFAULT_SWEEP_SCHEDULE = "rate(1 day)"
_LAYER_ARN = re.compile(r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:layer:[A-Za-z0-9_-]+:\d+$")
_ORGANIZATION_ID = re.compile(r"^o-[a-z0-9]{10,32}$")
_ROOT_OR_OU = re.compile(r"^(r-[0-9a-z]{4,32}|ou-[0-9a-z]{4,32}-[a-z0-9]{8,32})$")
DEFAULT_REPORT_RETENTION_DAYS = 90
DEFAULT_GRACE_SECONDS = 300
MAX_GRACE_SECONDS = 900  # SQS's longest delivery delay
DEFAULT_BUS = "default"
_EVENT_BUS_ARN = re.compile(
    r"^arn:aws[a-z-]*:events:[a-z0-9-]+:\d{12}:event-bus/[A-Za-z0-9._\-/]+$"
)
STACK_SET_CALLERS = ("SELF", "DELEGATED_ADMIN")


class ConfigError(ValueError):
    """Invalid context; the message names the context key (and field) to fix."""


# The ids Amazon Q Developer in chat applications accepts (botocore ``chatbot`` model:
# CreateSlackChannelConfiguration SlackTeamId/SlackChannelId, CreateMicrosoftTeamsChannel-
# Configuration TeamId/TenantId/ChannelId patterns).
_SLACK_WORKSPACE = re.compile(r"^[0-9A-Z]{1,255}$")
_SLACK_CHANNEL = re.compile(r"^[A-Za-z0-9]{1,255}$")
_UUID = re.compile(r"^[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}$")
_TEAMS_CHANNEL = re.compile(
    r"^([a-zA-Z0-9-_=+/.,])*%3[aA]([a-zA-Z0-9-_=+/.,])*%40([a-zA-Z0-9-_=+/.,])*$"
)


@dataclass(frozen=True)
class SlackChannel:
    workspace_id: str
    channel_id: str


@dataclass(frozen=True)
class TeamsChannel:
    team_id: str
    channel_id: str
    tenant_id: str


@dataclass(frozen=True)
class ChatProps:
    """§15: the chat channels that receive every alert and notice (AWS Chatbot)."""

    slack: tuple[SlackChannel, ...] = ()
    teams: tuple[TeamsChannel, ...] = ()


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
    report_retention_days: int = DEFAULT_REPORT_RETENTION_DAYS
    # Every region watched, the home region (where the monitor lives) first. Empty: only the
    # region the stack is deployed to, as an environment-agnostic stack.
    regions: tuple[str, ...] = ()
    organization: OrganizationProps | None = None
    # §11: CreateBucket is evaluated this long after the event (0: at once, like other changes).
    new_bucket_grace_seconds: int = DEFAULT_GRACE_SECONDS
    security_hub: bool = False
    # None: off; "default": this account's default bus; otherwise the ARN of a bus.
    event_bus_output: str | None = None
    # §12: off | dry-run | apply, and the most buckets remediation may change per hour.
    remediation: Mode = Mode.OFF
    remediation_limit_per_hour: int = DEFAULT_REMEDIATION_LIMIT
    # §14: the heartbeat's schedule (``rate(N minutes|hours)``); None: off.
    heartbeat: str | None = None
    # §15: Slack and Microsoft Teams channels; None: no chat.
    chat: ChatProps | None = None

    @property
    def heartbeat_minutes(self) -> int | None:
        return None if self.heartbeat is None else _rate_minutes(self.heartbeat)

    @property
    def remediates(self) -> bool:
        """Whether the monitor may write bucket encryption (``apply``)."""
        return self.remediation is Mode.APPLY

    @property
    def home_region(self) -> str | None:
        return self.regions[0] if self.regions else None

    @property
    def watched_events(self) -> tuple[str, ...]:
        return monitored_events(
            exempt_tag=self.policy.exempt_tag is not None, key_checks=self.policy.key_checks
        )

    @property
    def member_role_name(self) -> str | None:
        return None if self.organization is None else self.organization.member_role_name

    def reader_environment(self) -> dict[str, str]:
        """What a function that reads buckets needs to read other accounts' (none without an
        organization: it reads only its own)."""
        name = self.member_role_name
        return {"MEMBER_ROLE_NAME": name} if name else {}


@dataclass(frozen=True)
class OrganizationProps:
    """The organization topology: member accounts forward events and lend a reader role."""

    organization_id: str
    member_targets: tuple[str, ...]  # OU or root ids the StackSets deploy to
    member_role_name: str = DEFAULT_MEMBER_ROLE_NAME
    # Accounts to sweep instead of every account of the organization (ListAccounts).
    accounts: tuple[str, ...] = ()
    # SELF from the management account, DELEGATED_ADMIN from a StackSets delegated administrator.
    stack_set_call_as: str = "SELF"

    @property
    def delegated_admin(self) -> bool:
        """Deployed by a delegated administrator: StackSets never reach the management account,
        which gets its reader role and forwarders from the ManagementAccount stacks instead."""
        return self.stack_set_call_as == "DELEGATED_ADMIN"


CONTEXT_KEYS = (
    "policy",
    "alertEmails",
    "createTrail",
    "powertoolsLayerArn",
    "sweepSchedule",
    "sweepDigestWhenCompliant",
    "sweepReportRetentionDays",
    "regions",
    "homeRegion",
    "organizationId",
    "memberTargets",
    "memberRoleName",
    "accounts",
    "stackSetCallAs",
    "newBucketGraceSeconds",
    "securityHub",
    "eventBusOutput",
    "remediation",
    "remediationLimitPerHour",
    "heartbeat",
    "chat",
)
_ORGANIZATION_KEYS = ("memberTargets", "memberRoleName", "accounts", "stackSetCallAs")


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
        report_retention_days=_whole(
            "sweepReportRetentionDays",
            context.get("sweepReportRetentionDays"),
            DEFAULT_REPORT_RETENTION_DAYS,
            1,
            3650,
            unit=" of days",
        ),
        regions=_regions(context.get("regions"), context.get("homeRegion")),
        organization=_organization(context),
        new_bucket_grace_seconds=_whole(
            "newBucketGraceSeconds",
            context.get("newBucketGraceSeconds"),
            DEFAULT_GRACE_SECONDS,
            0,
            MAX_GRACE_SECONDS,
            unit=" of seconds",
            why=" (SQS's longest delay)",
        ),
        security_hub=_flag("securityHub", context.get("securityHub")),
        event_bus_output=_event_bus_output(context.get("eventBusOutput")),
        remediation=_remediation(context.get("remediation")),
        remediation_limit_per_hour=_whole(
            "remediationLimitPerHour",
            context.get("remediationLimitPerHour"),
            DEFAULT_REMEDIATION_LIMIT,
            1,
            MAX_REMEDIATION_LIMIT,
        ),
        heartbeat=_heartbeat(context.get("heartbeat")),
        chat=_chat(context.get("chat")),
    )


def _chat(value: Any) -> ChatProps | None:
    """``{"slack": [{"workspaceId", "channelId"}], "teams": [{"teamId", "channelId",
    "tenantId"}]}`` (either list may be left out), or a JSON string of it."""
    if value in (None, "", {}):
        return None
    value = _json("chat", value)
    if not isinstance(value, dict):
        raise ConfigError(
            f"context 'chat' must be an object with slack and/or teams, got {value!r}"
        )
    unknown = sorted(set(value) - {"slack", "teams"})
    if unknown:
        raise ConfigError(f"context 'chat.{unknown[0]}': unknown key; known keys are slack, teams")
    slack = tuple(
        SlackChannel(
            _chat_id(f"chat.slack[{n}].workspaceId", raw, "workspaceId", _SLACK_WORKSPACE),
            _chat_id(f"chat.slack[{n}].channelId", raw, "channelId", _SLACK_CHANNEL),
        )
        for n, raw in enumerate(_chat_list("slack", value.get("slack")))
    )
    teams = tuple(
        TeamsChannel(
            _chat_id(f"chat.teams[{n}].teamId", raw, "teamId", _UUID),
            _chat_id(f"chat.teams[{n}].channelId", raw, "channelId", _TEAMS_CHANNEL),
            _chat_id(f"chat.teams[{n}].tenantId", raw, "tenantId", _UUID),
        )
        for n, raw in enumerate(_chat_list("teams", value.get("teams")))
    )
    if not slack and not teams:
        raise ConfigError("context 'chat' names no channel: give slack and/or teams")
    return ChatProps(slack=slack, teams=teams)


def _chat_list(name: str, value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ConfigError(f"context 'chat.{name}' must be a list of objects, got {value!r}")
    return value


def _chat_id(where: str, raw: dict[str, Any], key: str, pattern: re.Pattern[str]) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not pattern.match(value):
        raise ConfigError(
            f"context '{where}': {value!r} is not a valid id (it must match {pattern.pattern}; "
            "copy it from the Amazon Q Developer in chat applications console)"
        )
    return value


def _heartbeat(value: Any) -> str | None:
    """``off`` (the default) or ``rate(N minutes|hours)`` from 15 minutes to 24 hours."""
    if value in (None, "", "off", False):
        return None
    low, high = HEARTBEAT_MINUTES
    hint = f"'off' or 'rate(N minutes|hours)' from {low} minutes to {high // 60} hours"
    rate = _RATE.match(value) if isinstance(value, str) else None
    if rate is None or rate.group(2).startswith("day"):
        raise ConfigError(f"context 'heartbeat' must be {hint}, got {value!r}")
    amount, unit = int(rate.group(1)), rate.group(2)
    if amount < 1 or (amount == 1) != (not unit.endswith("s")):
        raise ConfigError(
            f"context 'heartbeat': {value!r} is not a valid rate (EventBridge wants "
            "'rate(1 hour)' but 'rate(2 hours)')"
        )
    if not low <= _rate_minutes(value) <= high:
        raise ConfigError(f"context 'heartbeat' must be {hint}, got {value!r}")
    return str(value)


def _rate_minutes(rate: str) -> int:
    match = _RATE.match(rate)
    assert match is not None, rate
    amount, unit = int(match.group(1)), match.group(2)
    return amount * {"minute": 1, "hour": 60, "day": 1440}[unit.rstrip("s")]


def _remediation(value: Any) -> Mode:
    if value is None or value == "":
        return Mode.OFF
    if value not in list(Mode):
        raise ConfigError(f"context 'remediation' must be one of {', '.join(Mode)}, got {value!r}")
    return Mode(value)


def _whole(
    name: str, value: Any, default: int, low: int, high: int, *, unit: str = "", why: str = ""
) -> int:
    """A whole number from ``low`` to ``high`` (from cdk.json, or a string from ``-c``)."""
    if value is None or value == "":
        return default
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(
            f"context '{name}' must be a whole number{unit} from {low} to {high}{why}, "
            f"got {value!r}"
        )
    return value


def _event_bus_output(value: Any) -> str | None:
    """false (off), true (this account's default bus) or the ARN of the bus to put events on."""
    if value is None or value == "" or value is False or value == "false":
        return None
    if value is True or value == "true":
        return DEFAULT_BUS
    if isinstance(value, str) and _EVENT_BUS_ARN.match(value):
        return value
    raise ConfigError(
        "context 'eventBusOutput' must be false, true (this account's default bus) or an event "
        f"bus ARN, got {value!r}"
    )


# Lambda: "4 KB" for all of a function's environment variables; the other variables take < 1 KB.
POLICY_BYTES_LIMIT = 3000


def _json(name: str, value: Any) -> Any:
    """A context value given as an object, or as JSON text (``-c key='{...}'``)."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as error:
        raise ConfigError(f"context '{name}' is not valid JSON: {error}") from error


def _policy(value: Any) -> Policy:
    if value is None:
        return Policy()
    value = _json("policy", value)
    try:
        policy = Policy.from_dict(value)
    except PolicyError as error:
        raise ConfigError(f"context 'policy' is invalid: {error}") from error
    size = len(policy.to_json().encode())
    if size > POLICY_BYTES_LIMIT:
        raise ConfigError(
            f"context 'policy' is {size} bytes as JSON, more than {POLICY_BYTES_LIMIT}: the "
            "functions receive it in ENCRYPTION_POLICY and Lambda allows 4 KB of environment "
            "variables per function (Lambda Developer Guide, quotas). Shorten the exceptions' "
            "reasons, or cover more buckets with one glob."
        )
    return policy


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


def _list(name: str, value: Any) -> list[str]:
    """A list from cdk.json, or from ``-c key=a,b`` or ``-c key='["a","b"]'`` (always strings)."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as error:
                raise ConfigError(f"context '{name}' is not valid JSON: {error}") from error
        else:
            value = [part.strip() for part in text.split(",") if part.strip()]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"context '{name}' must be a list of strings or a comma-separated string")
    return value


@cache
def _known_regions() -> dict[str, str]:
    """Every region name botocore knows (offline, from its endpoint data), with its partition."""
    session = boto3.Session()
    return {
        region: partition
        for partition in session.get_available_partitions()
        for region in session.get_available_regions("events", partition_name=partition)
    }


def _regions(value: Any, home: Any) -> tuple[str, ...]:
    if value is None or value in ("", []):
        if home not in (None, ""):
            raise ConfigError("context 'homeRegion' needs context 'regions' (the regions to watch)")
        return ()
    regions = _list("regions", value)
    if not regions:
        raise ConfigError("context 'regions' must name at least one region")
    known = _known_regions()
    for region in regions:
        if region not in known:
            raise ConfigError(
                f"context 'regions': {region!r} is not an AWS region name (for example "
                "eu-west-1, us-east-1)"
            )
    duplicates = sorted({region for region in regions if regions.count(region) > 1})
    if duplicates:
        raise ConfigError(f"context 'regions' lists {duplicates[0]} more than once")
    partitions = {known[region] for region in regions}
    if len(partitions) > 1:
        raise ConfigError(
            f"context 'regions' mixes partitions ({', '.join(sorted(partitions))}): events cannot "
            "cross from one to another"
        )
    if home not in (None, ""):
        if home not in regions:
            raise ConfigError(
                f"context 'homeRegion' {home!r} is not one of context 'regions' "
                f"({', '.join(regions)}): the home region must be watched too"
            )
        regions.remove(home)
        regions.insert(0, home)
    return tuple(regions)


def _organization(context: dict[str, Any]) -> OrganizationProps | None:
    organization_id = context.get("organizationId")
    if organization_id in (None, ""):
        stray = [key for key in _ORGANIZATION_KEYS if context.get(key) not in (None, "", [])]
        if stray:
            raise ConfigError(f"context '{stray[0]}' needs context 'organizationId' (o-...)")
        return None
    if not isinstance(organization_id, str) or not _ORGANIZATION_ID.match(organization_id):
        raise ConfigError(
            f"context 'organizationId': {organization_id!r} is not an organization id "
            "(o- and 10 to 32 lowercase letters or digits)"
        )
    if context.get("regions") in (None, "", []):
        raise ConfigError(
            "context 'regions' is required with 'organizationId': list the regions to watch in "
            "every account, the home region (where the monitor lives) first"
        )
    targets = _list("memberTargets", context.get("memberTargets") or [])
    if not targets:
        raise ConfigError(
            "context 'memberTargets' must list the organization's root id (r-...) or the OU ids "
            "(ou-...) whose accounts the monitor watches"
        )
    for target in targets:
        if not _ROOT_OR_OU.match(target):
            raise ConfigError(
                f"context 'memberTargets': {target!r} is not a root id (r-...) or an OU id "
                "(ou-...-...)"
            )
    role_name = context.get("memberRoleName") or DEFAULT_MEMBER_ROLE_NAME
    if not isinstance(role_name, str) or not ROLE_NAME.match(role_name):
        raise ConfigError(f"context 'memberRoleName': {role_name!r} is not an IAM role name")
    accounts = _list("accounts", context.get("accounts") or [])
    for account in accounts:
        if not ACCOUNT_ID.match(account):
            raise ConfigError(f"context 'accounts': {account!r} is not a 12-digit account id")
    call_as = context.get("stackSetCallAs") or "SELF"
    if call_as not in STACK_SET_CALLERS:
        raise ConfigError(
            f"context 'stackSetCallAs' must be SELF (deploying from the management account) or "
            f"DELEGATED_ADMIN (from a StackSets delegated administrator), got {call_as!r}"
        )
    return OrganizationProps(
        organization_id=organization_id,
        member_targets=tuple(dict.fromkeys(targets)),
        member_role_name=role_name,
        accounts=tuple(dict.fromkeys(accounts)),
        stack_set_call_as=call_as,
    )
