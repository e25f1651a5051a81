"""Subscriptions and subscription items, wire side, with the invoice a subscription change would create
(``/v1/invoices/create_preview``), the customer's expand-only ``subscriptions`` and the billing settings test
control. Invoices themselves: :mod:`stripe_emulator.subscriptions.invoices.responses`."""

from __future__ import annotations

from typing import Any

from stripe_emulator.core.errors import InvalidRequestError, ParameterInvalid
from stripe_emulator.core.params import Params, in_range, merge_metadata, parse_metadata
from stripe_emulator.core.routing import Request, Response
from stripe_emulator.core.store import StripeObject
from stripe_emulator.coupons.responses import discounts_param
from stripe_emulator.subscriptions.invoices.responses import COLLECTION_METHODS, LIST_PARAMS
from stripe_emulator.subscriptions.models import SubscriptionsBackend
from stripe_emulator.subscriptions.models.base import PAYMENT_BEHAVIORS, PRORATION_BEHAVIORS
from stripe_emulator.subscriptions.schedules import refuse_cancel_change
from stripe_emulator.subscriptions.settings import billing_settings
from stripe_emulator.tax import automatic_tax_param, check_taxable, subscription_automatic_tax

SUBSCRIPTION_STATUSES = (
    "active",
    "all",
    "canceled",
    "ended",
    "incomplete",
    "incomplete_expired",
    "past_due",
    "paused",
    "trialing",
    "unpaid",
)


def _metadata(p: Params) -> dict[str, str]:
    return merge_metadata({}, p)


def _trial_end(p: Params) -> int | str | None:
    raw = p.raw("trial_end")
    if raw == "now":
        return "now"
    return p.timestamp("trial_end")


def _items(p: Params, *, update: bool) -> list[dict[str, Any]] | None:
    specs = p.hashes("items")
    if specs is None:
        return None
    items = []
    allowed = ("price", "quantity", "metadata") + (("id", "deleted", "clear_usage") if update else ())
    for spec in specs:
        spec.only(*allowed)
        item: dict[str, Any] = {
            "price": spec.string("price"),
            "quantity": spec.integer("quantity", minimum=0),
            "metadata": dict(parse_metadata(spec) or {}) if spec.has("metadata") else None,
        }
        if item["metadata"] is not None:
            item["metadata"] = {k: v for k, v in item["metadata"].items() if v is not None}
        if update:
            item["id"] = spec.string("id")
            item["deleted"] = bool(spec.boolean("deleted"))
        elif item["price"] is None:
            raise InvalidRequestError(
                "Missing required param: items[0][price].", code="parameter_missing", param=spec.name("price")
            )
        items.append(item)
    return items


def _trial_settings(p: Params) -> dict[str, Any] | None:
    settings = p.sub("trial_settings")
    if settings is None:
        return None
    settings.only("end_behavior")
    end = settings.sub("end_behavior", required=True)
    assert end is not None
    end.only("missing_payment_method")
    return {
        "missing_payment_method": end.enum(
            "missing_payment_method", ("cancel", "create_invoice", "pause"), required=True
        )
    }


def _cancellation_details(p: Params) -> dict[str, Any] | None:
    details = p.sub("cancellation_details")
    if details is None:
        return None
    details.only("comment", "feedback")
    values: dict[str, Any] = {}
    if details.has("comment"):
        values["comment"] = details.string("comment")
    if details.has("feedback"):
        values["feedback"] = details.enum(
            "feedback",
            (
                "customer_service",
                "low_quality",
                "missing_features",
                "other",
                "switched_service",
                "too_complex",
                "too_expensive",
                "unused",
            ),
        )
    return values


def _ignore_payment_settings(p: Params) -> None:
    settings = p.sub("payment_settings")
    if settings is not None:
        settings.only("save_default_payment_method", "payment_method_types")


# -- subscriptions -------------------------------------------------------------------------------------------


