"""`make bench`: every benchmark, each reported as a ratio to a baseline measured in the same run.
`python -m bench entitlements webhooks` runs only those named.

Uses DATABASE_URL / REDIS_URL when set, else a throwaway SQLite file under var/.
"""

import sys

from bench.setup import django_setup

django_setup()

from bench import (  # noqa: E402  (Django must be set up first)
    auth,
    burst,
    client_latency,
    deliveries,
    entitlements,
    fairness,
    leases,
    local_checks,
    metrics,
    month_close,
    pages,
    rerating,
    scale,
    usage_dimensions,
    usage_ingest,
    webhooks,
)

BENCHMARKS = {
    "auth": auth,
    "deliveries": deliveries,
    "webhooks": webhooks,
    "entitlements": entitlements,
    "usage_ingest": usage_ingest,
    "usage_dimensions": usage_dimensions,
    "local_checks": local_checks,
    "leases": leases,
    "pages": pages,
    "client_latency": client_latency,
    "metrics": metrics,
    "month_close": month_close,
    "rerating": rerating,
    "burst": burst,
    "scale": scale,
    "fairness": fairness,
}

if __name__ == "__main__":
    names = sys.argv[1:] or list(BENCHMARKS)
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        sys.exit(f"Unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}.")
    for name in names:
        BENCHMARKS[name].run()
