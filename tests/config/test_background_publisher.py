"""config.celery.publisher: the Stripe intake's publishes run on a thread of their own, in the context of the
request that handed them over, and a process that exits first sends what it was handed (within
EXIT_FLUSH_SECONDS) instead of leaving it to beat's sweep."""

import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from config.celery import publisher
from core import context


def test_a_job_runs_in_the_context_of_the_caller_that_handed_it_over() -> None:
    seen: list[tuple[str, str]] = []
    token = context.request_id.set("req-handed-over")
    try:
        assert publisher.submit(lambda: seen.append((context.request_id.get(), context.project_slug.get())))
    finally:
        context.request_id.reset(token)
    assert publisher.idle(timeout=10)
    assert seen == [("req-handed-over", "-")]
    assert context.request_id.get() == "-"  # nothing leaked back into this thread's context


def test_a_process_exiting_sends_what_it_handed_over_first(tmp_path: Path) -> None:
    done = tmp_path / "published"
    script = textwrap.dedent(
        f"""
        import os, time
        os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
        import django
        django.setup()
        from config.celery import publisher
        publisher.submit(lambda: (time.sleep(0.5), open({str(done)!r}, "w").write("sent")))
        """
    )
    subprocess.run(
        [sys.executable, "-c", script], check=True, timeout=60, cwd=Path(__file__).resolve().parents[2]
    )
    assert done.read_text() == "sent"


def test_a_bell_handed_over_while_one_is_waiting_goes_with_it_and_one_handed_over_after_it_started_is_sent() -> (
    None
):
    """`coalesce`: the intake's bells. While one waits for the thread, the next ones are not queued (the one waiting
    is sent after what they stored: it wakes a worker that finds it); once it has started, the next is queued."""
    started, release = threading.Event(), threading.Event()
    rung: list[str] = []

    def busy() -> None:  # the thread holds a publish (a slow broker)
        started.set()
        release.wait(10)

    assert publisher.submit(busy)
    assert started.wait(10)
    assert publisher.submit(lambda: rung.append("first"), coalesce="test-bell")
    assert publisher.submit(lambda: rung.append("second"), coalesce="test-bell")  # goes with the first
    assert publisher.submit(lambda: rung.append("other"), coalesce="another-bell")
    release.set()
    assert publisher.idle(timeout=10)
    assert rung == ["first", "other"]

    gate = threading.Event()
    assert publisher.submit(lambda: (rung.append("third"), gate.wait(10)), coalesce="test-bell")
    assert wait_until(lambda: "third" in rung)
    assert publisher.submit(lambda: rung.append("fourth"), coalesce="test-bell")  # the third has started
    gate.set()
    assert publisher.idle(timeout=10)
    assert rung == ["first", "other", "third", "fourth"]


def wait_until(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False
