"""The correlation id across the broker: a task queued while a request is handled carries that request's id in a
message header, and every log line the task writes (Celery's own included) shows it as `request_id`. A task queued
by beat or by another task without one logs under `task_<task id>`.

Connected by `config/celery.py`; Celery signals, so it covers every task without touching them."""

from typing import Any

from celery.signals import before_task_publish, task_postrun, task_prerun

from core import context

HEADER = "tollgate_request_id"
_tokens: dict[str, Any] = {}


@before_task_publish.connect
def _carry_request_id(headers: dict[str, Any] | None = None, **_: Any) -> None:
    request_id = context.request_id.get()
    if headers is not None and request_id != "-":
        headers.setdefault(HEADER, request_id)


@task_prerun.connect
def _enter(task_id: str = "", task: Any = None, **_: Any) -> None:
    request = getattr(task, "request", None)
    carried = getattr(request, HEADER, None) or (getattr(request, "headers", None) or {}).get(HEADER)
    current = context.request_id.get()  # an eager task runs inside the request that queued it
    _tokens[task_id] = context.request_id.set(
        str(carried or (current if current != "-" else f"task_{task_id}"))
    )


@task_postrun.connect
def _leave(task_id: str = "", **_: Any) -> None:
    token = _tokens.pop(task_id, None)
    if token is not None:
        context.request_id.reset(token)
