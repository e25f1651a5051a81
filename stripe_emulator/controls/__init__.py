"""Test controls under ``/_emulator`` (no API key: they act on the whole emulator, like a test fixture).

``POST /_emulator/reset``, ``POST /_emulator/advance`` (``seconds=<n>``), ``GET /_emulator/clock``,
``POST /_emulator/webhooks/flush``, ``GET /_emulator/webhooks/attempts``; and ``GET /favicon.ico``, the hosted
pages' icon (browsers ask every site for it). Later phases add theirs (e.g.
``/_emulator/checkout/sessions/{id}/complete``) to their own service with ``Route(..., auth=False)`` when the
control acts on the whole emulator, or a normal authenticated route when it acts on one account's object.
"""

from dataclasses import asdict
from pathlib import Path

from stripe_emulator.core.routing import Request, Response, Route
from stripe_emulator.core.service import Service


def reset(req: Request) -> Response:
    req.emulator.reset()
    return Response.json({"object": "emulator.reset", "ok": True})


def advance(req: Request) -> Response:
    p = req.params
    p.only("seconds")
    seconds = p.integer("seconds", required=True, minimum=0) or 0
    now = req.emulator.advance(seconds)
    return Response.json({"object": "emulator.clock", "now": now, "offset": req.emulator.clock.offset})


def clock(req: Request) -> Response:
    emulator = req.emulator
    return Response.json(
        {"object": "emulator.clock", "now": emulator.clock.now(), "offset": emulator.clock.offset}
    )


def flush(req: Request) -> Response:
    attempts = req.emulator.flush_webhooks()
    return Response.json({"object": "list", "data": [asdict(a) for a in attempts]})


def attempts(req: Request) -> Response:
    return Response.json({"object": "list", "data": [asdict(a) for a in req.emulator.webhooks.attempts]})


_FAVICON = (Path(__file__).resolve().parent.parent / "core" / "favicon.ico").read_bytes()


def favicon(req: Request) -> Response:
    return Response(200, _FAVICON, {"Content-Type": "image/x-icon", "Cache-Control": "public, max-age=86400"})


SERVICE = Service(
    name="controls",
    routes=[
        Route("POST", "/_emulator/reset", reset, auth=False),
        Route("POST", "/_emulator/advance", advance, auth=False),
        Route("GET", "/_emulator/clock", clock, auth=False),
        Route("POST", "/_emulator/webhooks/flush", flush, auth=False),
        Route("GET", "/_emulator/webhooks/attempts", attempts, auth=False),
        Route("GET", "/favicon.ico", favicon, auth=False),
    ],
)
