"""The one lock the roles sync and the location refresh take: only its holder releases it."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from django.core.cache import cache
from django.test import override_settings

from portal.locks import lock_held

KEY = "atrium:test:lock"
LOCAL = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


@pytest.fixture(params=["configured", "in memory"])
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """The cache the settings configure (Redis when REDIS_URL is set), and dev's in-memory one."""
    if request.param == "configured":
        cache.delete(KEY)
        yield request.param
        cache.delete(KEY)
    else:
        with override_settings(CACHES=LOCAL):
            yield request.param


def test_a_second_holder_waits_for_the_first_to_let_go(backend: str) -> None:
    with lock_held(KEY, seconds=60) as first:
        with lock_held(KEY, seconds=60) as second:
            assert (first, second) == (True, False)
        assert cache.get(KEY) is not None  # the refused one released nothing
    with lock_held(KEY, seconds=60) as third:
        assert third


def test_a_lock_that_timed_out_and_was_taken_is_not_released_by_its_first_holder(
    backend: str,
) -> None:
    with lock_held(KEY, seconds=1) as first:
        assert first
        time.sleep(1.2)  # the first holder outlives its lock: another worker takes it
        assert cache.add(KEY, "another worker", timeout=60)

    assert cache.get(KEY) == "another worker"
    with lock_held(KEY, seconds=60) as again:
        assert not again
