"""Customer portal configurations and sessions, wire side."""

from __future__ import annotations

from typing import Any

from stripe_emulator.core.errors import InvalidRequestError, ParameterMissing
from stripe_emulator.core.params import Params, merge_metadata
from stripe_emulator.core.routing import Request, Response
from stripe_emulator.portal.models import UPDATABLE, PortalBackend

PRORATIONS = ("always_invoice", "create_prorations", "none")
# When any holds, the portal schedules a plan switch for the end of the current period instead of making it now.
SCHEDULE_CONDITIONS = ("decreasing_item_amount", "shortening_interval")
CUSTOMER_UPDATES = ("address", "email", "name", "phone", "shipping", "tax_id")
# A pause lasts at most three years, in each of the units a portal option can use.
PAUSE_INTERVALS_MAX = {"day": 1095, "week": 156, "month": 36, "year": 3}


def _enabled(sub: Params) -> dict[str, Any]:
    return {"enabled": bool(sub.boolean("enabled"))} if sub.has("enabled") else {}


def _features(p: Params) -> dict[str, Any]:
    features = p.sub("features")
    if features is None:
        return {}
    features.only(
        "customer_update",
        "invoice_history",
        "payment_method_update",
        "subscription_cancel",
        "subscription_pause",
        "subscription_update",
    )
    parsed: dict[str, Any] = {}
    if (f := features.sub("invoice_history")) is not None:
        f.only("enabled")
        parsed["invoice_history"] = _enabled(f)
    if (f := features.sub("payment_method_update")) is not None:
        f.only("enabled", "payment_method_configuration")
        parsed["payment_method_update"] = _enabled(f)
    if (f := features.sub("customer_update")) is not None:
        f.only("enabled", "allowed_updates")
        values = _enabled(f)
        if f.has("allowed_updates"):
            allowed = f.strings("allowed_updates") or []
            for value in allowed:
                Params({"allowed_updates": value}, f.prefix).enum("allowed_updates", CUSTOMER_UPDATES)
            values["allowed_updates"] = allowed
        parsed["customer_update"] = values
    if (f := features.sub("subscription_cancel")) is not None:
        f.only("enabled", "mode", "proration_behavior", "cancellation_reason")
        values = _enabled(f)
        if f.has("mode"):
            values["mode"] = f.enum("mode", ("at_period_end", "immediately"), required=True)
        if f.has("proration_behavior"):
            values["proration_behavior"] = f.enum(
                "proration_behavior", ("create_prorations", "none"), required=True
            )
        if (reason := f.sub("cancellation_reason")) is not None:
            reason.only("enabled", "options")
            values["cancellation_reason"] = {
                "enabled": bool(reason.boolean("enabled")),
                "options": reason.strings("options") or [],
            }
        parsed["subscription_cancel"] = values
    if (f := features.sub("subscription_pause")) is not None:
        f.only("enabled", "duration")
        values = _enabled(f)
        if (duration := f.sub("duration")) is not None:
            values["duration"] = _pause_duration(duration)
        parsed["subscription_pause"] = values
    if (f := features.sub("subscription_update")) is not None:
        f.only(
            "enabled",
            "default_allowed_updates",
            "products",
            "proration_behavior",
            "schedule_at_period_end",
            "trial_update_behavior",
            "billing_cycle_anchor",
        )
        values = _enabled(f)
        if f.has("default_allowed_updates"):
            allowed = f.strings("default_allowed_updates") or []
            for value in allowed:
                Params({"default_allowed_updates": value}, f.prefix).enum(
                    "default_allowed_updates", UPDATABLE
                )
            values["default_allowed_updates"] = allowed
        if f.has("products"):
            products = []
            for entry in f.hashes("products") or []:
                entry.only("product", "prices", "adjustable_quantity")
                products.append(
                    {
                        "adjustable_quantity": {"enabled": False, "maximum": None, "minimum": 1},
                        "prices": entry.strings("prices") or [],
                        "product": entry.string("product", required=True),
                    }
                )
            values["products"] = products
        if f.has("proration_behavior"):
            values["proration_behavior"] = f.enum("proration_behavior", PRORATIONS, required=True)
        if (schedule := f.sub("schedule_at_period_end")) is not None:
            schedule.only("conditions")
            conditions = []
            for condition in schedule.hashes("conditions") or []:
                condition.only("type")
                kind = condition.enum("type", SCHEDULE_CONDITIONS, required=True)
                conditions.append({"type": kind})
            values["schedule_at_period_end"] = {"conditions": conditions}
        if f.has("trial_update_behavior"):
            values["trial_update_behavior"] = f.enum(
                "trial_update_behavior", ("continue_trial", "end_trial"), required=True
            )
        parsed["subscription_update"] = values
    return parsed


