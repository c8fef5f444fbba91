"""Adapter around AWS Organizations: the accounts a sweep or a scan covers."""

from __future__ import annotations

from typing import Any

# Organizations reports an account's life cycle in ``State`` (since 2025) and, before that, in
# ``Status``; only active accounts can be entered.
_ACTIVE = "ACTIVE"


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


def accounts_to_sweep(home: str, explicit: tuple[str, ...], organization: list[str]) -> list[str]:
    """The monitor's own account always, then the explicit or the organization's accounts."""
    return sorted(dict.fromkeys([home, *explicit, *organization]))
