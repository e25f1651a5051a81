"""Account routes: only the API key's own account (Connect's ``/v1/accounts`` is not emulated)."""

from stripe_emulator.accounts import responses
from stripe_emulator.core.routing import Route

ROUTES = [
    Route("GET", "/v1/account", responses.account_retrieve),
]