def _pause_duration(duration: Params) -> dict[str, Any]:
    """``features[subscription_pause][duration]``: ``type`` (``interval_options``, which needs at least one
    option, or ``indefinite``, which takes none) and the options, each ``interval`` × ``interval_count``
    (default 1) of at most three years."""
    duration.only("type", "interval_options")
    kind = duration.enum("type", ("indefinite", "interval_options"), required=True)
    options = []
    for option in duration.hashes("interval_options") or []:
        option.only("interval", "interval_count")
        interval = option.enum("interval", tuple(PAUSE_INTERVALS_MAX), required=True) or "month"
        count = option.integer("interval_count", minimum=1)
        if count is not None and count > PAUSE_INTERVALS_MAX[interval]:
            raise InvalidRequestError(
                "The maximum pause duration is three years.", param=option.name("interval_count")
            )
        options.append({"interval": interval, "interval_count": 1 if count is None else count})
    if kind == "interval_options" and not options:
        raise ParameterMissing(duration.name("interval_options"))
    if kind == "indefinite" and options:
        raise InvalidRequestError(
            "interval_options can only be set when the duration type is `interval_options`.",
            param=duration.name("interval_options"),
        )
    return {"interval_options": options, "type": kind}


def _business_profile(p: Params) -> dict[str, Any] | None:
    profile = p.sub("business_profile")
    if profile is None:
        return None
    profile.only("headline", "privacy_policy_url", "terms_of_service_url")
    return {
        k: profile.string(k)
        for k in ("headline", "privacy_policy_url", "terms_of_service_url")
        if profile.has(k)
    }


CONFIG_FIELDS = (
    "business_profile",
    "default_return_url",
    "features",
    "is_default",
    "metadata",
    "name",
    "login_page",
)


def configuration_create(req: Request) -> Response:
    p = req.params
    p.only(*CONFIG_FIELDS)
    p.sub("features", required=True)
    config = req.backend(PortalBackend).configuration_create(
        features=_features(p),
        business_profile=_business_profile(p),
        default_return_url=p.string("default_return_url"),
        is_default=bool(p.boolean("is_default")),
        metadata=merge_metadata({}, p),
        name=p.string("name"),
    )
    return req.respond(config)


def configuration_retrieve(req: Request) -> Response:
    req.params.only()
    return req.respond(req.backend(PortalBackend).configuration_require(req.path_params["configuration"]))


def configuration_update(req: Request) -> Response:
    p = req.params
    p.only("active", *CONFIG_FIELDS)
    backend = req.backend(PortalBackend)
    config = backend.configuration_require(req.path_params["configuration"])
    changes: dict[str, Any] = {}
    if p.has("features"):
        changes["features"] = _features(p)
    if p.has("business_profile"):
        changes["business_profile"] = _business_profile(p) or {}
    if p.has("default_return_url"):
        changes["default_return_url"] = p.string("default_return_url")
    if p.has("name"):
        changes["name"] = p.string("name")
    if p.has("active"):
        changes["active"] = bool(p.boolean("active"))
    if p.has("is_default"):
        changes["is_default"] = bool(p.boolean("is_default"))
    if p.has("metadata"):
        changes["metadata"] = merge_metadata(config["metadata"], p)
    return req.respond(backend.configuration_update(config["id"], changes))


def configuration_list(req: Request) -> Response:
    p = req.params
    p.only("active", "is_default", "limit", "starting_after", "ending_before")
    configs = req.backend(PortalBackend).configuration_list(
        active=p.boolean("active"), is_default=p.boolean("is_default")
    )
    return req.respond_list(
        configs, url="/v1/billing_portal/configurations", object_type="billing_portal.configuration"
    )


def session_create(req: Request) -> Response:
    p = req.params
    p.only("customer", "return_url", "configuration", "locale", "on_behalf_of")
    session = req.backend(PortalBackend).session_create(
        customer=p.string("customer", required=True) or "",
        return_url=p.string("return_url"),
        configuration=p.string("configuration"),
        locale=p.string("locale"),
    )
    return req.respond(session)