def subscription_create(req: Request) -> Response:
    p = req.params
    p.only(
        "customer",
        "items",
        "default_payment_method",
        "trial_period_days",
        "trial_end",
        "trial_from_plan",
        "trial_settings",
        "payment_behavior",
        "proration_behavior",
        "cancel_at_period_end",
        "metadata",
        "collection_method",
        "days_until_due",
        "description",
        "off_session",
        "payment_settings",
        "automatic_tax",
        "discounts",
    )
    _ignore_payment_settings(p)
    p.enum("proration_behavior", PRORATION_BEHAVIORS)
    collection_method = p.enum("collection_method", COLLECTION_METHODS) or "charge_automatically"
    days_until_due = p.integer("days_until_due", minimum=0)
    if collection_method == "send_invoice" and days_until_due is None:
        raise InvalidRequestError(
            "Missing required param: days_until_due.", code="parameter_missing", param="days_until_due"
        )
    items = _items(p, update=False)
    if not items:
        raise InvalidRequestError("Missing required param: items.", code="parameter_missing", param="items")
    sub = req.backend(SubscriptionsBackend).subscription_create_internal(
        customer=p.string("customer", required=True) or "",
        items=items,
        default_payment_method=p.string("default_payment_method"),
        trial_period_days=p.integer("trial_period_days", minimum=0, maximum=730),
        trial_end=_trial_end(p),
        trial_from_plan=bool(p.boolean("trial_from_plan")),
        trial_settings=_trial_settings(p),
        metadata=_metadata(p),
        payment_behavior=p.enum("payment_behavior", PAYMENT_BEHAVIORS) or "allow_incomplete",
        off_session=bool(p.boolean("off_session")),
        cancel_at_period_end=bool(p.boolean("cancel_at_period_end")),
        collection_method=collection_method,
        days_until_due=days_until_due,
        description=p.string("description"),
        automatic_tax=bool(automatic_tax_param(p)),
        discounts=discounts_param(p),
    )
    return req.respond(sub)


def subscription_retrieve(req: Request) -> Response:
    req.params.only()
    return req.respond(req.backend(SubscriptionsBackend).subscription_require(req.path_params["id"]))


def subscription_update(req: Request) -> Response:
    p = req.params
    p.only(
        "items",
        "proration_behavior",
        "proration_date",
        "payment_behavior",
        "cancel_at_period_end",
        "cancel_at",
        "cancellation_details",
        "pause_collection",
        "trial_end",
        "metadata",
        "default_payment_method",
        "description",
        "off_session",
        "payment_settings",
        "automatic_tax",
        "discounts",
    )
    _ignore_payment_settings(p)
    backend = req.backend(SubscriptionsBackend)
    sub = backend.subscription_require(req.path_params["id"])
    if p.has("cancel_at_period_end") or p.has("cancel_at"):
        refuse_cancel_change(sub)
    changes: dict[str, Any] = {}
    automatic_tax = automatic_tax_param(p)
    if automatic_tax is not None:
        if automatic_tax:
            _check_taxable_update(req, sub, _items(p, update=True) or [])
        changes["automatic_tax"] = subscription_automatic_tax(automatic_tax)
    if p.has("metadata"):
        changes["metadata"] = merge_metadata(sub["metadata"], p)
    if p.has("cancel_at_period_end"):
        changes["cancel_at_period_end"] = bool(p.boolean("cancel_at_period_end"))
    if p.has("cancel_at"):
        changes["cancel_at"] = p.timestamp("cancel_at")
    if p.has("description"):
        changes["description"] = p.string("description")
    details = _cancellation_details(p)
    if details:
        changes["cancellation_details"] = details
    if p.has("pause_collection"):
        pause = p.sub("pause_collection")
        if pause is None:
            changes["pause_collection"] = None
        else:
            pause.only("behavior", "resumes_at")
            changes["pause_collection"] = {
                "behavior": pause.enum(
                    "behavior", ("keep_as_draft", "mark_uncollectible", "void"), required=True
                ),
                "resumes_at": pause.timestamp("resumes_at"),
            }
    updated = backend.subscription_update(
        sub["id"],
        items=_items(p, update=True),
        proration_behavior=p.enum("proration_behavior", PRORATION_BEHAVIORS) or "create_prorations",
        proration_date=p.timestamp("proration_date"),
        payment_behavior=p.enum("payment_behavior", PAYMENT_BEHAVIORS) or "allow_incomplete",
        changes=changes,
        trial_end=_trial_end(p),
        default_payment_method=p.string("default_payment_method"),
        off_session=bool(p.boolean("off_session")),
        discounts=discounts_param(p),
    )
    return req.respond(updated)


