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
