"""Payments, wire side: payment methods, payment intents, charges, refunds, disputes, and the
``/_emulator`` controls for 3-D Secure, dispute and refund outcomes. Behaviour lives in the ``models`` package."""

from __future__ import annotations

from typing import Any, NoReturn

from stripe_emulator.core.account import Account
from stripe_emulator.core.errors import InvalidRequestError, ResourceMissing
from stripe_emulator.core.params import Params, merge_metadata
from stripe_emulator.core.render import render
from stripe_emulator.core.routing import Request, Response
from stripe_emulator.core.store import StripeObject
from stripe_emulator.customers.responses import ADDRESS_FIELDS, parse_address
from stripe_emulator.payments import cards
from stripe_emulator.payments.method_types import allowed_payment_method_types, refuse_payment_method_types
from stripe_emulator.payments.models import PaymentsBackend
from stripe_emulator.payments.models.disputes import EVIDENCE_FIELDS
from stripe_emulator.payments.models.payment_intents import OPEN_STATUSES
from stripe_emulator.payments.models.refunds import FAILURE_REASONS

CANCELLATION_REASONS = ("abandoned", "duplicate", "fraudulent", "requested_by_customer")
REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")
FUTURE_USAGE = ("off_session", "on_session")
# Stripe's minimum charge amounts for the common currencies (https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts).
MINIMUM_AMOUNTS = {"usd": 50, "eur": 50, "gbp": 30, "cad": 50, "aud": 50, "chf": 50, "jpy": 50}


def _billing_details(p: Params) -> dict[str, Any] | None:
    details = p.sub("billing_details")
    if details is None:
        return None
    details.only("address", "email", "name", "phone", "tax_id")
    values: dict[str, Any] = {}
    if details.has("address"):
        values["address"] = parse_address(details) or dict.fromkeys(ADDRESS_FIELDS)
    for key in ("email", "name", "phone", "tax_id"):
        if details.has(key):
            values[key] = details.string(key)
    return values


# -- payment methods -------------------------------------------------------------------------------------


def payment_method_create(req: Request) -> Response:
    p = req.params
    p.only("type", "card", "billing_details", "metadata", "allow_redisplay")
    p.enum("type", ("card",), required=True)
    card = p.sub("card", required=True)
    assert card is not None
    card.only("number", "exp_month", "exp_year", "cvc", "token")
    token = card.string("token")
    if token is not None:
        number = cards.TOKENS.get(token.replace("tok_", "pm_card_", 1))
        if number is None:
            raise ResourceMissing("token", token, param="card[token]")
        exp_month, exp_year = None, None
    else:
        number = card.string("number", required=True) or ""
        exp_month = card.integer("exp_month", required=True)
        exp_year = card.integer("exp_year", required=True)
        card.string("cvc", max_length=4)
    backend = req.backend(PaymentsBackend)
    pm = backend.payment_method_create_from_card(
        number,
        exp_month=exp_month,
        exp_year=exp_year,
        billing_details=_billing_details(p),
        metadata=merge_metadata({}, p),
    )
    allow = p.enum("allow_redisplay", ("always", "limited", "unspecified"))
    if allow is not None:
        pm["allow_redisplay"] = allow
    return req.respond(pm)


def payment_method_retrieve(req: Request) -> Response:
    req.params.only()
    return req.respond(req.backend(PaymentsBackend).payment_method_require(req.path_params["id"]))


def payment_method_update(req: Request) -> Response:
    p = req.params
    p.only("metadata", "billing_details", "card", "allow_redisplay")
    backend = req.backend(PaymentsBackend)
    pm = backend.payment_method_require(req.path_params["id"])
    changes: dict[str, Any] = {}
    if p.has("metadata"):
        changes["metadata"] = merge_metadata(pm["metadata"], p)
    billing = _billing_details(p)
    if billing is not None:
        changes["billing_details"] = billing
    card = p.sub("card")
    if card is not None:
        card.only("exp_month", "exp_year")
        card_changes: dict[str, Any] = {}
        month = card.integer("exp_month", minimum=1, maximum=12)
        if month is not None:
            card_changes["exp_month"] = month
        year = card.integer("exp_year")
        if year is not None:
            card_changes["exp_year"] = year + 2000 if year < 100 else year
        changes["card"] = card_changes
    if p.has("allow_redisplay"):
        changes["allow_redisplay"] = p.enum("allow_redisplay", ("always", "limited", "unspecified"))
    return req.respond(backend.payment_method_update(pm["id"], changes))


