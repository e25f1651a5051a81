"""`python -m bench scale` (bench.scale) runs to its end at tiny sizes and reports every operation of issue #30's
point 6 at both sizes (two databases, alternating rounds), with each round's ratio, the median and the verdict. Its timings are not asserted (timing in tests is
forbidden): the figures come from the benchmark's own runs (docs/performance.md)."""

import errno
import os
import random
import socket

import pytest

from bench import scale

# Tiny sizes: every operation still crosses its small and its large phase.
SIZES = {
    "BENCH_SCALE_CHECK_CUSTOMERS": "5,40",
    "BENCH_SCALE_CHECK_EVENTS": "5,60",
    "BENCH_SCALE_INGEST_ROWS": "0,3000",
    "BENCH_SCALE_RECONCILE": "2,3",
    "BENCH_SCALE_ADMIN_ROWS": "0,300",
    "BENCH_SCALE_REVENUE": "5,30",
    "BENCH_SCALE_REQUESTS_CHECK": "16",
    "BENCH_SCALE_REQUESTS_INGEST": "1",
    "BENCH_SCALE_REQUESTS_RECONCILE": "1",
    "BENCH_SCALE_REQUESTS_PAGE": "16",
    "BENCH_SCALE_REQUESTS_ADMIN": "3",
    "BENCH_SCALE_REQUESTS_METRICS": "16",
    "BENCH_SCALE_REQUESTS_DASHBOARD": "3",
    "BENCH_SCALE_ROUNDS": "2",
}


def _ports() -> int | None:
    """The first of two free ports of `TOLLGATE_TEST_PORTS` when set (runs sharing a machine keep to their own
    ranges; the benchmark's two servers take it and the next); else None, and each server's port is the kernel's."""
    ports = os.environ.get("TOLLGATE_TEST_PORTS", "")
    if not ports:
        return None
    first, last = (int(bound) for bound in ports.split("-"))
    candidates = list(range(first, last))
    random.shuffle(candidates)
    for port in candidates:
        with socket.socket() as one, socket.socket() as two:
            try:
                one.bind(("127.0.0.1", port))
                two.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no two free ports in TOLLGATE_TEST_PORTS={ports}")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_scale_benchmark_reports_every_operation_at_both_sizes(monkeypatch, capsys):
    monkeypatch.delenv("BENCH_SCALE", raising=False)
    for name, value in SIZES.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("BENCH_SCALE_PORT", raising=False)
    if (port := _ports()) is not None:
        monkeypatch.setenv("BENCH_SCALE_PORT", str(port))

    from django.db import connection

    base = connection.settings_dict["NAME"]

    results = scale.run()

    assert [result.operation for result in results] == list(scale.OPERATIONS)
    sizes = {result.operation: (result.small_size, result.large_size) for result in results}
    assert sizes == {
        "check": ("5 customers, 5 events", "40 customers, 60 events"),
        "ingest": ("0 rows", "3,000 rows"),
        "reconcile": ("2 customers", "3 customers"),
        # The project's 40 customers, the two of the check's plans and the consume scenario's pair (uncapped, and
        # capped by an account cap): 44, so the last full page follows the 24th.
        "page": ("first page", "after customer 24"),
        "admin": sizes["admin"],  # every project's customers, at least 300 on the large side (checked below)
        "metrics": ("5 subscriptions", "30 subscriptions"),
        "dashboard": ("5 subscriptions", "30 subscriptions"),
    }
    assert int(sizes["admin"][1].removesuffix(" rows").replace(",", "")) >= 300
    for result in results:
        assert len(result.rates) == len(result.loads) == 2  # two rounds, both sides in each
        assert all(small > 0 and large > 0 for small, large in result.rates)
        assert result.small_p99_ms > 0
        assert result.large_p99_ms > 0
    printed = capsys.readouterr().out.splitlines()
    for result in results:
        (line,) = [line for line in printed if line.startswith(scale.LABELS[result.operation])]
        assert " ".join(f"{ratio:.2f}" for ratio in result.ratios) in line
        assert f"{result.throughput:.2f}×" in line
        assert f"{result.p99:.2f}×" in line
        assert ("PASS" if result.passed else "FAIL") in line
    # The two sides' databases are gone, and this test's connection is back on its own database.
    assert connection.settings_dict["NAME"] == base
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT datname FROM pg_database WHERE datname IN (%s, %s)", [f"{base}_small", f"{base}_large"]
        )
        assert cursor.fetchall() == []


def test_a_server_on_a_taken_port_fails_by_name_and_nothing_is_started(tmp_path):
    """The benchmarks' gunicorn binds its socket before starting the server: a port another process listens on is
    refused at once (before, the server exited on it and the benchmark measured the other listener, or nothing)."""
    from bench.entitlements import gunicorn

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = int(taken.getsockname()[1])
        log = tmp_path / "server.log"
        with (
            pytest.raises(OSError, match="in use") as refused,
            gunicorn("redis://127.0.0.1:6379/15", output=log, port=port),
        ):
            pytest.fail("a server was yielded on a taken port")
    assert refused.value.errno == errno.EADDRINUSE
    assert not log.exists()
