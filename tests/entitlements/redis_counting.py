"""A redis-py connection that counts round trips (one per packed send: a pipeline or an MGET is one), for the
tests that bound the Redis work of a warm check. Installed through the cache's OPTIONS: django-redis keeps one
pool per URL for the whole process, so the counting cache names a connection factory whose pools are its own."""

from typing import Any

import redis
from django_redis.pool import ConnectionFactory

sent = [0]


class CountingConnection(redis.Connection):
    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        sent[0] += 1
        super().send_packed_command(command, check_health)


_pools: dict[str, Any] = {}


class CountingConnectionFactory(ConnectionFactory):
    def get_or_create_connection_pool(self, params: dict[str, Any]) -> Any:
        if params["url"] not in _pools:
            _pools[params["url"]] = self.get_connection_pool(params)
        return _pools[params["url"]]