def payment_method_list(req: Request) -> Response:
    p = req.params
    p.only("customer", "type", "limit", "starting_after", "ending_before")
    pms = req.backend(PaymentsBackend).payment_method_list(
        customer=p.string("customer"), type_=p.string("type")
    )
    return req.respond_list(pms, url="/v1/payment_methods", object_type="payment_method")


def customer_payment_method_list(req: Request) -> Response:
    p = req.params
    p.only("type", "allow_redisplay", "limit", "starting_after", "ending_before")
    customer = req.path_params["customer"]
    pms = req.backend(PaymentsBackend).payment_method_list(customer=customer, type_=p.string("type"))
    return req.respond_list(
        pms, url=f"/v1/customers/{customer}/payment_methods", object_type="payment_method"
    )


def customer_payment_method_retrieve(req: Request) -> Response:
    req.params.only()
    backend = req.backend(PaymentsBackend)
    customer = req.path_params["customer"]
    pm = backend.payment_method_require(req.path_params["id"])
    if pm["customer"] != customer:
        raise ResourceMissing("PaymentMethod", pm["id"])
    return req.respond(pm)


def payment_method_attach(req: Request) -> Response:
    p = req.params
    p.only("customer")
    customer = p.string("customer", required=True) or ""
    return req.respond(req.backend(PaymentsBackend).payment_method_attach(req.path_params["id"], customer))


def payment_method_detach(req: Request) -> Response:
    req.params.only()
    return req.respond(req.backend(PaymentsBackend).payment_method_detach(req.path_params["id"]))


# -- payment intents -------------------------------------------------------------------------------------


def _check_amount(amount: int, currency: str, param: str = "amount") -> None:
    minimum = MINIMUM_AMOUNTS.get(currency, 1)
    if amount < minimum:
        raise InvalidRequestError(
            f"Amount must be at least {minimum} {currency} minor units.", code="amount_too_small", param=param
        )
    if amount > 99_999_999:
        raise InvalidRequestError(
            "Amount must be no more than 99999999 minor units.", code="amount_too_large", param=param
        )


def _decline_or(req: Request, backend: PaymentsBackend, pi: StripeObject) -> Response:
    declined = backend.payment_intent_decline_error(pi)
    if declined is not None:
        raise declined
    return req.respond(pi)


def payment_intent_create(req: Request) -> Response:
    p = req.params
    refuse_payment_method_types(p)
    p.only(
        "allowed_payment_method_types",
        "amount",
        "automatic_payment_methods",
        "capture_method",
        "confirm",
        "confirmation_method",
        "currency",
        "customer",
        "description",
        "metadata",
        "off_session",
        "payment_method",
        "payment_method_options",
        "receipt_email",
        "return_url",
        "setup_future_usage",
        "statement_descriptor",
        "statement_descriptor_suffix",
    )
    amount = p.integer("amount", required=True) or 0
    currency = p.currency(required=True) or ""
    _check_amount(amount, currency)
    p.enum("capture_method", ("automatic", "automatic_async"))
    p.enum("confirmation_method", ("automatic", "manual"))
    automatic = p.sub("automatic_payment_methods")
    if automatic is not None:
        automatic.only("enabled", "allow_redirects")
        automatic.boolean("enabled", required=True)
        automatic.enum("allow_redirects", ("always", "never"))
    allowed = allowed_payment_method_types(p, exclusive_with=("automatic_payment_methods",))
    confirm = bool(p.boolean("confirm"))
    backend = req.backend(PaymentsBackend)
    pi = backend.payment_intent_create(
        amount=amount,
        currency=currency,
        customer=p.string("customer"),
        payment_method=p.string("payment_method"),
        metadata=merge_metadata({}, p),
        description=p.string("description", max_length=1000),
        confirm=confirm,
        off_session=bool(p.boolean("off_session")),
        setup_future_usage=p.enum("setup_future_usage", FUTURE_USAGE),
        allowed_payment_method_types=allowed,
        receipt_email=p.string("receipt_email"),
        statement_descriptor=p.string("statement_descriptor", max_length=22),
        statement_descriptor_suffix=p.string("statement_descriptor_suffix", max_length=22),
        return_url=p.string("return_url"),
    )
    return _decline_or(req, backend, pi) if confirm else req.respond(pi)


