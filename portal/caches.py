"""Django's Redis cache, with one Redis client per connection pool instead of one per call.

Django's backend builds a `redis.Redis` for every operation, and building one sets up its
table of response callbacks: about a tenth of a millisecond, several times a request (the
rate limits, the viewer, sessions' neighbours). The client holds no state of its own besides
its pool, so one is kept per pool and reused; connections are still the pool's.
"""

from __future__ import annotations

from typing import Any

from django.core.cache.backends import redis as django_redis


class _ReusedClients(django_redis.RedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        # The pool helpers and `_client` are Django's (RedisCacheClient), absent from its stubs.
        index = self._get_connection_pool_index(write)  # type: ignore[attr-defined]
        client = self._clients.get(index)
        if client is None:
            pool = self._get_connection_pool(write)  # type: ignore[attr-defined]
            client = self._clients[index] = self._client(connection_pool=pool)  # type: ignore[attr-defined]
        return client


class RedisCache(django_redis.RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = _ReusedClients
