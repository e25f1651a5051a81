"""Slots of one host: at most N processes of this host do a kind of work at once, whatever the number of
processes that could.

Applying Stripe's events is CPU-bound (Python building queries, the database a few hundred microseconds away):
running more of it at once than the host has CPUs only makes the processes preempt each other, and measured on a
2-core machine, 4 worker processes applied the same events ~10 % slower than 2, with the same database work per
event. Other tasks of the same workers (deliveries to tenants' endpoints: waiting on the network) do gain from
more processes. So the worker's pool is sized for those, and the CPU-bound work takes a slot of the host first.

A slot is an exclusive `flock` on one of N files in a directory of the host (each container has its own).
The kernel releases it when the holder closes it or dies (killed, out of memory), so a slot is never lost.
A process that finds every slot taken waits asleep in the kernel on one of them (its own, by its pid), not polling:
polling every 2 ms cost the waiting processes enough CPU that 4 worker processes stayed ~5 % slower than 2 on
the burst bench; waiting in the kernel, they were as fast (docs/performance.md). The price is that a waiter may
sleep on a slot while another one frees; under load the next task takes that one at once.
"""

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings

# The files this process opened, by path: opened once, kept open (a descriptor per slot per process). Keyed by
# the process too: a forked child must not share its parent's open file (a lock on it would be theirs together).
_opened: dict[tuple[int, str], int] = {}


def host_cpus() -> int:
    """The CPUs this process may run on (its affinity: a container's cpuset, not the whole machine's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _directory() -> Path:
    configured = getattr(settings, "HOST_SLOTS_DIR", "") or ""
    return Path(configured or Path(tempfile.gettempdir()) / "tollgate-slots")


def _descriptor(path: Path) -> int:
    key = (os.getpid(), str(path))
    descriptor = _opened.get(key)
    if descriptor is None:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(key[1], os.O_RDWR | os.O_CREAT, 0o600)
        _opened[key] = descriptor
    return descriptor


@contextmanager
def host_slot(kind: str, slots: int) -> Iterator[None]:
    """Holds one of the host's `slots` slots of `kind` for the block: the first free one, else waits (asleep in
    the kernel, not spending the CPU the slots save) for the process's own. `slots` 0 or less: no limit."""
    if slots <= 0:
        yield
        return
    directory = _directory()
    # Each process starts its round at a slot of its own, and waits there: waiters spread over the slots.
    start = os.getpid() % slots
    paths = [directory / f"{kind}.{(start + offset) % slots}" for offset in range(slots)]
    held = _take(paths)
    try:
        yield
    finally:
        fcntl.flock(held, fcntl.LOCK_UN)


def _take(paths: list[Path]) -> int:
    """The descriptor of the first free slot of `paths`, locked; if none is free, of the first, once its holder
    lets go (or dies), waiting asleep in the kernel."""
    for path in paths:
        descriptor = _descriptor(path)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue
        return descriptor
    descriptor = _descriptor(paths[0])
    fcntl.flock(descriptor, fcntl.LOCK_EX)
    return descriptor
