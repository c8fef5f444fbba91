"""Clients per account: the caller's own credentials at home, the member reader role elsewhere,
assumed once per account and renewed before it expires; a refusal says which role."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from functions.drift_monitor.aws.accounts import accounts_to_sweep, organization_accounts
from functions.drift_monitor.aws.credentials import REFRESH_MARGIN_SECONDS, AccountAccess
from functions.drift_monitor.domain.errors import RoleRefused
from local.emulator import Emulator, create_organization, moto_server, role_trusting_the_manager

ROLE = "S3EncryptionMonitorReader"


@pytest.fixture(scope="module")
def organization() -> Iterator[tuple[Emulator, list[str]]]:
    """Two member accounts; the first has the reader role (trusting the caller's account)."""
    with moto_server() as emulator:
        members = create_organization(emulator, ["m0", "m1"])
        role_trusting_the_manager(emulator, members[0], ROLE)
        yield emulator, members


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def access_for(
    emulator: Emulator, clock: Any = None, role_name: str | None = ROLE
) -> AccountAccess:
    access = AccountAccess(
        emulator.session(),
        role_name=role_name,
        home_account=emulator.account,
        endpoint_url=emulator.endpoint,
        **({"clock": clock} if clock else {}),
    )
    assumed: list[str] = []
    access._sts = emulator.client("sts")  # count the AssumeRole calls on the real endpoint
    access._sts.meta.events.register(
        "provide-client-params.sts.AssumeRole",
        lambda params, **_: assumed.append(params["RoleArn"]),
    )
    access.assumed = assumed  # type: ignore[attr-defined]
    return access


def account_of(client: Any) -> str:
    sts = boto3.client(
        "sts",
        endpoint_url=client.meta.endpoint_url,
        region_name="eu-west-1",
        aws_access_key_id=client._request_signer._credentials.access_key,
        aws_secret_access_key=client._request_signer._credentials.secret_key,
        aws_session_token=client._request_signer._credentials.token,
    )
    return str(sts.get_caller_identity()["Account"])


def test_the_home_account_is_read_with_the_caller_s_own_credentials(
    organization: tuple[Emulator, list[str]],
) -> None:
    emulator, _ = organization
    access = access_for(emulator)

    client = access.client("s3", "eu-west-1", emulator.account)

    assert account_of(client) == emulator.account
    assert access.assumed == []  # type: ignore[attr-defined]
    assert access.reads_directly(None) and access.reads_directly(emulator.account)


def test_another_account_is_read_through_its_reader_role_assumed_once(
    organization: tuple[Emulator, list[str]],
) -> None:
    emulator, (member, _) = organization
    access = access_for(emulator)

    clients = {id(access.client("s3", region, member)) for region in ("eu-west-1", "us-east-1")}
    again = access.client("s3", "eu-west-1", member)

    # one client per region, the same one the second time, all signed as the member account
    assert len(clients) == 2 and id(again) in clients
    assert account_of(again) == member
    assert access.assumed == [f"arn:aws:iam::{member}:role/{ROLE}"]  # type: ignore[attr-defined]


def test_credentials_are_renewed_shortly_before_they_expire(
    organization: tuple[Emulator, list[str]],
) -> None:
    emulator, (member, _) = organization
    clock = Clock()
    access = access_for(emulator, clock)
    first = access.client("s3", "eu-west-1", member)
    expires = access._roles[member].expires_at

    clock.now = expires - REFRESH_MARGIN_SECONDS - 1
    still = access.client("s3", "eu-west-1", member)
    clock.now = expires - REFRESH_MARGIN_SECONDS + 1
    renewed = access.client("s3", "eu-west-1", member)

    assert still is first
    assert renewed is not first
    assert len(access.assumed) == 2  # type: ignore[attr-defined]


def test_a_role_that_cannot_be_assumed_is_refused_naming_it(
    organization: tuple[Emulator, list[str]],
) -> None:
    emulator, (_, no_role) = organization
    access = access_for(emulator)

    with pytest.raises(RoleRefused) as refused:
        access.client("s3", "eu-west-1", no_role)

    assert refused.value.account == no_role
    assert refused.value.role_arn == f"arn:aws:iam::{no_role}:role/{ROLE}"
    assert refused.value.error_code == "AccessDenied"
    assert str(refused.value) == f"AccessDenied on sts:AssumeRole for {refused.value.role_arn}"


def test_without_a_role_name_every_account_is_read_directly(
    organization: tuple[Emulator, list[str]],
) -> None:
    emulator, (member, _) = organization
    access = access_for(emulator, role_name=None)

    access.client("s3", "eu-west-1", member)

    assert access.reads_directly(member)
    assert access.assumed == []  # type: ignore[attr-defined]


def test_many_threads_assume_a_role_once(organization: tuple[Emulator, list[str]]) -> None:
    emulator, (member, _) = organization
    access = access_for(emulator)
    start = threading.Barrier(8)
    made: list[int] = []

    def client() -> None:
        start.wait()
        made.append(id(access.client("s3", "eu-west-1", member)))

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(set(made)) == 1
    assert len(access.assumed) == 1  # type: ignore[attr-defined]


def test_a_partition_comes_from_the_home_region() -> None:
    access = AccountAccess(
        boto3.Session(region_name="cn-north-1"), role_name=ROLE, home_account="111111111111"
    )

    assert access.role_arn("222222222222") == f"arn:aws-cn:iam::222222222222:role/{ROLE}"


def test_sts_failing_for_another_reason_is_raised_not_taken_for_a_refusal() -> None:
    access = AccountAccess(
        boto3.Session(region_name="eu-west-1"), role_name=ROLE, home_account="111111111111"
    )
    access._sts = boto3.client("sts", region_name="eu-west-1")
    stubber = Stubber(access._sts)
    stubber.add_client_error("assume_role", "RegionDisabledException", 400)
    stubber.activate()

    with pytest.raises(ClientError, match="RegionDisabledException"):
        access.client("s3", "eu-west-1", "222222222222")


def test_only_active_accounts_of_the_organization_are_swept() -> None:
    organizations = boto3.client("organizations", region_name="us-east-1")
    stubber = Stubber(organizations)
    stubber.add_response(
        "list_accounts",
        {
            "Accounts": [
                {"Id": "333333333333", "State": "ACTIVE"},
                {"Id": "222222222222", "State": "SUSPENDED"},
                {"Id": "111111111111", "Status": "ACTIVE"},  # before Organizations had State
            ]
        },
    )
    stubber.activate()

    assert organization_accounts(organizations) == ["111111111111", "333333333333"]
    assert accounts_to_sweep("999999999999", ("111111111111",), ["111111111111"]) == [
        "111111111111",
        "999999999999",
    ]
