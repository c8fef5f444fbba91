"""``sts:AssumeRole`` decided as STS decides it, for moto, which lets anyone assume any role.

moto 5.2.5 returns credentials for any role ARN, even one that does not exist, so a member account
whose reader role is missing, or whose trust policy names someone else, would look readable.
Here AssumeRole is refused (403 AccessDenied, STS's message) unless the role exists in the target
account and a statement of its trust policy allows the caller: ``Principal`` by account, account
root or ARN, and the condition operators the monitor's templates use (``StringEquals``,
``StringLike``, ``ArnEquals``, ``ArnLike`` on ``aws:PrincipalArn``, ``aws:PrincipalAccount`` and
``aws:PrincipalOrgID``). Any other condition is treated as not met: refused rather than allowed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import unquote

_ASSUMED_ROLE = re.compile(r"^arn:(?P<p>[\w-]+):sts::(?P<a>\d{12}):assumed-role/(?P<n>[^/]+)/.+$")
_ACTIONS = frozenset({"sts:assumerole", "sts:*", "*"})


@dataclass(frozen=True)
class Caller:
    arn: str  # as aws:PrincipalArn sees it: a role's ARN for its sessions
    account: str
    organization_id: str | None


def principal_arn(caller_arn: str, account: str) -> str:
    """The ARN that trust policies and ``aws:PrincipalArn`` compare: a session's role, else the
    user, else (moto's keys that belong to no IAM user) the account root."""
    session = _ASSUMED_ROLE.match(caller_arn)
    if session:
        return f"arn:{session['p']}:iam::{session['a']}:role/{session['n']}"
    if ":user/moto" in caller_arn:
        return f"arn:aws:iam::{account}:root"
    return caller_arn


def trust_allows(trust_policy: str | dict[str, Any], caller: Caller) -> bool:
    document = _parse(trust_policy)
    statements = document.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    allowed = False
    for statement in statements:
        if not _applies(statement, caller):
            continue
        if statement.get("Effect") == "Deny":
            return False
        allowed = True
    return allowed


def _parse(policy: str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(policy, dict):
        return policy
    try:
        parsed: dict[str, Any] = json.loads(policy)
    except json.JSONDecodeError:
        parsed = json.loads(unquote(policy))
    return parsed


def _applies(statement: dict[str, Any], caller: Caller) -> bool:
    actions = _strings(statement.get("Action"))
    if not any(action.lower() in _ACTIONS for action in actions):
        return False
    return _principal_matches(statement.get("Principal"), caller) and _conditions_hold(
        statement.get("Condition", {}), caller
    )


def _principal_matches(principal: Any, caller: Caller) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    for entry in _strings(principal.get("AWS")):
        if entry in ("*", caller.account, caller.arn):
            return True
        if entry.endswith(f":iam::{caller.account}:root"):
            return True
    return False


def _conditions_hold(conditions: dict[str, Any], caller: Caller) -> bool:
    context = {
        "aws:principalarn": caller.arn,
        "aws:principalaccount": caller.account,
        "aws:principalorgid": caller.organization_id,
    }
    for operator, tests in conditions.items():
        for key, expected in tests.items():
            actual = context.get(key.lower())
            if actual is None or not _compare(operator, actual, _strings(expected)):
                return False
    return True


def _compare(operator: str, actual: str, expected: list[str]) -> bool:
    if operator in ("StringEquals", "ArnEquals"):
        return actual in expected
    if operator in ("StringLike", "ArnLike"):
        return any(fnmatchcase(actual, pattern) for pattern in expected)
    return False


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Iterable):
        return [str(item) for item in value]
    return [str(value)]
