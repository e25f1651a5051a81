"""The shared cache's backend reuses one redis-py client per connection pool (Django's builds one per call)."""

from core.redis_cache import RedisCache


def test_every_cache_call_uses_the_same_client_of_its_pool():
    backend = RedisCache("redis://127.0.0.1:6379/0", {"OPTIONS": {"socket_timeout": 1}})
    client = backend._cache.get_client(write=True)
    assert backend._cache.get_client("any-key", write=True) is client
    assert backend._cache.get_client() is client  # one server: reads and writes share its pool
    assert client.connection_pool.connection_kwargs["socket_timeout"] == 1  # the OPTIONS still reach the pool
