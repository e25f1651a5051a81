"""Subscription schedules, wire side (``/v1/subscription_schedules``): params parsed and checked as Stripe does
at the pinned version; behaviour in :mod:`stripe_emulator.subscriptions.schedules`."""

from __future__ import annotations

from typing import Any

from stripe_emulator.core.errors import InvalidRequestError
from stripe_emulator.core.params import Params, merge_metadata
from stripe_emulator.core.routing import Request, Response
from stripe_emulator.subscriptions.models.base import PRORATION_BEHAVIORS
from stripe_emulator.subscriptions.schedules import OBJECT, SchedulesBackend

END_BEHAVIORS = ("cancel", "release")
_INTERVALS = ("day", "week", "month", "year")


def _start(p: Params, key: str) -> int | str | None:
    return "now" if p.raw(key) == "now" else p.timestamp(key)


def _phases(p: Params) -> list[dict[str, Any]] | None:
    specs = p.hashes("phases")
    if specs is None:
        return None
    phases = []
    for spec in specs:
        spec.only(
            "items", "start_date", "end_date", "iterations", "duration", "proration_behavior", "metadata"
        )
        items = []
        for item in spec.hashes("items") or []:
            item.only("price", "quantity", "metadata")
            items.append(
                {
                    "price": item.string("price", required=True),
                    "quantity": item.integer("quantity", minimum=0),
                    "metadata": merge_metadata({}, item),
                }
            )
        if not items:
            raise InvalidRequestError(
                "Missing required param: items.", code="parameter_missing", param=spec.name("items")
            )
        given = [key for key in ("end_date", "iterations", "duration") if spec.has(key)]
        if len(given) > 1:
            raise InvalidRequestError(
                f"You may only specify one of these parameters: {', '.join(given)}.",
                param=spec.name(given[1]),
            )
        duration = spec.sub("duration")
        if duration is not None:
            duration.only("interval", "interval_count")
        phases.append(
            {
                "items": items,
                "start_date": _start(spec, "start_date"),
                "end_date": spec.timestamp("end_date"),
                "iterations": spec.integer("iterations", minimum=1),
                "duration": {
                    "interval": duration.enum("interval", _INTERVALS, required=True),
                    "interval_count": duration.integer("interval_count", minimum=1) or 1,
                }
                if duration is not None
                else None,
                "proration_behavior": spec.enum("proration_behavior", PRORATION_BEHAVIORS),
                "metadata": merge_metadata({}, spec) if spec.has("metadata") else {},
            }
        )
    return phases


def schedule_create(req: Request) -> Response:
    p = req.params
    p.only(
        "customer",
        "from_subscription",
        "phases",
        "start_date",
        "end_behavior",
        "metadata",
        "default_settings",
    )
    backend = req.backend(SchedulesBackend)
    source = p.string("from_subscription")
    if source is not None:
        others = [
            k for k in ("customer", "phases", "start_date", "end_behavior", "default_settings") if p.has(k)
        ]
        if others:
            # Stripe: "When using this parameter, other parameters (such as phase values) cannot be set."
            raise InvalidRequestError(
                f"You cannot set `{others[0]}` if `from_subscription` is set.", param=others[0]
            )
        return req.respond(backend.schedule_from_subscription(source))
    settings = p.sub("default_settings")
    if settings is not None:
        settings.only("default_payment_method")
    phases = _phases(p)
    if not phases:
        raise InvalidRequestError("Missing required param: phases.", code="parameter_missing", param="phases")
    if phases[0]["start_date"] is not None:
        raise InvalidRequestError(
            "You cannot set `phases[0][start_date]` when creating a schedule: use `start_date`.",
            param="phases[0][start_date]",
        )
    schedule = backend.schedule_create(
        customer=p.string("customer", required=True) or "",
        phases=phases,
        start_date=_start(p, "start_date"),
        end_behavior=p.enum("end_behavior", END_BEHAVIORS) or "release",
        metadata=merge_metadata({}, p),
        default_payment_method=settings.string("default_payment_method") if settings is not None else None,
    )
    return req.respond(schedule)


def schedule_retrieve(req: Request) -> Response:
    req.params.only()
    return req.respond(req.backend(SchedulesBackend).schedule_require(req.path_params["id"]))


def schedule_update(req: Request) -> Response:
    p = req.params
    p.only("phases", "end_behavior", "proration_behavior", "metadata")
    backend = req.backend(SchedulesBackend)
    schedule = backend.schedule_require(req.path_params["id"])
    schedule = backend.schedule_update(
        schedule["id"],
        phases=_phases(p),
        end_behavior=p.enum("end_behavior", END_BEHAVIORS),
        proration_behavior=p.enum("proration_behavior", PRORATION_BEHAVIORS),
        metadata=merge_metadata(schedule["metadata"], p) if p.has("metadata") else None,
    )
    return req.respond(schedule)


def schedule_list(req: Request) -> Response:
    p = req.params
    p.only("customer", "released_at", "scheduled", "limit", "starting_after", "ending_before", "created")
    schedules = req.backend(SchedulesBackend).schedule_list(
        customer=p.string("customer"), scheduled=p.boolean("scheduled")
    )
    return req.respond_list(schedules, url="/v1/subscription_schedules", object_type=OBJECT)


def schedule_release(req: Request) -> Response:
    p = req.params
    p.only("preserve_cancel_date")
    return req.respond(req.backend(SchedulesBackend).schedule_release(req.path_params["id"]))


def schedule_cancel(req: Request) -> Response:
    p = req.params
    p.only("invoice_now", "prorate")
    schedule = req.backend(SchedulesBackend).schedule_cancel(
        req.path_params["id"],
        invoice_now=p.boolean("invoice_now") is not False,
        prorate=p.boolean("prorate") is not False,
    )
    return req.respond(schedule)
