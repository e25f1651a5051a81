"""Slots of a host (core.host_slots), with real processes: never more holders than slots, waiters get a slot as
one frees, and a holder that is killed frees its slot (the kernel drops its lock)."""

import multiprocessing
import os
import signal
import time

import pytest

from core.host_slots import host_slot

fork = multiprocessing.get_context("fork")


def _hold(
    kind: str, slots: int, seconds: float, times: "multiprocessing.Queue[tuple[int, float, float]]"
) -> None:
    with host_slot(kind, slots):
        started = time.monotonic()
        time.sleep(seconds)
        times.put((os.getpid(), started, time.monotonic()))


def _most_at_once(intervals: list[tuple[float, float]]) -> int:
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    most = current = 0
    for _, step in edges:
        current += step
        most = max(most, current)
    return most


@pytest.fixture
def slots_dir(settings, tmp_path):
    settings.HOST_SLOTS_DIR = str(tmp_path / "slots")
    return tmp_path / "slots"


def test_four_processes_on_two_slots_run_two_at_a_time(slots_dir):
    times = fork.Queue()
    processes = [fork.Process(target=_hold, args=("events", 2, 0.3, times)) for _ in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=10)
    intervals = [times.get(timeout=1)[1:] for _ in processes]

    assert [process.exitcode for process in processes] == [0, 0, 0, 0]
    assert _most_at_once(intervals) == 2
    # At least two rounds of 0.3 s (the limit held), and fewer than four: the slots were used side by side (a
    # waiter sleeps on its own slot, so with an unlucky spread of pids one round more than two is possible).
    span = max(end for _, end in intervals) - min(start for start, _ in intervals)
    assert 0.6 <= span < 1.2
    assert sorted(path.name for path in slots_dir.iterdir()) == ["events.0", "events.1"]


def test_a_killed_holder_frees_its_slot_at_once(slots_dir):
    times = fork.Queue()
    holder = fork.Process(target=_hold, args=("events", 1, 60, times))
    holder.start()
    deadline = time.monotonic() + 5
    while not (slots_dir / "events.0").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # it holds the only slot
    waiter = fork.Process(target=_hold, args=("events", 1, 0, times))
    waiter.start()
    waiter.join(timeout=0.5)
    assert waiter.exitcode is None  # waiting for the slot

    os.kill(holder.pid, signal.SIGKILL)  # no cleanup: as the OOM killer does it
    holder.join(timeout=5)
    waiter.join(timeout=5)

    assert (holder.exitcode, waiter.exitcode) == (-signal.SIGKILL, 0)
    assert times.get(timeout=1)[0] == waiter.pid


def test_no_limit_takes_no_slot(slots_dir):
    with host_slot("events", 0):
        pass
    assert not slots_dir.exists()
