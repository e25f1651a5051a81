"""The account, wire side: ``GET /v1/account``."""

from __future__ import annotations

from stripe_emulator.accounts.models import AccountsBackend
from stripe_emulator.core.routing import Request, Response


def account_retrieve(req: Request) -> Response:
    req.params.only()
    return req.respond(req.backend(AccountsBackend).account_get())
