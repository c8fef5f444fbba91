"""Key checks (§12): the evaluation given what KMS said, and the directory that asks it."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from functions.drift_monitor.aws.accounts import OrganizationDirectory
from functions.drift_monitor.aws.credentials import AccountAccess
from functions.drift_monitor.aws.keys import CACHE_SECONDS, KeyDirectory
from functions.drift_monitor.domain.alerts import build_alert
from functions.drift_monitor.domain.errors import RoleRefused
from functions.drift_monitor.domain.evaluation import evaluate
from functions.drift_monitor.domain.models import (
    BucketRef,
    Code,
    EncryptionRule,
    KeyFact,
    ObservedEncryption,
    Severity,
    Status,
    Trigger,
)
from functions.drift_monitor.domain.policy import Policy
from local.emulator import Emulator, moto_server

ACCOUNT = "123456789012"
BUCKET = BucketRef("payments-ledger", ACCOUNT, "eu-west-1")
REPLICA_BUCKET = BucketRef("payments-us", ACCOUNT, "us-east-1")
TRIGGER = Trigger(source="cloudtrail", event_name="PutBucketEncryption")
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
KEY = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/{KEY_ID}"
ALIAS = f"arn:aws:kms:eu-west-1:{ACCOUNT}:alias/payments"
MRK_ID = "mrk-1234abcd12ab34cd56ef1234567890ab"
MRK = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/{MRK_ID}"
MRK_REPLICA = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{MRK_ID}"
OTHER = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/9f8e7d6c-5b4a-4f3e-8d2c-1b0a9f8e7d6c"


def fact(requested: str, arn: str | None = KEY, **extra: Any) -> KeyFact:
    values: dict[str, Any] = {"state": "Enabled", "manager": "CUSTOMER", "account": ACCOUNT}
    if arn is not None:
        values["key_id"] = arn.rsplit("/", 1)[1]
    values.update(extra)
    return KeyFact(requested=requested, arn=arn, **values)


def judge(key: str, facts: dict[str, KeyFact] | None, bucket: BucketRef = BUCKET, **policy: Any):  # type: ignore[no-untyped-def]
    rules = (
        EncryptionRule(
            "aws:kms", key, bucket_key_enabled=True, blocked_encryption_types=("SSE-C",)
        ),
    )
    return evaluate(ObservedEncryption(bucket, rules), Policy.from_dict(policy), TRIGGER, facts)


@pytest.mark.parametrize(
    ("case", "key", "facts", "policy", "codes"),
    [
        ("alias in the bucket, key ARN listed", ALIAS, {ALIAS: fact(ALIAS), KEY: fact(KEY)},
         {"allowedKmsKeys": [KEY]}, []),
        ("key ARN in the bucket, alias listed", KEY, {KEY: fact(KEY), ALIAS: fact(ALIAS)},
         {"allowedKmsKeys": [ALIAS]}, []),
        ("the same without key checks", ALIAS, None, {"allowedKmsKeys": [KEY]},
         [Code.KMS_KEY_NOT_ALLOWED]),
        ("an alias of another key", ALIAS, {ALIAS: fact(ALIAS, OTHER), KEY: fact(KEY)},
         {"allowedKmsKeys": [KEY]}, [Code.KMS_KEY_NOT_ALLOWED]),
        ("a multi-Region replica of the listed key", MRK_REPLICA,
         {MRK_REPLICA: fact(MRK_REPLICA, MRK_REPLICA, multi_region=True),
          MRK: fact(MRK, MRK, multi_region=True)},
         {"allowedKmsKeys": [MRK]}, []),
        ("a disabled key", KEY, {KEY: fact(KEY, state="Disabled")}, {},
         [Code.KMS_KEY_UNUSABLE]),
        ("a key pending deletion", KEY, {KEY: fact(KEY, state="PendingDeletion")}, {},
         [Code.KMS_KEY_UNUSABLE]),
        ("a key that does not exist", KEY, {KEY: KeyFact(KEY, not_found=True)}, {},
         [Code.KMS_KEY_NOT_FOUND]),
        ("a key it may not describe", KEY,
         {KEY: KeyFact(KEY, unknown_because="AccessDeniedException on kms:DescribeKey")}, {}, []),
        ("an AWS managed key named by its id", KEY, {KEY: fact(KEY, manager="AWS")},
         {"requireCustomerManagedKey": True}, [Code.AWS_MANAGED_KEY]),
    ],
    ids=lambda value: value if isinstance(value, str) and " " in value else "",
)  # fmt: skip
def test_key_verdicts(
    case: str,
    key: str,
    facts: dict[str, KeyFact] | None,
    policy: dict[str, Any],
    codes: list[Code],
) -> None:
    bucket = REPLICA_BUCKET if "replica" in case else BUCKET
    finding = judge(key, facts, bucket, keyChecks=facts is not None, **policy)

    assert [violation.code for violation in finding.violations] == codes


def test_an_unusable_key_is_high_severity_and_never_the_fix() -> None:
    finding = judge(KEY, {KEY: fact(KEY, state="PendingDeletion")}, allowedKmsKeys=[KEY, OTHER])

    assert finding.severity is Severity.HIGH
    assert "is PendingDeletion" in finding.violations[0].message
    alert = build_alert(finding, Policy.from_dict({"allowedKmsKeys": [KEY, OTHER]}))
    assert OTHER in (alert.document["remediation"] or "")
    assert alert.document["keys"] == [
        {
            "kmsKeyId": KEY,
            "arn": KEY,
            "state": "PendingDeletion",
            "keyManager": "CUSTOMER",
            "multiRegion": False,
            "unknownBecause": None,
        }
    ]


def test_a_key_that_could_not_be_described_is_said_to_be_unknown() -> None:
    unknown = KeyFact(KEY, unknown_because="AccessDeniedException on kms:DescribeKey")

    finding = judge(KEY, {KEY: unknown})

    assert finding.status is Status.COMPLIANT
    assert build_alert(finding, Policy()).document["keys"][0]["unknownBecause"] == (
        "AccessDeniedException on kms:DescribeKey"
    )


# -- the directory, against moto server's KMS ---------------------------------------------------


@pytest.fixture(scope="module")
def kms_account() -> Iterator[Emulator]:
    with tempfile.TemporaryDirectory() as scratch, moto_server(Path(scratch) / "moto.log") as emu:
        yield emu


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def directory(emulator: Emulator, clock: Clock | None = None) -> KeyDirectory:
    access = AccountAccess(emulator.session(), home_account=ACCOUNT, endpoint_url=emulator.endpoint)
    return KeyDirectory(access, clock or Clock())


def test_the_directory_resolves_aliases_and_reports_each_state(kms_account: Emulator) -> None:
    kms = kms_account.client("kms")
    enabled = kms.create_key()["KeyMetadata"]
    alias = f"alias/payments-{uuid.uuid4().hex[:6]}"
    kms.create_alias(AliasName=alias, TargetKeyId=enabled["KeyId"])
    disabled = kms.create_key()["KeyMetadata"]
    kms.disable_key(KeyId=disabled["KeyId"])
    deleted = kms.create_key()["KeyMetadata"]
    kms.schedule_key_deletion(KeyId=deleted["KeyId"], PendingWindowInDays=7)
    keys = directory(kms_account)
    alias_arn = f"arn:aws:kms:eu-west-1:{ACCOUNT}:{alias}"

    facts = keys.facts(
        BUCKET,
        (EncryptionRule("aws:kms", alias), EncryptionRule("aws:kms", disabled["Arn"])),
        Policy.from_dict({"allowedKmsKeys": [enabled["Arn"], deleted["Arn"], KEY]}),
    )

    assert facts[alias_arn].arn == enabled["Arn"] and facts[alias_arn].state == "Enabled"
    assert facts[alias_arn].same_key(facts[enabled["Arn"]])
    assert facts[disabled["Arn"]].state == "Disabled"
    assert facts[deleted["Arn"]].state == "PendingDeletion"
    assert facts[KEY].not_found


def test_each_key_is_described_once_until_the_cache_expires(kms_account: Emulator) -> None:
    key = kms_account.client("kms").create_key()["KeyMetadata"]["Arn"]
    clock = Clock()
    keys = directory(kms_account, clock)
    kms = keys._access.client("kms", "eu-west-1", ACCOUNT)
    calls: list[str] = []
    kms.meta.events.register("before-call.kms.DescribeKey", lambda **_: calls.append("call"))

    for _ in range(3):
        keys.describe(key, BUCKET)
    clock.now += CACHE_SECONDS + 1
    keys.describe(key, BUCKET)

    assert len(calls) == 2


def test_a_key_it_may_not_describe_is_unknown_and_aws_s3_may_not_exist_yet(
    kms_account: Emulator,
) -> None:
    keys = directory(kms_account)
    kms = keys._access.client("kms", "eu-west-1", ACCOUNT)
    stubber = Stubber(kms)
    stubber.add_client_error("describe_key", "AccessDeniedException", http_status_code=400)
    stubber.add_client_error("describe_key", "NotFoundException", http_status_code=400)
    with stubber:
        denied = keys.describe(OTHER, BUCKET)
        aws_s3 = keys.describe(f"arn:aws:kms:eu-west-1:{ACCOUNT}:alias/aws/s3", BUCKET)

    assert (denied.arn, denied.unknown_because) == (
        None,
        "AccessDeniedException on kms:DescribeKey",
    )
    assert (aws_s3.not_found, aws_s3.manager) == (False, "AWS")


# -- allowOrganizationKeys ----------------------------------------------------------------------

PARTNER_KEY = "arn:aws:kms:eu-west-1:222233334444:key/9f8e7d6c-5b4a-4f3e-8d2c-1b0a9f8e7d6c"


@pytest.mark.parametrize(
    ("allow", "organization", "codes"),
    [
        (True, frozenset({ACCOUNT, "222233334444"}), []),
        (True, frozenset({ACCOUNT}), [Code.KMS_KEY_CROSS_ACCOUNT]),
        (True, None, [Code.KMS_KEY_CROSS_ACCOUNT]),  # the organization could not be listed
        (False, frozenset({ACCOUNT, "222233334444"}), [Code.KMS_KEY_CROSS_ACCOUNT]),
    ],
    ids=["member-key", "outside-key", "unknown-organization", "not-asked"],
)
def test_a_key_of_the_organization_is_not_cross_account_when_asked(
    allow: bool, organization: frozenset[str] | None, codes: list[Code]
) -> None:
    rules = (EncryptionRule("aws:kms", PARTNER_KEY, bucket_key_enabled=True),)
    policy = Policy.from_dict({"allowOrganizationKeys": allow, "requireSseCBlocked": False})

    finding = evaluate(ObservedEncryption(BUCKET, rules), policy, TRIGGER, None, organization)

    assert [violation.code for violation in finding.violations] == codes


def test_the_organization_is_listed_once_and_a_refusal_means_unknown() -> None:
    clock = Clock()
    listings: list[str] = []

    class Organizations:
        def get_paginator(self, name: str) -> Any:
            listings.append(name)
            return self

        def paginate(self) -> list[dict[str, Any]]:
            return [{"Accounts": [{"Id": ACCOUNT, "State": "ACTIVE"},
                                  {"Id": "222233334444", "Status": "ACTIVE"},
                                  {"Id": "999999999999", "State": "SUSPENDED"}]}]  # fmt: skip

    directory = OrganizationDirectory(Organizations, clock)
    assert directory.accounts() == {ACCOUNT, "222233334444"}
    assert directory.accounts() == {ACCOUNT, "222233334444"}
    assert listings == ["list_accounts"]

    refused = boto3.Session().client("organizations", region_name="us-east-1")
    stubber = Stubber(refused)
    stubber.add_client_error("list_accounts", "AccessDeniedException", http_status_code=400)
    with stubber:
        assert OrganizationDirectory(lambda: refused, clock).accounts() is None


def test_a_key_lookup_that_keeps_failing_fails_the_evaluation(kms_account: Emulator) -> None:
    keys = directory(kms_account)
    kms = keys._access.client("kms", "eu-west-1", ACCOUNT)
    stubber = Stubber(kms)
    stubber.add_client_error("describe_key", "KMSInternalException", http_status_code=500)

    with stubber, pytest.raises(ClientError, match="KMSInternalException"):
        keys.describe(KEY, BUCKET)


def test_a_member_whose_role_is_refused_has_keys_of_unknown_state() -> None:
    class Refusing:
        def client(self, *_: Any) -> Any:
            raise RoleRefused("222233334444", "arn:aws:iam::222233334444:role/r", "AccessDenied")

    fact = KeyDirectory(Refusing(), Clock()).describe(KEY, BUCKET)  # type: ignore[arg-type]

    assert (fact.arn, fact.unknown_because) == (None, "AccessDenied on sts:AssumeRole")


@pytest.mark.parametrize(
    ("code", "listed"),
    [("AWSOrganizationsNotInUseException", None), ("TooManyRequestsException", "raises")],
)
def test_an_account_outside_any_organization_has_none_and_other_failures_raise(
    code: str, listed: str | None
) -> None:
    client = boto3.Session().client("organizations", region_name="us-east-1")
    stubber = Stubber(client)
    stubber.add_client_error("list_accounts", code, http_status_code=400)
    directory_ = OrganizationDirectory(lambda: client, Clock())

    with stubber:
        if listed == "raises":
            with pytest.raises(ClientError, match=code):
                directory_.accounts()
        else:
            assert directory_.accounts() is None
