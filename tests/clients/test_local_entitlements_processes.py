"""Several client processes answering from their own `LocalEntitlements` at once: a grant and a revocation reach
every one of them through the change feed, also after one of them was killed (kill -9) and while one is
restarted; each process starts from a signed snapshot of its own."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]


class Checker:
    """One `tests.clients.local_checker` process and the answers it printed, with when."""

    def __init__(self, url: str, key: str, customer: str, feature: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.clients.local_checker", url, key, customer, feature],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'clients' / 'python'}"},
        )
        self.answers: list[tuple[str, float]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            answer, at = line.split()
            self.answers.append((answer, float(at)))

    def answered(self, answer: str, seconds: float = 10.0) -> float:
        """When this process first answered `answer` (waits for it)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for seen, at in list(self.answers):
                if seen == answer:
                    return at
            time.sleep(0.01)
        raise AssertionError(f"never answered {answer!r}: {self.answers}")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()


@pytest.fixture
def checkers(live_server, tenant_a):
    started: list[Checker] = []

    def start(count: int) -> list[Checker]:
        new = [Checker(live_server.url, tenant_a.key, "user-p", "exports") for _ in range(count)]
        started.extend(new)
        return new

    yield start
    for checker in started:
        if checker.process.poll() is None:
            checker.kill()


def test_every_process_hears_a_grant_and_a_revocation(checkers, tollgate, plans):
    running = checkers(4)
    for checker in running:
        checker.answered("True/3")
    running[0].kill()  # a process that dies takes nothing with it: the others go on as before

    before_grant = time.time()
    tollgate.entitlements.grants.create(customer="user-p", feature="exports", value=7, reason="support")
    heard = [checker.answered("True/10") - before_grant for checker in running[1:]]
    assert max(heard) < 3.0, (
        heard
    )  # ~poll_interval (0.5 s); bounded loosely here, measured in bench.local_checks

    late = checkers(1)[0]  # a process started after the grant fetches the granted state
    late.answered("True/10")

    before_revocation = time.time()
    tollgate.entitlements.revocations.create(customer="user-p", feature="exports", reason="abuse")
    server = tollgate.entitlements.check(customer="user-p", feature="exports")
    assert (server.allowed, server.limit) == (False, 0)
    heard = [checker.answered("False/0") - before_revocation for checker in [*running[1:], late]]
    assert max(heard) < 3.0, heard
    assert [answer for answer, _ in running[1].answers] == ["True/3", "True/10", "False/0"]