def payment_intent_retrieve(req: Request) -> Response:
    req.params.only("client_secret")
    return req.respond(req.backend(PaymentsBackend).payment_intent_require(req.path_params["id"]))


def payment_intent_update(req: Request) -> Response:
    p = req.params
    refuse_payment_method_types(p)
    p.only(
        "allowed_payment_method_types",
        "amount",
        "currency",
        "customer",
        "description",
        "metadata",
        "payment_method",
        "receipt_email",
        "setup_future_usage",
        "statement_descriptor",
        "statement_descriptor_suffix",
    )
    backend = req.backend(PaymentsBackend)
    pi = backend.payment_intent_require(req.path_params["id"])
    changes: dict[str, Any] = {}
    if p.has("amount"):
        changes["amount"] = p.integer("amount", required=True)
    if p.has("currency"):
        changes["currency"] = p.currency(required=True)
    if "amount" in changes or "currency" in changes:
        new_amount: int = changes["amount"] if "amount" in changes else pi["amount"]
        new_currency: str = changes["currency"] if "currency" in changes else pi["currency"]
        _check_amount(new_amount, new_currency)
    for key, max_length in (
        ("customer", 5000),
        ("description", 1000),
        ("payment_method", 5000),
        ("receipt_email", 5000),
        ("statement_descriptor", 22),
        ("statement_descriptor_suffix", 22),
    ):
        if p.has(key):
            changes[key] = p.string(key, max_length=max_length)
    if p.has("setup_future_usage"):
        changes["setup_future_usage"] = p.enum("setup_future_usage", FUTURE_USAGE)
    if p.has("allowed_payment_method_types"):
        allowed = allowed_payment_method_types(p, exclusive_with=())
        changes["allowed_payment_method_types"] = allowed
        changes["automatic_payment_methods"] = (
            None if allowed else {"allow_redirects": "always", "enabled": True}
        )
    if p.has("metadata"):
        changes["metadata"] = merge_metadata(pi["metadata"], p)
    return req.respond(backend.payment_intent_update(pi["id"], changes))


def payment_intent_list(req: Request) -> Response:
    p = req.params
    p.only("customer", "created", "limit", "starting_after", "ending_before")
    pis = req.backend(PaymentsBackend).payment_intent_list(
        customer=p.string("customer"), created=p.range_filter("created")
    )
    return req.respond_list(pis, url="/v1/payment_intents", object_type="payment_intent")


def payment_intent_confirm(req: Request) -> Response:
    p = req.params
    refuse_payment_method_types(p)
    p.only(
        "payment_method",
        "off_session",
        "return_url",
        "setup_future_usage",
        "receipt_email",
        "payment_method_options",
        "mandate_data",
        "client_secret",
        "allowed_payment_method_types",
    )
    backend = req.backend(PaymentsBackend)
    pi = backend.payment_intent_require(req.path_params["id"])
    # Validate everything first; then apply the confirm-time settings and confirm.
    future = p.enum("setup_future_usage", FUTURE_USAGE) if p.has("setup_future_usage") else None
    receipt_email = p.string("receipt_email")
    return_url = p.string("return_url")
    # As on create and update: the types the intent may be confirmed with from now on (card must be one).
    allowed = allowed_payment_method_types(p, exclusive_with=())
    if pi["status"] in OPEN_STATUSES:  # otherwise confirm refuses, and nothing may change
        if allowed is not None:
            pi["allowed_payment_method_types"] = allowed
            pi["automatic_payment_methods"] = None
        if p.has("setup_future_usage"):
            pi["setup_future_usage"] = future
        if receipt_email is not None:
            pi["receipt_email"] = receipt_email
        if return_url is not None:
            pi["_return_url"] = return_url
    pi = backend.payment_intent_confirm_internal(
        pi["id"], payment_method=p.string("payment_method"), off_session=bool(p.boolean("off_session"))
    )
    return _decline_or(req, backend, pi)


