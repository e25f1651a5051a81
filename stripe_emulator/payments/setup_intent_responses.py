"""Setup intents, wire side (``/v1/setup_intents``) and the ``/_emulator`` 3-D Secure control. Behaviour
lives in :mod:`stripe_emulator.payments.models.setup_intents`."""

from __future__ import annotations

from typing import Any

from stripe_emulator.core.errors import InvalidRequestError, ResourceMissing
from stripe_emulator.core.params import Params, merge_metadata
from stripe_emulator.core.render import render
from stripe_emulator.core.routing import Request, Response
from stripe_emulator.core.store import StripeObject
from stripe_emulator.payments.method_types import allowed_payment_method_types, refuse_payment_method_types
from stripe_emulator.payments.models import PaymentsBackend

USAGES = ("off_session", "on_session")
SETUP_CANCELLATION_REASONS = ("abandoned", "duplicate", "requested_by_customer")


def _automatic_payment_methods(p: Params) -> None:
    automatic = p.sub("automatic_payment_methods")
    if automatic is not None:
        automatic.only("enabled", "allow_redirects")
        automatic.boolean("enabled", required=True)
        automatic.enum("allow_redirects", ("always", "never"))


def _respond_or_decline(req: Request, backend: PaymentsBackend, seti: StripeObject) -> Response:
    declined = backend.setup_intent_decline_error(seti)
    if declined is not None:
        raise declined
    return req.respond(seti)


def setup_intent_create(req: Request) -> Response:
    p = req.params
    refuse_payment_method_types(p)
    p.only(
        "allowed_payment_method_types",
        "automatic_payment_methods",
        "confirm",
        "customer",
        "description",
        "metadata",
        "payment_method",
        "return_url",
        "usage",
    )
    _automatic_payment_methods(p)
    allowed = allowed_payment_method_types(p, exclusive_with=("automatic_payment_methods",))
    confirm = bool(p.boolean("confirm"))
    backend = req.backend(PaymentsBackend)
    seti = backend.setup_intent_create(
        customer=p.string("customer"),
        payment_method=p.string("payment_method"),
        usage=p.enum("usage", USAGES) or "off_session",
        description=p.string("description", max_length=1000),
        metadata=merge_metadata({}, p),
        allowed_payment_method_types=allowed,
        confirm=confirm,
        return_url=p.string("return_url"),
    )
    return _respond_or_decline(req, backend, seti) if confirm else req.respond(seti)


def setup_intent_retrieve(req: Request) -> Response:
    req.params.only("client_secret")
    return req.respond(req.backend(PaymentsBackend).setup_intent_require(req.path_params["id"]))


def setup_intent_update(req: Request) -> Response:
    p = req.params
    refuse_payment_method_types(p)
    p.only("allowed_payment_method_types", "customer", "description", "metadata", "payment_method")
    backend = req.backend(PaymentsBackend)
    seti = backend.setup_intent_require(req.path_params["id"])
    changes: dict[str, Any] = {}
    for key, max_length in (("customer", 5000), ("description", 1000), ("payment_method", 5000)):
        if p.has(key):
            changes[key] = p.string(key, max_length=max_length)
    if p.has("allowed_payment_method_types"):
        changes["allowed_payment_method_types"] = allowed_payment_method_types(
            p, exclusive_with=(), clearable=True
        )
    if p.has("metadata"):
        changes["metadata"] = merge_metadata(seti["metadata"], p)
    return req.respond(backend.setup_intent_update(seti["id"], changes))


def setup_intent_confirm(req: Request) -> Response:
    p = req.params
    refuse_payment_method_types(p)
    p.only("allowed_payment_method_types", "client_secret", "payment_method", "return_url")
    allowed = allowed_payment_method_types(p, exclusive_with=())
    backend = req.backend(PaymentsBackend)
    seti = backend.setup_intent_require(req.path_params["id"])
    if seti.get("_checkout_session") is not None:
        raise InvalidRequestError(
            "You can't confirm the SetupIntent for a Checkout Session: the customer confirms it on the "
            "Checkout page.",
            code="setup_intent_unexpected_state",
        )
    seti = backend.setup_intent_confirm_internal(
        seti["id"],
        payment_method=p.string("payment_method"),
        return_url=p.string("return_url"),
        allowed_payment_method_types=allowed,
    )
    return _respond_or_decline(req, backend, seti)


def setup_intent_cancel(req: Request) -> Response:
    p = req.params
    p.only("cancellation_reason")
    reason = p.enum("cancellation_reason", SETUP_CANCELLATION_REASONS)
    return req.respond(
        req.backend(PaymentsBackend).setup_intent_cancel(req.path_params["id"], cancellation_reason=reason)
    )


def setup_intent_list(req: Request) -> Response:
    p = req.params
    p.only("customer", "payment_method", "created", "limit", "starting_after", "ending_before")
    setis = req.backend(PaymentsBackend).setup_intent_list(
        customer=p.string("customer"),
        payment_method=p.string("payment_method"),
        created=p.range_filter("created"),
    )
    return req.respond_list(setis, url="/v1/setup_intents", object_type="setup_intent")


def setup_intent_authenticate_control(req: Request) -> Response:
    """``POST /_emulator/setup_intents/{id}/authenticate`` ``outcome=succeed|fail``: the customer answers the
    3-D Secure challenge. Emulator-only."""
    p = req.params
    p.only("outcome")
    outcome = p.enum("outcome", ("succeed", "fail")) or "succeed"
    seti_id = req.path_params["id"]
    found = req.emulator.locate(seti_id)
    if found is None or found[1]["object"] != "setup_intent":
        raise ResourceMissing("setup_intent", seti_id)
    account = found[0]
    with account.lock:
        seti = account.backend(PaymentsBackend).setup_intent_authenticate(
            seti_id, succeed=outcome == "succeed"
        )
        return Response.json(render(account, seti))
