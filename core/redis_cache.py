"""The shared cache's backend: Django's Redis backend, reusing one redis-py client per connection pool.

Django's client builds a new `redis.Redis` on every cache call, which costs more CPU than the round trip itself
(its response-callback table alone is ~170 entries): on the Stripe intake, where the queued mark is one `add`, it
was about a third of the request. A `redis.Redis` is safe to share between threads (each command takes a
connection from the pool) and its pool notices a fork, so one per pool and process is enough."""

from typing import Any

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient as DjangoRedisCacheClient


class RedisCacheClient(DjangoRedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        index = self._get_connection_pool_index(write)  # type: ignore[attr-defined]  # (not in the stubs)
        client = self._clients.get(index)
        if client is None:
            client = self._clients.setdefault(index, super().get_client(key, write=write))
        return client


class RedisCache(DjangoRedisCache):
    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient
