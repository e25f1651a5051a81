"""Stripe's invoice items (`/v1/invoiceitems`) as the lines of a draft invoice, called through a project's
gateway, and the lines of an invoice beyond those an invoice read embeds."""

from typing import Any

from core.errors import ApiError
from stripe_gateway.gateway import StripeGateway


def invoice_item_create(gateway: StripeGateway, params: dict[str, Any], *, idem: str) -> dict[str, Any]:
    """`POST /v1/invoiceitems`: an item of an amount, put on the draft `params` names as its `invoice` (Stripe
    adds it as the draft's line), under the caller's key: a retry whose answer was lost is Stripe's replay, not a
    second line."""
    return gateway.call_dict(lambda c: c.v1.invoice_items.create(params, {"idempotency_key": idem}))


def next_invoice_item_create(
    gateway: StripeGateway,
    *,
    customer: str,
    amount: int,
    currency: str,
    description: str,
    metadata: dict[str, str],
    idem: str,
) -> tuple[str, str]:
    """A pending invoice item (no `invoice`: Stripe puts it on the customer's next invoice) under the caller's
    key, for an outbox whose sweep tries again under the same key: (the item's id, "") when Stripe made it (or had:
    a retry whose answer was lost is Stripe's replay), ("", Stripe's error) when it failed."""
    params = {
        "customer": customer,
        "amount": amount,
        "currency": currency,
        "description": description[:500],
        "metadata": metadata,
    }
    try:
        return invoice_item_create(gateway, params, idem=idem)["id"], ""
    except ApiError as exc:
        return "", exc.message[:500]


def invoice_item_update(
    gateway: StripeGateway, item_id: str, params: dict[str, Any], *, idem: str
) -> dict[str, Any]:
    """`POST /v1/invoiceitems/{id}`: the draft's line of the item follows, keeping its id."""
    return gateway.call_dict(lambda c: c.v1.invoice_items.update(item_id, params, {"idempotency_key": idem}))


def invoice_item_delete(gateway: StripeGateway, item_id: str, *, idem: str) -> dict[str, Any]:
    """`DELETE /v1/invoiceitems/{id}`: the draft's line of the item goes."""
    return gateway.call_dict(lambda c: c.v1.invoice_items.delete(item_id, {}, {"idempotency_key": idem}))


def invoice_lines(gateway: StripeGateway, invoice_id: str) -> list[dict[str, Any]]:
    """Every line of an invoice (`GET /v1/invoices/{id}/lines`, all pages): an invoice read embeds only the first
    ones."""
    page = gateway.call(lambda c: c.v1.invoices.line_items.list(invoice_id, {"limit": 100}))
    return [line.to_dict(for_json=True) for line in page.auto_paging_iter()]
