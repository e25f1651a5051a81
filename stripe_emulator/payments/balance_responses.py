"""Balance transactions and the balance, wire side (``/v1/balance_transactions``, ``/v1/balance``). Behaviour
lives in :mod:`stripe_emulator.payments.models.balance_transactions`; both are read-only at Stripe."""

from __future__ import annotations

from stripe_emulator.core.routing import Request, Response
from stripe_emulator.payments.models import PaymentsBackend
from stripe_emulator.payments.models.balance_transactions import OBJECT


def _settled(req: Request) -> PaymentsBackend:
    """The backend, once the refund outcomes and the availabilities due by now have happened."""
    backend = req.backend(PaymentsBackend)
    backend.refunds_settle_before_read()
    backend.balance_transactions_settle()
    return backend


def balance_transaction_list(req: Request) -> Response:
    """``GET /v1/balance_transactions``: newest first; ``payout`` matches nothing (no payouts are emulated)."""
    p = req.params
    p.only("created", "currency", "payout", "source", "type", "limit", "starting_after", "ending_before")
    txns = _settled(req).balance_transaction_list(
        created=p.range_filter("created"),
        currency=p.currency(),
        source=p.string("source"),
        type_=p.string("type"),
        payout=p.string("payout"),
    )
    return req.respond_list(txns, url="/v1/balance_transactions", object_type=OBJECT)


def balance_transaction_retrieve(req: Request) -> Response:
    req.params.only()
    return req.respond(_settled(req).balance_transaction_require(req.path_params["id"]))


def balance_retrieve(req: Request) -> Response:
    """``GET /v1/balance``: no ``expand`` target exists on it."""
    req.params.only()
    return req.respond(_settled(req).balance())
