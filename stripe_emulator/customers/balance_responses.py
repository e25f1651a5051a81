"""Customer balance transactions, wire side (``/v1/customers/{customer}/balance_transactions``). Behaviour
lives in :mod:`stripe_emulator.customers.balance`."""

from __future__ import annotations

from typing import Any

from stripe_emulator.core.params import merge_metadata
from stripe_emulator.core.routing import Request, Response
from stripe_emulator.customers.balance import OBJECT, CustomerBalanceBackend


def balance_transaction_create(req: Request) -> Response:
    p = req.params
    p.only("amount", "currency", "description", "metadata")
    amount = p.integer("amount", required=True)
    currency = p.currency(required=True)
    assert amount is not None
    assert currency is not None
    txn = req.backend(CustomerBalanceBackend).balance_transaction_create(
        req.path_params["customer"],
        amount=amount,
        currency=currency,
        description=p.string("description", max_length=350),
        metadata=merge_metadata({}, p),
    )
    return req.respond(txn)


def balance_transaction_retrieve(req: Request) -> Response:
    req.params.only()
    backend = req.backend(CustomerBalanceBackend)
    return req.respond(
        backend.balance_transaction_require(req.path_params["customer"], req.path_params["transaction"])
    )


def balance_transaction_update(req: Request) -> Response:
    p = req.params
    p.only("description", "metadata")
    backend = req.backend(CustomerBalanceBackend)
    customer, txn_id = req.path_params["customer"], req.path_params["transaction"]
    txn = backend.balance_transaction_require(customer, txn_id)
    changes: dict[str, Any] = {}
    if p.has("description"):
        changes["description"] = p.string("description", max_length=350)
    if p.has("metadata"):
        changes["metadata"] = merge_metadata(txn["metadata"] or {}, p)
    return req.respond(backend.balance_transaction_update(customer, txn_id, changes))


def balance_transaction_list(req: Request) -> Response:
    p = req.params
    p.only("invoice", "created", "limit", "starting_after", "ending_before")
    customer = req.path_params["customer"]
    txns = req.backend(CustomerBalanceBackend).balance_transaction_list(
        customer, invoice=p.string("invoice"), created=p.range_filter("created")
    )
    return req.respond_list(txns, url=f"/v1/customers/{customer}/balance_transactions", object_type=OBJECT)
