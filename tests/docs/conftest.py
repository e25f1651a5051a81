"""The demo as `make demo` seeds it: demo_setup with `--wait-for-stripe` against the test's emulator, served over
HTTP as the demo's is (demo_setup probes it there, and its checkout pages are real URLs)."""

import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from django.core.management import call_command


@pytest.fixture
def seed_demo(db, emulator_over_http, tmp_path) -> Callable[..., dict[str, Any]]:
    """`seed_demo(base_url)` runs `make demo`'s seeding and answers its --json (keys, admin login, hosts)."""

    def run(base_url: str = "http://127.0.0.1:8000") -> dict[str, Any]:
        out = io.StringIO()
        call_command(
            "demo_setup",
            "--base-url",
            base_url,
            "--wait-for-stripe",
            "--json",
            "--credentials",
            str(tmp_path / "demo-credentials.json"),
            stdout=out,
        )
        return dict(json.loads(out.getvalue().strip().splitlines()[-1]))

    return run
