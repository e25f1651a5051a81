"""Usage that carries its dimensions (issue #54): `POST /usage/batch` of 1,000 events that each give a model and
its tokens — priced by the project's cost table in force at the event's time and turned into units by the
feature's formula (cost × markup) — against a plain batch of 1,000 events that give their quantity, on the same
server (gunicorn, PostgreSQL, Redis), alternated plain, dimensions, plain, dimensions … so a machine that speeds up
or slows down moves both sides alike. Each round's ratio and their median are printed; the issue asks the batch
with dimensions ≥ 0.80× the plain batch's rate.

Needs DATABASE_URL=postgres://… and Redis (BENCH_ENTITLEMENTS_REDIS_URL, default redis://127.0.0.1:6379/11,
flushed). `python -m bench usage_dimensions`.
"""

import asyncio
import json
import os
import statistics
import time
from typing import Any

from bench.entitlements import BATCH_SIZE, BATCHES, _raw, _request, _setup, gunicorn

MODELS = ("gpt-4o", "gpt-4o-mini")  # both in the demo's cost table, which the bench uses as it is


def _events(tag: str, b: int, dimensions: bool) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for i in range(BATCH_SIZE):
        event: dict[str, Any] = {
            "id": f"{tag}-{b}-{i}",
            "customer": f"user-{i % 50}",
            "properties": {"path": "/v1/things"},
        }
        if dimensions:
            event.update(
                feature="assistant",
                model=MODELS[i % 2],
                dimensions={"input_tokens": 1000 + i, "cached_tokens": 200, "output_tokens": 300 + i % 7},
            )
        else:
            event.update(feature="api_calls", quantity=1)
        events.append(event)
    return events


async def _batch(port: int, secret: str, events: list[dict[str, Any]]) -> float:
    raw = _raw("POST", "/api/v1/usage/batch", secret, json.dumps({"events": events}).encode())
    started = time.perf_counter()
    status, body = await _request(port, raw)
    elapsed = time.perf_counter() - started
    assert status == 200, body
    assert json.loads(body) == {"accepted": len(events), "duplicates": 0}, body
    return elapsed


def _prepare(project: Any) -> None:
    """The AI feature (units = cost × 1.5, one per 1,000 micro-dollars) on the free plan, and the cost table."""
    from backoffice.management.commands.demo_setup import DEMO_COST_TABLE
    from catalog.models import Feature, Product, ProductFeature
    from core.actors import Actor
    from costs.services.cost_tables import cost_table_create

    assistant = Feature.objects.create(
        project=project,
        key="assistant",
        name="Assistant",
        type="metered",
        usage_formula={"type": "cost", "markup": "1.5", "unit_micros": 1000},
    )
    ProductFeature.objects.create(
        product=Product.objects.get(project=project, key="free"), feature=assistant, value=0
    )
    cost_table_create(project=project, actor=Actor.system("bench"), currency="usd", models=DEMO_COST_TABLE)


def run() -> None:
    import redis
    from django.db import connection

    if connection.vendor != "postgresql":
        print("\nUsage with dimensions benchmark skipped: it needs DATABASE_URL=postgres://… (and Redis).")
        return
    redis_url = os.environ.get("BENCH_ENTITLEMENTS_REDIS_URL", "redis://127.0.0.1:6379/11")
    redis.Redis.from_url(redis_url).flushdb()
    data = _setup()
    secret, project = data["secret"], data["project"]
    _prepare(project)
    rounds: list[tuple[float, float]] = []
    with gunicorn(redis_url) as port:
        for warm in range(2):  # customers made, snapshots cached, both paths' code warm
            asyncio.run(_batch(port, secret, _events(f"warm-plain-{warm}", 0, False)[:100]))
            asyncio.run(_batch(port, secret, _events(f"warm-dims-{warm}", 0, True)[:100]))
        for b in range(BATCHES):
            plain = asyncio.run(_batch(port, secret, _events("plain", b, False)))
            dims = asyncio.run(_batch(port, secret, _events("dims", b, True)))
            rounds.append((plain, dims))
    connection.close()
    ratios = [plain / dims for plain, dims in rounds]
    plain_rate = BATCH_SIZE / statistics.median(p for p, _ in rounds)
    dims_rate = BATCH_SIZE / statistics.median(d for _, d in rounds)
    print(
        f"\nUsage with dimensions, gunicorn + PostgreSQL + Redis; {BATCHES} rounds of a plain batch of "
        f"{BATCH_SIZE:,} events then one of {BATCH_SIZE:,} events giving a model and tokens (priced by the cost "
        f"table, units by the formula); load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"plain {plain_rate:.0f} events/s, with dimensions {dims_rate:.0f} events/s (medians); dimensions / plain "
        f"per round {' '.join(f'{r:.2f}' for r in ratios)}, median {statistics.median(ratios):.2f}× (asks ≥ 0.80×)"
    )
