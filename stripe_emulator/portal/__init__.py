"""Customer portal (``/v1/billing_portal/configurations``, ``/v1/billing_portal/sessions``) and the hosted
portal page (``/portal/{session}``)."""

from stripe_emulator.core.account import Account
from stripe_emulator.core.render import render
from stripe_emulator.core.service import Service, Shape
from stripe_emulator.core.store import StripeObject
from stripe_emulator.customers.models import CustomersBackend
from stripe_emulator.portal.models import PortalBackend
from stripe_emulator.portal.urls import ROUTES


def _configuration(account: Account) -> StripeObject:
    config = account.backend(PortalBackend).configuration_create(
        features={"invoice_history": {"enabled": True}}
    )
    return render(account, config)


def _session(account: Account) -> StripeObject:
    customer = account.backend(CustomersBackend).customer_create()
    session = account.backend(PortalBackend).session_create(
        customer=customer["id"], return_url="https://example.com"
    )
    return render(account, session)


SERVICE = Service(
    name="portal",
    routes=ROUTES,
    shapes=[
        Shape("billing_portal.configuration", "billing_portal.configuration", _configuration),
        Shape("billing_portal.session", "billing_portal.session", _session),
    ],
)

__all__ = ["SERVICE", "PortalBackend"]