def _check_taxable_update(req: Request, sub: StripeObject, items: list[dict[str, Any]]) -> None:
    """Turning automatic tax on: the customer's location and the tax behavior of every price the subscription
    will hold (its items' and the update's)."""
    prices: list[tuple[StripeObject, str | None]] = [
        (req.account.store.require("price", item["price"]["id"], param=None), None)
        for item in req.backend(SubscriptionsBackend).items_of(sub)
    ]
    for i, item in enumerate(items):
        if item.get("price"):
            prices.append(
                (req.account.store.require("price", item["price"], param=None), f"items[{i}][price]")
            )
    check_taxable(req.account, customer_id=sub["customer"], prices=prices)


def subscription_cancel(req: Request) -> Response:
    p = req.params
    p.only("invoice_now", "prorate", "cancellation_details")
    sub = req.backend(SubscriptionsBackend).subscription_cancel(
        req.path_params["id"],
        invoice_now=bool(p.boolean("invoice_now")),
        prorate_=bool(p.boolean("prorate")),
        cancellation_details=_cancellation_details(p),
    )
    return req.respond(sub)


def subscription_resume(req: Request) -> Response:
    p = req.params
    p.only("billing_cycle_anchor", "proration_behavior", "proration_date")
    # At this API version the anchor is a hash, `billing_cycle_anchor[type]=now|unchanged`; the older bare
    # string is refused as Stripe refuses a scalar where it expects a hash.
    anchor = p.sub("billing_cycle_anchor")
    anchor_type = "now"
    if anchor is not None:
        anchor.only("type")
        anchor_type = anchor.enum("type", ("now", "unchanged"), required=True) or "now"
    sub = req.backend(SubscriptionsBackend).subscription_resume(
        req.path_params["id"],
        billing_cycle_anchor=anchor_type,
        proration_behavior=p.enum("proration_behavior", PRORATION_BEHAVIORS) or "create_prorations",
    )
    return req.respond(sub)


def subscription_list(req: Request) -> Response:
    p = req.params
    p.only("customer", "price", "status", "collection_method", *LIST_PARAMS)
    created = p.range_filter("created")
    subs = req.backend(SubscriptionsBackend).subscription_list(
        customer=p.string("customer"),
        price=p.string("price"),
        status=p.enum("status", SUBSCRIPTION_STATUSES),
        collection_method=p.enum("collection_method", COLLECTION_METHODS),
    )
    subs = [s for s in subs if in_range(s["created"], created)]
    return req.respond_list(subs, url="/v1/subscriptions", object_type="subscription")


# -- subscription items -----------------------------------------------------------------------------------


def _item_update_args(p: Params) -> dict[str, Any]:
    return {
        "proration_behavior": p.enum("proration_behavior", PRORATION_BEHAVIORS) or "create_prorations",
        "proration_date": p.timestamp("proration_date"),
        "payment_behavior": p.enum("payment_behavior", PAYMENT_BEHAVIORS) or "allow_incomplete",
    }


def subscription_item_create(req: Request) -> Response:
    p = req.params
    p.only(
        "subscription",
        "price",
        "quantity",
        "metadata",
        "proration_behavior",
        "proration_date",
        "payment_behavior",
    )
    backend = req.backend(SubscriptionsBackend)
    sub = backend.subscription_require(p.string("subscription", required=True) or "", param="subscription")
    price = p.string("price", required=True) or ""
    spec = {"price": price, "quantity": p.integer("quantity", minimum=0), "metadata": _metadata(p)}
    backend._check_metered_quantity(backend._price(price, "price"), spec, "quantity")
    backend.subscription_update(sub["id"], items=[spec], item_param="items", **_item_update_args(p))
    item = next(i for i in backend.items_of(sub) if i["price"]["id"] == price)
    return req.respond(item)


def subscription_item_retrieve(req: Request) -> Response:
    req.params.only()
    return req.respond(req.backend(SubscriptionsBackend).item_require(req.path_params["id"]))


def subscription_item_update(req: Request) -> Response:
    p = req.params
    p.only(
        "price",
        "quantity",
        "metadata",
        "proration_behavior",
        "proration_date",
        "payment_behavior",
        "off_session",
    )
    backend = req.backend(SubscriptionsBackend)
    item = backend.item_require(req.path_params["id"])
    spec: dict[str, Any] = {
        "id": item["id"],
        "price": p.string("price"),
        "quantity": p.integer("quantity", minimum=0),
    }
    spec["metadata"] = merge_metadata(item["metadata"], p) if p.has("metadata") else None
    price = backend._price(spec["price"], "price") if spec["price"] else item["price"]
    backend._check_metered_quantity(price, spec, "quantity")
    backend.subscription_update(item["subscription"], items=[spec], **_item_update_args(p))
    return req.respond(backend.item_require(item["id"]))


