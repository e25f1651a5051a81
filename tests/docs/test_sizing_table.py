"""docs/operations.md's "Sizing" table runs what docker-compose.yml runs: a row per worker service with that
service's queues and pool, web with compose's default gunicorn workers, and beat leading with a standby."""

import re
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.test_compose_sequence import COMPOSE_FILE, WORKERS

ROOT = Path(__file__).resolve().parents[2]
SERVICES: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())["services"]


def _rows() -> dict[str, list[str]]:
    """The table's rows by their first cell: [what to run, one host, two hosts, many hosts]."""
    operations = (ROOT / "docs/operations.md").read_text()
    section = operations.split("\n## Sizing\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 4 and not set(cells[0]) <= {"-"}:
            rows[cells[0]] = cells
    return rows


def test_each_worker_service_has_a_row_with_its_queues_and_pool() -> None:
    rows = _rows()
    for name in WORKERS:
        argv = SERVICES[name]["command"][2].split()
        row = next((cells for first, cells in rows.items() if first.startswith(f"`{name}`:")), None)
        assert row, f"no row for {name}"
        assert f"-Q {argv[argv.index('-Q') + 1]}" in row[0]
        if "--concurrency" in argv:
            assert f"--concurrency {argv[argv.index('--concurrency') + 1]}" in row[0]
        else:
            assert "no `--concurrency`" in row[0]
    assert len([first for first in rows if first.startswith("`worker")]) == len(WORKERS)


def test_web_and_beat_are_run_as_compose_and_the_scheduled_work_section_say() -> None:
    rows = _rows()
    web = next(cells for first, cells in rows.items() if first.startswith("web:"))
    workers = re.search(r"--workers \$\{WEB_CONCURRENCY:-(\d+)\}", " ".join(SERVICES["web"]["command"]))
    assert workers
    assert f"--workers {workers.group(1)}" in web[0]
    beat = rows["beat"]
    assert "one leads, one stands by" in beat[2]
    assert "one leads, one stands by" in beat[3]
    # No cell asks for arithmetic: no "×", "per CPU plus", "pool plus".
    assert not [cell for cells in rows.values() for cell in cells if re.search(r"×|\bplus\b|\bsum\b", cell)]
