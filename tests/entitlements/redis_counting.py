"""A redis-py connection that counts round trips (one per packed send: a pipeline or an MGET is one), for the
tests that bound the Redis work of a warm check. Installed through the cache's OPTIONS, like any option."""

from typing import Any

import redis

sent = [0]


class CountingConnection(redis.Connection):
    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        sent[0] += 1
        super().send_packed_command(command, check_health)
