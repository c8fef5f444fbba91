"""The emulator's AssumeRole decision: what a trust policy allows, as STS decides it."""

from __future__ import annotations

from typing import Any

import pytest

from local.sts_trust import Caller, principal_arn, trust_allows

MONITOR_ROLE = "arn:aws:iam::111111111111:role/monitor-function"
CALLER = Caller(arn=MONITOR_ROLE, account="111111111111", organization_id="o-a1b2c3d4e5")


def trust(principal: Any, condition: dict[str, Any] | None = None, effect: str = "Allow") -> Any:
    statement: dict[str, Any] = {
        "Effect": effect,
        "Principal": principal,
        "Action": "sts:AssumeRole",
    }
    if condition:
        statement["Condition"] = condition
    return {"Version": "2012-10-17", "Statement": [statement]}


READER_TRUST = trust(
    {"AWS": "arn:aws:iam::111111111111:root"},
    {
        "ArnEquals": {"aws:PrincipalArn": [MONITOR_ROLE, "arn:aws:iam::111111111111:role/w"]},
        "StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"},
    },
)


@pytest.mark.parametrize(
    ("policy", "caller", "allowed"),
    [
        (READER_TRUST, CALLER, True),
        (READER_TRUST, Caller("arn:aws:iam::111111111111:role/other", "111111111111",
                              "o-a1b2c3d4e5"), False),
        (READER_TRUST, Caller(MONITOR_ROLE, "111111111111", "o-zzzzzzzzzz"), False),
        (READER_TRUST, Caller(MONITOR_ROLE, "111111111111", None), False),
        (trust({"AWS": "111111111111"}), CALLER, True),
        (trust({"AWS": MONITOR_ROLE}), CALLER, True),
        (trust({"AWS": "arn:aws:iam::222222222222:root"}), CALLER, False),
        (trust({"Service": "lambda.amazonaws.com"}), CALLER, False),
        (trust("*"), CALLER, True),
        (trust({"AWS": "*"}, {"StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/monitor-*"}}),
         CALLER, True),
        (trust({"AWS": "*"}, {"StringEquals": {"aws:SourceIp": "10.0.0.1"}}), CALLER, False),
        (trust({"AWS": "*"}, {"NumericLessThan": {"aws:PrincipalAccount": "2"}}), CALLER, False),
        ({"Statement": [trust({"AWS": "*"})["Statement"][0],
                        trust({"AWS": MONITOR_ROLE}, effect="Deny")["Statement"][0]]},
         CALLER, False),
        ('{"Statement": {"Effect": "Allow", "Principal": {"AWS": "111111111111"}, '
         '"Action": "sts:*"}}', CALLER, True),
        ('%7B%22Statement%22%3A%20%5B%5D%7D', CALLER, False),
    ],
    ids=["reader-role", "another-role", "another-organization", "no-organization", "account-id",
         "role-arn", "other-account", "service-only", "anyone", "like", "unknown-key",
         "unknown-operator", "deny-wins", "statement-object", "url-encoded"],
)  # fmt: skip
def test_trust(policy: Any, caller: Caller, allowed: bool) -> None:
    assert trust_allows(policy, caller) is allowed


@pytest.mark.parametrize(
    ("arn", "expected"),
    [
        ("arn:aws:sts::111111111111:assumed-role/monitor-function/session-1", MONITOR_ROLE),
        ("arn:aws:iam::111111111111:user/alice", "arn:aws:iam::111111111111:user/alice"),
        ("arn:aws:sts::111111111111:user/moto", "arn:aws:iam::111111111111:root"),
    ],
)
def test_the_principal_arn_trust_policies_compare(arn: str, expected: str) -> None:
    assert principal_arn(arn, "111111111111") == expected
