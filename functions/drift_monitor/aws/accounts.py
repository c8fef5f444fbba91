"""Adapter around AWS Organizations: the accounts a sweep or a scan covers."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from ..domain.clock import Remembered
from .credentials import AccountAccess, error_code, is_denied

# Organizations reports an account's life cycle in ``State`` (since 2025) and, before that, in
# ``Status``; only active accounts can be entered.
_ACTIVE = "ACTIVE"
_NOT_IN_AN_ORGANIZATION = frozenset({"AWSOrganizationsNotInUseException"})


def organization_accounts(organizations: Any) -> list[str]:
    """Every active account of the caller's organization, in id order.

    Only the management account or a delegated administrator may call ``ListAccounts``.
    """
    accounts: list[str] = []
    for page in organizations.get_paginator("list_accounts").paginate():
        for account in page.get("Accounts", []):
            state = account.get("State") or account.get("Status")
            if state == _ACTIVE:
                accounts.append(str(account["Id"]))
    return sorted(accounts)


def management_account(organizations: Any) -> str | None:
    """The organization's management account; None when Organizations will not say."""
    try:
        organization = organizations.describe_organization()["Organization"]
    except ClientError as error:
        if not is_denied(error) and error_code(error) not in _NOT_IN_AN_ORGANIZATION:
            raise
        return None
    return str(organization.get("MasterAccountId") or "") or None


def accounts_to_sweep(home: str, explicit: tuple[str, ...], organization: list[str]) -> list[str]:
    """The monitor's own account always, then the explicit or the organization's accounts."""
    return sorted(dict.fromkeys([home, *explicit, *organization]))


class OrganizationDirectory:
    """The accounts of the caller's organization (``allowOrganizationKeys``), listed when first
    needed and again after ``CACHE_SECONDS``. None when Organizations refuses the listing (not
    the management account or a delegated administrator): no key counts as the organization's."""

    CACHE_SECONDS = 900

    def __init__(
        self, organizations: Callable[[], Any], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._organizations = organizations
        self._listing: Remembered[frozenset[str] | None] = Remembered(self.CACHE_SECONDS, clock)

    @classmethod
    def of(cls, access: AccountAccess) -> OrganizationDirectory:
        """Listed with ``access``'s own credentials, from its home region."""
        return cls(lambda: access.client("organizations", access.home_region))

    def accounts(self) -> frozenset[str] | None:
        return self._listing.get("accounts", self._list)

    def _list(self) -> frozenset[str] | None:
        try:
            return frozenset(organization_accounts(self._organizations()))
        except ClientError as error:
            if not is_denied(error) and error_code(error) not in _NOT_IN_AN_ORGANIZATION:
                raise
            return None