def payment_intent_cancel(req: Request) -> Response:
    p = req.params
    p.only("cancellation_reason")
    reason = p.enum("cancellation_reason", CANCELLATION_REASONS)
    return req.respond(
        req.backend(PaymentsBackend).payment_intent_cancel(req.path_params["id"], cancellation_reason=reason)
    )


def _locate(req: Request, object_type: str) -> tuple[Account, StripeObject]:
    object_id = req.path_params["id"]
    found = req.emulator.locate(object_id)
    if found is None or found[1]["object"] != object_type:
        raise ResourceMissing(object_type, object_id)
    return found


def payment_intent_authenticate_control(req: Request) -> Response:
    """``POST /_emulator/payment_intents/{id}/authenticate`` ``outcome=succeed|fail``: the customer's answer
    to the 3-D Secure challenge."""
    p = req.params
    p.only("outcome")
    outcome = p.enum("outcome", ("succeed", "fail")) or "succeed"
    account, pi = _locate(req, "payment_intent")
    with account.lock:
        pi = account.backend(PaymentsBackend).payment_intent_authenticate(
            pi["id"], succeed=outcome == "succeed"
        )
        return Response.json(render(account, pi))


# -- charges ---------------------------------------------------------------------------------------------


def _settled(req: Request) -> PaymentsBackend:
    """The backend, once the refund outcomes due by now have happened (they change charges too), and the
    balance transactions due by now are available (disputes embed them; charges and refunds expand them)."""
    backend = req.backend(PaymentsBackend)
    backend.refunds_settle_before_read()
    backend.balance_transactions_settle()
    return backend


def charge_retrieve(req: Request) -> Response:
    req.params.only()
    return req.respond(_settled(req).charge_require(req.path_params["id"]))


def charge_update(req: Request) -> Response:
    p = req.params
    p.only("metadata", "description", "receipt_email")
    backend = _settled(req)
    charge = backend.charge_require(req.path_params["id"])
    changes: dict[str, Any] = {}
    for key in ("description", "receipt_email"):
        if p.has(key):
            changes[key] = p.string(key)
    if p.has("metadata"):
        changes["metadata"] = merge_metadata(charge["metadata"], p)
    return req.respond(backend.charge_update(charge["id"], changes))


def charge_list(req: Request) -> Response:
    p = req.params
    p.only("customer", "payment_intent", "created", "limit", "starting_after", "ending_before")
    charges = _settled(req).charge_list(
        customer=p.string("customer"),
        payment_intent=p.string("payment_intent"),
        created=p.range_filter("created"),
    )
    return req.respond_list(charges, url="/v1/charges", object_type="charge")


def charge_refund_list(req: Request) -> Response:
    p = req.params
    p.only("limit", "starting_after", "ending_before")
    backend = _settled(req)
    charge = backend.charge_require(req.path_params["id"])
    refunds = backend.refund_list(charge=charge["id"])
    return req.respond_list(refunds, url=f"/v1/charges/{charge['id']}/refunds", object_type="refund")


# -- refunds ---------------------------------------------------------------------------------------------


def refund_create(req: Request) -> Response:
    p = req.params
    p.only("amount", "charge", "payment_intent", "reason", "metadata", "instructions_email")
    p.string("instructions_email")
    refund = _settled(req).refund_create(
        charge=p.string("charge"),
        payment_intent=p.string("payment_intent"),
        amount=p.integer("amount", minimum=1),
        reason=p.enum("reason", REFUND_REASONS),
        metadata=merge_metadata({}, p),
    )
    return req.respond(refund)


def refund_retrieve(req: Request) -> Response:
    req.params.only()
    return req.respond(_settled(req).refund_require(req.path_params["id"]))


def refund_update(req: Request) -> Response:
    p = req.params
    p.only("metadata")
    backend = _settled(req)
    refund = backend.refund_require(req.path_params["id"])
    changes: dict[str, Any] = {}
    if p.has("metadata"):
        changes["metadata"] = merge_metadata(refund["metadata"], p)
    return req.respond(backend.refund_update(refund["id"], changes))


def refund_list(req: Request) -> Response:
    p = req.params
    p.only("charge", "payment_intent", "created", "limit", "starting_after", "ending_before")
    refunds = _settled(req).refund_list(
        charge=p.string("charge"),
        payment_intent=p.string("payment_intent"),
        created=p.range_filter("created"),
    )
    return req.respond_list(refunds, url="/v1/refunds", object_type="refund")


