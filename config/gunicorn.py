"""gunicorn's hooks for web (`gunicorn config.wsgi --config python:config.gunicorn …`; the command line sets the rest).

With PROMETHEUS_MULTIPROC_DIR set, each worker keeps its Prometheus counts in files there and `/metrics` sums them
(core/prometheus.py). The directory is emptied when gunicorn starts (a restarted container keeps its files: counts of
processes long gone would be added again) and a dead worker's live gauges are dropped.
"""

import os
import shutil
from pathlib import Path
from typing import Any


def _multiproc_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def on_starting(server: Any) -> None:
    directory = _multiproc_dir()
    if directory:
        shutil.rmtree(directory, ignore_errors=True)
        Path(directory).mkdir(parents=True)


def child_exit(server: Any, worker: Any) -> None:
    if _multiproc_dir():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
