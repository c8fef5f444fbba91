"""Clients per account and region: the one place where the monitor gets its AWS credentials.

A bucket of the monitor's own account is read with the function's (or the scanner's) own
credentials. A bucket of another account is read through the reader role that the organization
topology deploys there (``MEMBER_ROLE_NAME``), assumed with ``sts:AssumeRole``; its credentials are
cached per account until shortly before they expire, so a sweep assumes a role once per account.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from ..domain.errors import RoleRefused
from ..domain.models import partition_of
from ..domain.permissions import ROLE_SESSION_NAME

# Throttling, 5xx and timeouts are retried with backoff; what still fails after that fails the
# invocation, so Lambda retries the event and finally keeps it in the failure queue.
RETRY_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 5},
    connect_timeout=5,
    read_timeout=10,
)
# Assumed-role credentials are renewed this long before they expire, so no call is signed with
# credentials that run out in flight.
REFRESH_MARGIN_SECONDS = 300
# How S3 and STS say "not allowed" (S3 also answers a bare 403 to some requests).
_DENIED_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "AllAccessDisabled", "Forbidden", "403"}
)


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def is_denied(error: ClientError) -> bool:
    """True when AWS refused the call for lack of permission (not throttling, not a fault)."""
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return error_code(error) in _DENIED_CODES or status == 403


def sweep_config(concurrency: int) -> Config:
    """For reading many buckets at once: a connection per thread, and backoff that slows the whole
    client down when S3 throttles (adaptive mode) instead of letting each thread retry alone."""
    return RETRY_CONFIG.merge(
        Config(
            retries={"mode": "adaptive", "total_max_attempts": 8},
            max_pool_connections=concurrency,
        )
    )


@dataclass(frozen=True)
class _AssumedRole:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expires_at: float  # seconds since the epoch


class AccountAccess:
    """Hands out boto3 clients for an account and region, creating each once and reusing it.

    Safe to share between threads: client creation and role assumption happen under a lock (a
    boto3 session is not thread-safe), lookups of existing clients take none.
    """

    def __init__(
        self,
        session: boto3.Session | None = None,
        *,
        role_name: str | None = None,
        home_account: str | None = None,
        home_region: str | None = None,
        endpoint_url: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._session = session or boto3.Session()
        self.role_name = role_name
        # The account whose buckets need no role: learned from the function's ARN or STS.
        self.home_account = home_account
        self.home_region = home_region or self._session.region_name or "us-east-1"
        self._endpoint_url = endpoint_url
        self._clock = clock
        self._lock = threading.Lock()
        self._roles: dict[str, _AssumedRole] = {}
        self._clients: dict[tuple[str, str, str, int], tuple[_AssumedRole | None, Any]] = {}
        self._sts: Any = None

    def reads_directly(self, account: str | None) -> bool:
        """True when ``account``'s resources are read with the caller's own credentials."""
        return account is None or self.role_name is None or account == self.home_account

    def role_arn(self, account: str) -> str:
        partition = partition_of(self.home_region)
        return f"arn:{partition}:iam::{account}:role/{self.role_name}"

    def client(
        self, service: str, region: str, account: str | None = None, config: Config = RETRY_CONFIG
    ) -> Any:
        """A client for ``service`` in ``region``, acting in ``account`` (default: the caller's).

        Raises ``RoleRefused`` when the reader role of another account cannot be assumed.
        """
        role = None if self.reads_directly(account) else self._role(str(account))
        key = (service, "" if role is None else str(account), region, id(config))
        cached = self._clients.get(key)
        if cached is not None and cached[0] is role:
            return cached[1]
        with self._lock:
            cached = self._clients.get(key)
            if cached is not None and cached[0] is role:
                return cached[1]
            credentials: dict[str, str] = {}
            if role is not None:
                credentials = {
                    "aws_access_key_id": role.access_key_id,
                    "aws_secret_access_key": role.secret_access_key,
                    "aws_session_token": role.session_token,
                }
            client = self._session.client(
                service,  # type: ignore[call-overload]
                region_name=region,
                config=config,
                endpoint_url=self._endpoint_url,
                **credentials,
            )
            self._clients[key] = (role, client)
            return client

    def _role(self, account: str) -> _AssumedRole:
        role = self._roles.get(account)
        if role is not None and role.expires_at - self._clock() > REFRESH_MARGIN_SECONDS:
            return role
        with self._lock:
            role = self._roles.get(account)
            if role is None or role.expires_at - self._clock() <= REFRESH_MARGIN_SECONDS:
                role = self._assume(account)
                self._roles[account] = role
            return role

    def _assume(self, account: str) -> _AssumedRole:
        if self._sts is None:
            self._sts = self._session.client(
                "sts",
                region_name=self.home_region,
                config=RETRY_CONFIG,
                endpoint_url=self._endpoint_url,
            )
        role_arn = self.role_arn(account)
        try:
            response = self._sts.assume_role(RoleArn=role_arn, RoleSessionName=ROLE_SESSION_NAME)
        except ClientError as error:
            if is_denied(error):
                raise RoleRefused(account, role_arn, error_code(error) or "403") from error
            raise
        credentials = response["Credentials"]
        expiration = credentials["Expiration"]
        if isinstance(expiration, datetime):
            expires_at = expiration.astimezone(UTC).timestamp()
        else:  # pragma: no cover - botocore always parses timestamps
            expires_at = self._clock() + 3600
        return _AssumedRole(
            access_key_id=credentials["AccessKeyId"],
            secret_access_key=credentials["SecretAccessKey"],
            session_token=credentials["SessionToken"],
            expires_at=expires_at,
        )
