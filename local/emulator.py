"""moto in server mode on 127.0.0.1: the local stand-in for AWS, reached over real HTTP."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from functions.drift_monitor.aws.state_store import (
    KEY,
    KEY_ARN,
    KEYS_ATTRIBUTES,
    KEYS_INDEX,
    OPEN_ATTRIBUTES,
    OPEN_INDEX,
    OPEN_KEY,
)

REPO = Path(__file__).resolve().parent.parent
ACCOUNT = "123456789012"  # moto's default account
REGION = "eu-west-1"
# Directory buckets' control-plane calls signed as AWS's control endpoint takes them; through a
# custom endpoint botocore would otherwise first ask for a zonal session (local/other_buckets.py).
EXPRESS_CONTROL = Config(s3={"disable_s3_express_session_auth": True})  # type: ignore[arg-type]


@dataclass(frozen=True)
class Emulator:
    endpoint: str
    account: str = ACCOUNT
    organization_id: str | None = None  # fixed by moto_server(organization_id=...)
    region: str = REGION
    # Any key works while moto enforces no IAM; with IAM enforced, an IAM user's key.
    access_key: str = "testing"
    secret_key: str = "testing"
    session_token: str = ""  # botocore sends no token when it is empty

    def environment(self) -> dict[str, str]:
        """What boto3 needs to talk to the emulator and to nothing else."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_SESSION_TOKEN": self.session_token,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def session(self, region: str | None = None) -> boto3.Session:
        return boto3.Session(
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            aws_session_token=self.session_token or None,
            region_name=region or self.region,
        )

    def client(self, service: Any, region: str | None = None, config: Config | None = None) -> Any:
        if service == "s3" and config is None:
            config = EXPRESS_CONTROL
        return self.session(region).client(service, endpoint_url=self.endpoint, config=config)

    def as_user(self, access_key: str, secret_key: str) -> Emulator:
        return replace(self, access_key=access_key, secret_key=secret_key)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _moto_server_command(*, plain: bool = False) -> list[str]:
    """moto's own server, with S3's ListBuckets made to page and name regions as real S3 does
    and the other kinds of bucket answered; ``plain``: moto as released, an S3-compatible store
    that knows no directory or table buckets (as MinIO or LocalStack)."""
    if plain:
        return [sys.executable, "-m", "moto.server"]
    return [sys.executable, "-m", "local.moto_server"]


@contextlib.contextmanager
def moto_server(
    log_path: Path | None = None,
    timeout: float = 30.0,
    settings: dict[str, str] | None = None,
    organization_id: str | None = None,
    *,
    plain: bool = False,
) -> Iterator[Emulator]:
    """Starts ``moto_server`` in its own process on a free loopback port; stops it on exit.

    ``settings`` are moto's own environment variables, e.g. ``INITIAL_NO_AUTH_ACTION_COUNT``;
    ``organization_id`` is the id the organization created on it gets; ``plain`` runs moto as
    released (see ``_moto_server_command``).
    """
    if organization_id:
        settings = {**(settings or {}), "LOCAL_ORGANIZATION_ID": organization_id}
    port = _free_port()
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(
        [*_moto_server_command(plain=plain), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "MOTO_CALL_RESET_API": "false", **(settings or {})},
        cwd=REPO,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        _wait_until_ready(endpoint, process, timeout)
        yield Emulator(endpoint=endpoint, organization_id=organization_id)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        if log_path:
            log.close()  # type: ignore[union-attr]


def _wait_until_ready(endpoint: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto_server exited with {process.returncode} before it was ready")
        with contextlib.suppress(OSError):
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
            return
        time.sleep(0.1)
    raise RuntimeError(f"moto_server did not answer on {endpoint} within {timeout:.0f} s")


@contextlib.contextmanager
def moto_server_with_iam() -> Iterator[Emulator]:
    """moto enforcing IAM like AWS: every request needs an IAM user's key and a policy allowing it.

    The first three requests, which create an administrator, go through unchecked
    (``INITIAL_NO_AUTH_ACTION_COUNT``); the emulator yielded uses that administrator's key.
    """
    with moto_server(settings={"INITIAL_NO_AUTH_ACTION_COUNT": "3"}) as emulator:
        yield iam_user(emulator, "administrator", [{"Action": "*", "Resource": "*"}])


def iam_user(emulator: Emulator, name: str, allowed: list[dict[str, Any]]) -> Emulator:
    """A new IAM user allowed exactly these statements (``Action``, ``Resource``), as an emulator
    that signs with its key."""
    iam = emulator.client("iam")
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    document = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", **s} for s in allowed]}
    iam.put_user_policy(UserName=name, PolicyName=name, PolicyDocument=json.dumps(document))
    return emulator.as_user(key["AccessKeyId"], key["SecretAccessKey"])


# Created in every account by Organizations' CreateAccount (by moto too), trusted by the
# management account.
ORGANIZATION_ACCESS_ROLE = "OrganizationAccountAccessRole"


def create_organization(emulator: Emulator, names: list[str]) -> list[str]:
    """An organization managed by the emulator's account, with a member account per name."""
    organizations = emulator.client("organizations")
    organizations.create_organization(FeatureSet="ALL")
    return [
        str(
            organizations.create_account(AccountName=name, Email=f"{name}@example.com")[
                "CreateAccountStatus"
            ]["AccountId"]
        )
        for name in names
    ]


def member_admin(emulator: Emulator, account: str) -> Emulator:
    """An administrator of a member account, through the role Organizations creates there."""
    credentials = emulator.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/{ORGANIZATION_ACCESS_ROLE}",
        RoleSessionName="local-administrator",
    )["Credentials"]
    return replace(
        emulator,
        account=account,
        access_key=credentials["AccessKeyId"],
        secret_key=credentials["SecretAccessKey"],
        session_token=credentials["SessionToken"],
    )


def role_trusting_the_manager(emulator: Emulator, account: str, role_name: str) -> None:
    """A role in member ``account`` that any principal of the emulator's (managing) account may
    assume: a reader role without the template's narrower conditions."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{emulator.account}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    member_admin(emulator, account).client("iam").create_role(
        RoleName=role_name, AssumeRolePolicyDocument=json.dumps(trust)
    )


def create_run_table(emulator: Emulator, name: str) -> None:
    """The sweep's run table, as the stack declares it (``infra/sweep_engine.py``)."""
    emulator.client("dynamodb").create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


def _sparse_index(name: str, partition: str, projected: tuple[str, ...]) -> dict[str, Any]:
    return {
        "IndexName": name,
        "KeySchema": [
            {"AttributeName": partition, "KeyType": "HASH"},
            {"AttributeName": KEY, "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(projected)},
    }


def create_state_table(emulator: Emulator, name: str) -> None:
    """The alert lifecycle's state table, as the stack declares it (``infra/lifecycle.py``): its
    sparse index of open rows included, and the key index ``keyChecks`` adds."""
    emulator.client("dynamodb").create_table(
        TableName=name,
        KeySchema=[{"AttributeName": KEY, "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": KEY, "AttributeType": "S"},
            {"AttributeName": OPEN_KEY, "AttributeType": "S"},
            {"AttributeName": KEY_ARN, "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            _sparse_index(OPEN_INDEX, OPEN_KEY, OPEN_ATTRIBUTES),
            _sparse_index(KEYS_INDEX, KEY_ARN, KEYS_ATTRIBUTES),
        ],
        BillingMode="PAY_PER_REQUEST",
    )
