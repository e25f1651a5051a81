"""The API key's own account (``GET /v1/account``)."""

from stripe_emulator.accounts.models import AccountsBackend
from stripe_emulator.accounts.urls import ROUTES
from stripe_emulator.core.account import Account
from stripe_emulator.core.render import render
from stripe_emulator.core.service import Service, Shape
from stripe_emulator.core.store import StripeObject


def _account(account: Account) -> StripeObject:
    return render(account, account.backend(AccountsBackend).account_get())


SERVICE = Service(
    name="accounts",
    routes=ROUTES,
    shapes=[Shape("account", "account", _account)],
)

__all__ = ["SERVICE", "AccountsBackend"]
