"""Billing meters, meter events and event summaries, wire side."""

from __future__ import annotations

from stripe_emulator.core.errors import InvalidRequestError
from stripe_emulator.core.params import Params
from stripe_emulator.core.routing import Request, Response
from stripe_emulator.meters.models import FORMULAS, WINDOWS, MetersBackend, render_meter_event


def _payload_key(p: Params, key: str, default: str, *, extra: tuple[str, ...] = ()) -> str:
    sub = p.sub(key)
    if sub is None:
        return default
    sub.only("event_payload_key", *extra)
    if "type" in extra:
        sub.enum("type", ("by_id",))
    return sub.string("event_payload_key", required=True, max_length=100) or default


def meter_create(req: Request) -> Response:
    p = req.params
    p.only(
        "display_name",
        "event_name",
        "default_aggregation",
        "customer_mapping",
        "value_settings",
        "event_time_window",
    )
    aggregation = p.sub("default_aggregation", required=True)
    assert aggregation is not None
    aggregation.only("formula")
    meter = req.backend(MetersBackend).meter_create(
        display_name=p.string("display_name", required=True, max_length=250) or "",
        event_name=p.string("event_name", required=True, max_length=100) or "",
        formula=aggregation.enum("formula", FORMULAS, required=True) or "sum",
        customer_payload_key=_payload_key(p, "customer_mapping", "stripe_customer_id", extra=("type",)),
        value_payload_key=_payload_key(p, "value_settings", "value"),
        event_time_window=p.enum("event_time_window", tuple(WINDOWS)),
    )
    return req.respond(meter)


def meter_retrieve(req: Request) -> Response:
    req.params.only()
    return req.respond(req.backend(MetersBackend).meter_require(req.path_params["id"]))


def meter_update(req: Request) -> Response:
    p = req.params
    p.only("display_name")
    meter = req.backend(MetersBackend).meter_update(
        req.path_params["id"], display_name=p.string("display_name", max_length=250)
    )
    return req.respond(meter)


def meter_deactivate(req: Request) -> Response:
    req.params.only()
    return req.respond(req.backend(MetersBackend).meter_set_active(req.path_params["id"], False))


def meter_reactivate(req: Request) -> Response:
    req.params.only()
    return req.respond(req.backend(MetersBackend).meter_set_active(req.path_params["id"], True))


def meter_list(req: Request) -> Response:
    p = req.params
    p.only("status", "limit", "starting_after", "ending_before")
    meters = req.backend(MetersBackend).meter_list(status=p.enum("status", ("active", "inactive")))
    return req.respond_list(meters, url="/v1/billing/meters", object_type="billing.meter")


def meter_event_create(req: Request) -> Response:
    p = req.params
    p.only("event_name", "payload", "identifier", "timestamp")
    payload = p.raw("payload")
    if not isinstance(payload, dict) or not payload:
        raise InvalidRequestError(
            "Missing required param: payload.", code="parameter_missing", param="payload"
        )
    if not all(isinstance(v, str) for v in payload.values()):
        raise InvalidRequestError("Invalid payload: values must be strings.", param="payload")
    event = req.backend(MetersBackend).meter_event_create(
        event_name=p.string("event_name", required=True, max_length=100) or "",
        payload=payload,
        identifier=p.string("identifier", max_length=100),
        timestamp=p.timestamp("timestamp"),
    )
    return Response.json(render_meter_event(event))


def meter_event_summaries(req: Request) -> Response:
    p = req.params
    p.only(
        "customer",
        "start_time",
        "end_time",
        "value_grouping_window",
        "limit",
        "starting_after",
        "ending_before",
    )
    meter_id = req.path_params["id"]
    summaries = req.backend(MetersBackend).meter_event_summaries(
        meter_id,
        customer=p.string("customer", required=True) or "",
        start_time=p.timestamp("start_time", required=True) or 0,
        end_time=p.timestamp("end_time", required=True) or 0,
        window=p.enum("value_grouping_window", tuple(WINDOWS)),
    )
    limit = p.integer("limit", minimum=1, maximum=100) or 10
    after, before = p.string("starting_after"), p.string("ending_before")
    ids_ = [s["id"] for s in summaries]
    if after in ids_:
        summaries = summaries[ids_.index(after) + 1 :]
        page = summaries[:limit]
    elif before in ids_:
        summaries = summaries[: ids_.index(before)]
        page = summaries[-limit:]
    else:
        page = summaries[:limit]
    return Response.json(
        {
            "object": "list",
            "data": page,
            "has_more": len(summaries) > limit,
            "url": f"/v1/billing/meters/{meter_id}/event_summaries",
        }
    )


def meter_event_adjustment_create(req: Request) -> Response:
    p = req.params
    p.only("event_name", "type", "cancel")
    cancel = p.raw("cancel")
    if cancel is not None and not isinstance(cancel, dict):
        raise InvalidRequestError("Invalid object: cancel.", param="cancel")
    identifier = (cancel or {}).get("identifier")
    if identifier is not None and (not isinstance(identifier, str) or len(identifier) > 100):
        raise InvalidRequestError(
            "Invalid string: cancel[identifier] (at most 100 characters).", param="cancel[identifier]"
        )
    adjustment = req.backend(MetersBackend).meter_event_adjustment_create(
        event_name=p.string("event_name", required=True, max_length=100) or "",
        type=p.string("type", required=True) or "",
        identifier=identifier,
    )
    return Response.json(adjustment)