def _refuse_unless_requires_action(req: Request, verb: str) -> NoReturn:
    # Only refunds to payment methods without native refunds (bank transfers, Konbini …) wait in
    # ``requires_action``; card refunds never do, and Stripe cancels card refunds in the Dashboard only.
    refund = _settled(req).refund_require(req.path_params["id"])
    raise InvalidRequestError(
        f"Refund {refund['id']} has a status of {refund['status']}. Only a refund with a status of "
        f"requires_action can be {verb}.",
    )


def refund_cancel(req: Request) -> Response:
    """``POST /v1/refunds/{id}/cancel``: refused, as every emulated refund is a card refund."""
    req.params.only()
    return _refuse_unless_requires_action(req, "canceled")


def refund_expire(req: Request) -> Response:
    """``POST /v1/test_helpers/refunds/{id}/expire``: refused, as for ``cancel``."""
    req.params.only()
    return _refuse_unless_requires_action(req, "expired")


def refund_settle_control(req: Request) -> Response:
    """``POST /_emulator/refunds/{id}/settle`` ``outcome=succeed|fail`` [``failure_reason=…``]: the refund's
    asynchronous outcome now (emulator-only; Stripe offers no such helper)."""
    p = req.params
    p.only("outcome", "failure_reason")
    outcome = p.enum("outcome", ("succeed", "fail"), required=True)
    failure_reason = p.enum("failure_reason", FAILURE_REASONS)
    if failure_reason is not None and outcome == "succeed":
        raise InvalidRequestError("failure_reason is only valid with outcome=fail.", param="failure_reason")
    account, refund = _locate(req, "refund")
    with account.lock:
        backend = account.backend(PaymentsBackend)
        backend.refunds_settle_before_read()
        backend.balance_transactions_settle()
        refund = backend.refund_settle(
            refund["id"],
            succeed=outcome == "succeed",
            failure_reason=failure_reason or "expired_or_canceled_card",
        )
        return Response.json(render(account, refund))


# -- disputes --------------------------------------------------------------------------------------------


def dispute_retrieve(req: Request) -> Response:
    req.params.only()
    return req.respond(_settled(req).dispute_require(req.path_params["id"]))


def dispute_update(req: Request) -> Response:
    p = req.params
    p.only("evidence", "metadata", "submit")
    backend = _settled(req)
    dispute = backend.dispute_require(req.path_params["id"])
    evidence: dict[str, Any] = {}
    sub = p.sub("evidence")
    if sub is not None:
        sub.only(*EVIDENCE_FIELDS, "enhanced_evidence")
        for key in EVIDENCE_FIELDS:
            if sub.has(key):
                evidence[key] = sub.string(key, max_length=150_000)
    metadata = merge_metadata(dispute["metadata"], p) if p.has("metadata") else None
    updated = backend.dispute_update(
        dispute["id"], evidence=evidence, metadata=metadata, submit=bool(p.boolean("submit"))
    )
    return req.respond(updated)


def dispute_close(req: Request) -> Response:
    req.params.only()
    return req.respond(_settled(req).dispute_close(req.path_params["id"]))


def dispute_list(req: Request) -> Response:
    p = req.params
    p.only("charge", "payment_intent", "created", "limit", "starting_after", "ending_before")
    disputes = _settled(req).dispute_list(
        charge=p.string("charge"),
        payment_intent=p.string("payment_intent"),
        created=p.range_filter("created"),
    )
    return req.respond_list(disputes, url="/v1/disputes", object_type="dispute")


def dispute_resolve_control(req: Request) -> Response:
    """``POST /_emulator/disputes/{id}/resolve`` ``outcome=won|lost``: the issuer's decision."""
    p = req.params
    p.only("outcome")
    outcome = p.enum("outcome", ("won", "lost"), required=True)
    account, dispute = _locate(req, "dispute")
    with account.lock:
        backend = account.backend(PaymentsBackend)
        backend.balance_transactions_settle()
        dispute = backend.dispute_resolve(dispute["id"], won=outcome == "won")
        return Response.json(render(account, dispute))
