"""One holder at a time: a lock in the cache that only the holder who took it releases."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache

# Deletes the key only while it still holds this holder's token, in one step on the server: a
# holder whose lock timed out and was taken by another must not release the other's.
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""

# Outside Redis the cache is this process's memory (dev), so a process-wide lock makes the
# compare and the delete one step for everyone who can see the key.
_local_release = threading.Lock()


@contextmanager
def lock_held(key: str, *, seconds: int) -> Iterator[bool]:
    """Take the lock `key` for at most `seconds` (a holder that dies lets it go then); whether
    it was taken. Released on leaving, unless it timed out and someone else holds it now."""
    # An int, because Django's Redis cache stores ints as their digits (other values pickled),
    # so the release script can compare it with what the key holds.
    token = secrets.randbits(62)
    taken = caches["default"].add(key, token, timeout=seconds)
    try:
        yield taken
    finally:
        if taken:
            _release(key, token)


def _release(key: str, token: int) -> None:
    cache = caches["default"]
    if isinstance(cache, RedisCache):
        stored_key = cache.make_and_validate_key(key)
        # Django's cache API has no compare-and-delete, so the script goes to its Redis client.
        client = cache._cache.get_client(stored_key, write=True)  # type: ignore[attr-defined]
        client.eval(_RELEASE, 1, stored_key, str(token))
        return
    with _local_release:
        if cache.get(key) == token:
            cache.delete(key)
