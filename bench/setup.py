"""Shared set-up of the benchmarks: Django on DATABASE_URL / REDIS_URL when set, else a throwaway SQLite file."""

import compileall
import os
import re
import socket
import sys
import sysconfig
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def django_setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{ROOT / 'var' / 'bench.sqlite3'}")
    (ROOT / "var").mkdir(exist_ok=True)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def subscribers_seed(project: Any, count: int, price: Any) -> list[Any]:
    """`count` customers of `project` (`user-0` …), each with an active subscription to `price` (its product),
    written in bulk; the subscriptions, in the customers' order."""
    from billing.models import Subscription
    from core.ids import new_ids
    from customers.models import Customer

    customers = [
        Customer(id=pk, project=project, external_id=f"user-{n}")
        for n, pk in enumerate(new_ids("cust", count))
    ]
    Customer.objects.bulk_create(customers, batch_size=5000)
    subscriptions = [
        Subscription(
            id=pk,
            project=project,
            customer=customer,
            price=price,
            product=price.product,
            status=Subscription.Status.ACTIVE,
            stripe_subscription_id=f"sub_{project.slug}_{n}",
        )
        for n, (pk, customer) in enumerate(zip(new_ids("subs", count), customers, strict=True))
    ]
    Subscription.objects.bulk_create(subscriptions, batch_size=5000)
    return subscriptions


def bytecode_compile() -> None:
    """Compiles to bytecode what the benchmark's servers import and is not compiled yet (this tree, the venv's
    packages), as the image does at build (Dockerfile) and pip at install: a process otherwise compiles each module
    it imports from source when bytecode is not written (PYTHONDONTWRITEBYTECODE) or not valid (a venv copied
    without its files' times), and a module first imported during a measurement adds its compile to the figures."""
    skip = re.compile(r"[/\\](\.venv|var|node_modules|clients|\.git)[/\\]")
    compileall.compile_dir(ROOT, quiet=1, rx=skip, workers=0)
    compileall.compile_dir(sysconfig.get_paths()["purelib"], quiet=1, workers=0)


def report(title: str, rows: list[tuple[str, float, str]], baseline: float) -> None:
    print(f"\n{title}")
    print(f"{'case':<52}{'value':>12}  {'unit':<10}{'× baseline':>11}")
    for name, value, unit in rows:
        print(f"{name:<52}{value:>12.1f}  {unit:<10}{value / baseline:>11.2f}")


def call_times(call: Callable[[], object], *, rounds: int, calls: int) -> list[float]:
    """Microseconds of each of `rounds` × `calls` calls, after one warm-up call."""
    call()
    times = []
    for _ in range(rounds * calls):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1e6)
    return times


def p99(times: list[float]) -> float:
    return sorted(times)[int(len(times) * 0.99) - 1]


def free_port() -> int:
    """A TCP port on the loopback nobody listens on right now (for a server a benchmark starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
