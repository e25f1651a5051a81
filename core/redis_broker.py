"""Celery's Redis transport, reusing one redis-py client per connection pool.

Kombu's channel builds a new `redis.Redis` for every synchronous command: a worker builds two per task (the
unacked entry when the message arrives, its removal on the ack) and every `.delay()` one more. Building a
`redis.Redis` costs more CPU than the round trip itself (0.43 ms against 0.24 ms on a 2-core test machine, most of
it its response-callback table): ~0.9 ms per task in the worker. A `redis.Redis` is safe to share between threads (each
command takes a connection from the pool), so one per pool is enough; a channel that drops its pool (after a
fork, on a lost connection) gets a new one with the new pool. `settings.CELERY_BROKER_TRANSPORT` names this
transport whenever the broker is Redis."""

from typing import Any

from kombu.transport import redis


class Channel(redis.Channel):
    _shared_client: tuple[Any, Any] | None = None

    def _create_client(self, asynchronous: bool = False) -> Any:
        if asynchronous:  # the consumer's own client: kombu already keeps one (`Channel.client`)
            return super()._create_client(asynchronous=True)  # type: ignore[misc]  # (not in kombu's stubs)
        pool = self.pool
        shared = self._shared_client
        if shared is None or shared[0] is not pool:
            shared = self._shared_client = (pool, super()._create_client())  # type: ignore[misc]
        return shared[1]


class Transport(redis.Transport):
    Channel = Channel