def subscription_item_delete(req: Request) -> Response:
    p = req.params
    p.only("proration_behavior", "proration_date", "payment_behavior", "clear_usage")
    backend = req.backend(SubscriptionsBackend)
    item = backend.item_require(req.path_params["id"])
    backend.subscription_update(
        item["subscription"], items=[{"id": item["id"], "deleted": True}], **_item_update_args(p)
    )
    return Response.json({"id": item["id"], "object": "subscription_item", "deleted": True})


def subscription_item_list(req: Request) -> Response:
    p = req.params
    p.only("subscription", "limit", "starting_after", "ending_before")
    subscription = p.string("subscription", required=True) or ""
    items = req.backend(SubscriptionsBackend).item_list(subscription)
    return req.respond_list(items, url="/v1/subscription_items", object_type="subscription_item")


# -- the invoice a change would create --------------------------------------------------------------------


def invoice_create_preview(req: Request) -> Response:
    """The invoice a subscription change would create (see :mod:`..models.preview`); creates nothing.
    ``discounts`` (``[{coupon} | {promotion_code}]``; ``""`` inherits none) stand for the subscription's on the
    preview; ``automatic_tax[enabled]`` turns Stripe Tax on or off for it (else the subscription's setting)."""
    p = req.params
    p.only("customer", "subscription", "subscription_details", "discounts", "automatic_tax")
    details = p.sub("subscription_details")
    items = None
    proration_behavior = "create_prorations"
    proration_date = None
    if details is not None:
        details.only("items", "proration_behavior", "proration_date")
        items = _items(details, update=True)
        proration_behavior = details.enum("proration_behavior", PRORATION_BEHAVIORS) or proration_behavior
        proration_date = details.timestamp("proration_date")
    subscription = p.string("subscription")
    if subscription is None:
        raise InvalidRequestError(
            "Missing required param: subscription. Previews of new subscriptions, schedules and invoice items "
            "are not emulated.",
            code="parameter_missing",
            param="subscription",
        )
    preview = req.backend(SubscriptionsBackend).invoice_preview(
        subscription=subscription,
        customer=p.string("customer"),
        items=items,
        proration_behavior=proration_behavior,
        proration_date=proration_date,
        discounts=discounts_param(p),
        automatic_tax=automatic_tax_param(p),
    )
    return Response.json(preview)


# -- includes (expand-only fields) -----------------------------------------------------------------------


def include_customer_subscriptions(account: Any, customer: StripeObject) -> dict[str, Any]:
    from stripe_emulator.core.store import clone

    subs = account.backend(SubscriptionsBackend).subscription_list(customer=customer["id"])
    return {
        "object": "list",
        "data": [clone(s) for s in subs],
        "has_more": False,
        "url": f"/v1/customers/{customer['id']}/subscriptions",
    }


# -- test control ------------------------------------------------------------------------------------------


def billing_settings_update(req: Request) -> Response:
    """``POST /_emulator/billing/settings``: this account's dunning settings (see ``settings.py``)."""
    p = req.params
    p.only("retry_days", "after_final_failure", "incomplete_expiry_hours")
    settings = billing_settings(req.account)
    if p.has("retry_days"):
        days = p.strings("retry_days") or []
        try:
            parsed = [float(d) for d in days]
        except ValueError as exc:
            raise ParameterInvalid("retry_days must be numbers of days.", param="retry_days") from exc
        if parsed != sorted(parsed) or any(d <= 0 for d in parsed) or len(parsed) > 8:
            raise ParameterInvalid(
                "retry_days must be at most 8 increasing positive numbers.", param="retry_days"
            )
        settings["retry_days"] = parsed
    if p.has("after_final_failure"):
        settings["after_final_failure"] = p.enum(
            "after_final_failure", ("canceled", "unpaid", "past_due"), required=True
        )
    if p.has("incomplete_expiry_hours"):
        settings["incomplete_expiry_hours"] = p.integer("incomplete_expiry_hours", minimum=1, required=True)
    return Response.json({k: v for k, v in settings.items() if not k.startswith("_")})
