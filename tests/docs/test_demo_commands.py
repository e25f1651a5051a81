"""`manage.py …` beside a running `make demo` just works, whatever ports the demo was given: `make demo` records
what the commands need (the emulator's address, the demo's credentials file) in `$(DEMO_VAR)/demo.env`, which
config.settings.local reads (development only; the environment wins). Before, a command beside a demo started
with another EMULATOR_PORT called Stripe at 127.0.0.1:12111 and failed with `provider_unavailable`.

And a reconciliation that cannot reach Stripe at all says so, with what to do, and records no run: it never
started (the nightly task, which nobody watches, still records its failed runs).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from billing.models import ReconciliationRun
from stripe_emulator.server import serve_in_thread
from stripe_gateway.client import install_http_client
from tests.docs.test_demo_concurrency import _port
from tests.docs.test_demo_server import _listening
from tests.webhooks.workers import wait_for

ROOT = Path(__file__).resolve().parents[2]


def _newcomer(work: Path) -> dict[str, str]:
    """A shell in the checkout with nothing of Tollgate's exported but the test's own database and demo directory
    (as `make demo DEMO_VAR=… DATABASE_URL=…` was given them)."""
    return {
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(work),
        "LANG": "C.UTF-8",
        "DATABASE_URL": f"sqlite:///{work / 'tollgate.sqlite3'}",
        "DEMO_VAR": str(work / "demo"),
    }


@pytest.fixture
def demo_on_other_ports(tmp_path) -> Iterator[Path]:
    """`make demo PORT=… EMULATOR_PORT=… MCP_PORT=…` on free ports of the test's, serving until the test ends."""
    port, emulator_port, mcp_port = _port(), _port(), _port()
    while len({port, emulator_port, mcp_port}) < 3:
        emulator_port, mcp_port = _port(), _port()
    env = _newcomer(tmp_path)
    log = (tmp_path / "make-demo.log").open("ab")
    demo = subprocess.Popen(
        [
            "make",
            "demo",
            f"PORT={port}",
            f"EMULATOR_PORT={emulator_port}",
            f"MCP_PORT={mcp_port}",
            f"DEMO_VAR={env['DEMO_VAR']}",
        ],
        cwd=ROOT,
        env={**env, "MAKEFLAGS": ""},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        assert wait_for(lambda: _listening(port) or demo.poll() is not None, timeout=300)
        assert demo.poll() is None, (tmp_path / "make-demo.log").read_text()
        yield tmp_path
    finally:
        os.killpg(demo.pid, signal.SIGTERM)
        demo.wait(timeout=60)
        log.close()


def test_a_command_beside_a_demo_on_other_ports_reaches_its_stripe(demo_on_other_ports):
    work = demo_on_other_ports
    result = subprocess.run(
        [sys.executable, "manage.py", "reconcile", "--project", "demo"],
        cwd=ROOT,
        env=_newcomer(work),
        capture_output=True,
        text=True,
        timeout=300,
    )
    with sqlite3.connect(work / "tollgate.sqlite3") as database:
        runs = database.execute("SELECT status, error FROM billing_reconciliationrun").fetchall()
    assert (result.returncode, result.stderr, runs) == (0, "", [("completed", "")])
    assert result.stdout.splitlines()[-1].endswith(": completed, 0 checked, 0 drift, 0 fixed.")


@pytest.mark.django_db
def test_a_reconciliation_that_cannot_reach_stripe_says_what_to_do_and_records_no_run(
    stripe_emulator, settings, tenant_a, tenant_b
):
    server = serve_in_thread(stripe_emulator)
    settings.STRIPE_API_BASE = server.url
    install_http_client(None)
    server.shutdown()  # the emulator stopped: nothing listens at its address any more
    server.server_close()
    with pytest.raises(CommandError) as refused:
        call_command("reconcile")
    assert str(refused.value) == (
        f"Stripe's API at {server.url} did not answer (provider_unavailable): nothing was reconciled and no run "
        "recorded. Start Stripe's emulator (`make demo` starts one), or set STRIPE_API_BASE to where it runs."
    )
    assert ReconciliationRun.objects.count() == 0
