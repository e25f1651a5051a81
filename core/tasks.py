"""Periodic housekeeping tasks."""

from celery import shared_task

from core.idempotency import idempotency_keys_purge as _purge


@shared_task(acks_late=True)
def idempotency_keys_purge() -> int:
    return _purge()


@shared_task
def ping() -> str:
    """Does nothing: the baseline of worker throughput benchmarks and a broker round-trip probe for operators."""
    return "pong"
