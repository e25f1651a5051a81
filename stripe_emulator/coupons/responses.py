"""Coupons and promotion codes, wire side; and :func:`discounts_param`, the ``discounts[n][coupon |
promotion_code]`` param that Checkout Sessions and subscriptions take."""

from __future__ import annotations

import re
from typing import Any

from stripe_emulator.core.errors import InvalidRequestError, ParameterInvalid
from stripe_emulator.core.params import Params, merge_metadata
from stripe_emulator.core.routing import Request, Response
from stripe_emulator.coupons.models import DURATIONS, CouponsBackend


def discounts_param(p: Params, key: str = "discounts") -> list[dict[str, str | None]] | None:
    """``None`` when not sent, ``[]`` when sent as ``""`` (clears, on updates)."""
    if p.raw(key) == "":
        return []
    entries = p.hashes(key)
    if entries is None:
        return None
    parsed = []
    for entry in entries:
        entry.only("coupon", "promotion_code", "discount")
        if entry.has("discount"):
            raise InvalidRequestError(
                "The emulator does not support reusing an existing discount.", param=entry.name("discount")
            )
        parsed.append({"coupon": entry.string("coupon"), "promotion_code": entry.string("promotion_code")})
    return parsed


def _percent(p: Params) -> float | None:
    raw = p.raw("percent_off")
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or not re.fullmatch(r"\d+(\.\d+)?", raw):
        raise ParameterInvalid(
            f"Invalid decimal: {raw}", param="percent_off", code="parameter_invalid_integer"
        )
    if "." in raw and len(raw.split(".")[1].rstrip("0")) > 2:
        raise ParameterInvalid(
            "Invalid percent_off: at most two decimal places.",
            param="percent_off",
            code="parameter_invalid_integer",
        )
    return float(raw)


def coupon_create(req: Request) -> Response:
    p = req.params
    p.only(
        "id",
        "amount_off",
        "applies_to",
        "currency",
        "duration",
        "duration_in_months",
        "max_redemptions",
        "metadata",
        "name",
        "percent_off",
        "redeem_by",
    )
    applies_to = None
    sub = p.sub("applies_to")
    if sub is not None:
        sub.only("products")
        applies_to = sub.strings("products") or []
    coupon = req.backend(CouponsBackend).coupon_create(
        coupon_id=p.string("id"),
        percent_off=_percent(p),
        amount_off=p.integer("amount_off", minimum=1),
        currency=p.currency(),
        duration=p.enum("duration", DURATIONS) or "once",
        duration_in_months=p.integer("duration_in_months", minimum=1),
        max_redemptions=p.integer("max_redemptions", minimum=1),
        redeem_by=p.timestamp("redeem_by"),
        applies_to=applies_to,
        name=p.string("name", max_length=40),
        metadata=merge_metadata({}, p),
    )
    return req.respond(coupon)


def coupon_retrieve(req: Request) -> Response:
    req.params.only()
    return req.respond(req.backend(CouponsBackend).coupon_require(req.path_params["id"]))


def coupon_update(req: Request) -> Response:
    p = req.params
    p.only("name", "metadata")
    backend = req.backend(CouponsBackend)
    coupon = backend.coupon_require(req.path_params["id"])
    changes: dict[str, Any] = {}
    if p.has("name"):
        changes["name"] = p.string("name", max_length=40)
    if p.has("metadata"):
        changes["metadata"] = merge_metadata(coupon["metadata"], p)
    return req.respond(backend.coupon_update(coupon["id"], changes))


def coupon_delete(req: Request) -> Response:
    req.params.only()
    return req.respond(req.backend(CouponsBackend).coupon_delete(req.path_params["id"]))


def coupon_list(req: Request) -> Response:
    req.params.only("limit", "starting_after", "ending_before", "created")
    return req.respond_list(
        req.backend(CouponsBackend).coupon_list(), url="/v1/coupons", object_type="coupon"
    )


def promotion_code_create(req: Request) -> Response:
    p = req.params
    p.only(
        "active",
        "code",
        "customer",
        "expires_at",
        "max_redemptions",
        "metadata",
        "promotion",
        "restrictions",
    )
    promotion = p.sub("promotion", required=True)
    assert promotion is not None
    promotion.only("coupon", "type")
    promotion.enum("type", ("coupon",), required=True)
    coupon_id = promotion.string("coupon", required=True) or ""
    restrictions = p.sub("restrictions")
    first_time, minimum, minimum_currency = False, None, None
    if restrictions is not None:
        restrictions.only("first_time_transaction", "minimum_amount", "minimum_amount_currency")
        first_time = bool(restrictions.boolean("first_time_transaction"))
        minimum = restrictions.integer("minimum_amount", minimum=1)
        minimum_currency = restrictions.currency("minimum_amount_currency")
    active = p.boolean("active")
    promo = req.backend(CouponsBackend).promotion_code_create(
        coupon_id=coupon_id,
        code=p.string("code", max_length=500),
        active=True if active is None else active,
        customer=p.string("customer"),
        expires_at=p.timestamp("expires_at"),
        max_redemptions=p.integer("max_redemptions", minimum=1),
        first_time_transaction=first_time,
        minimum_amount=minimum,
        minimum_amount_currency=minimum_currency,
        metadata=merge_metadata({}, p),
    )
    return req.respond(promo)


def promotion_code_retrieve(req: Request) -> Response:
    req.params.only()
    return req.respond(req.backend(CouponsBackend).promotion_code_require(req.path_params["id"]))


def promotion_code_update(req: Request) -> Response:
    p = req.params
    p.only("active", "metadata")
    backend = req.backend(CouponsBackend)
    promo = backend.promotion_code_require(req.path_params["id"])
    changes: dict[str, Any] = {}
    if p.has("active"):
        changes["active"] = bool(p.boolean("active", required=True))
    if p.has("metadata"):
        changes["metadata"] = merge_metadata(promo["metadata"], p)
    return req.respond(backend.promotion_code_update(promo["id"], changes))


def promotion_code_list(req: Request) -> Response:
    p = req.params
    p.only("active", "code", "coupon", "customer", "created", "limit", "starting_after", "ending_before")
    promos = req.backend(CouponsBackend).promotion_code_list(
        active=p.boolean("active"),
        code=p.string("code"),
        coupon=p.string("coupon"),
        customer=p.string("customer"),
    )
    return req.respond_list(promos, url="/v1/promotion_codes", object_type="promotion_code")
