"""Fixtures of the whole suite: a devtenant on loopback, and no rate-limit counts between tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache

from devtenant.demo import demo_tenant
from devtenant.process import DevTenantProcess


class DevTenant(DevTenantProcess):
    """The suite's devtenant, reset to the demo tenant for each test that uses it."""

    def reset(self, *, portal_base_url: str) -> None:
        """An empty tenant, then the demo tenant with the portal's URLs registered."""
        self.admin("reset")
        self.admin("seed", demo_tenant(portal_base_url=portal_base_url))


@pytest.fixture(autouse=True)
def _rate_limits_forgotten() -> None:
    """Each test starts with nothing counted against the rate limits, whatever ran before it."""
    counters = caches["ratelimit"]
    if isinstance(counters, RedisCache):
        # Only the counters' keys: flushing the database would take the broker's queues too.
        with redis.Redis.from_url(settings.CACHES["ratelimit"]["LOCATION"]) as server:
            stale = list(server.scan_iter(match=counters.make_key("*")))
            if stale:
                server.delete(*stale)
    else:
        counters.clear()


@pytest.fixture(scope="session")
def devtenant_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevTenant]:
    tenant = DevTenant(tmp_path_factory.mktemp("devtenant"))
    yield tenant
    tenant.stop()


@pytest.fixture
def devtenant(devtenant_process: DevTenant, settings: Any) -> DevTenant:
    """The devtenant, freshly seeded with the demo, and the portal pointed at it."""
    settings.AUTH0_ISSUER = devtenant_process.issuer
    devtenant_process.reset(portal_base_url=settings.PORTAL_BASE_URL)
    # Each test starts with the portal knowing nothing of the tenant's keys.
    cache.delete_many([f"atrium:jwks:{devtenant_process.issuer}",
                       f"atrium:jwks:{devtenant_process.issuer}:refetch"])  # fmt: skip
    return devtenant_process


def own_role(name: str, *owners: str, **entry: object) -> None:
    """Give a role owners in the registry (creating it in the mirror if a test has not synced),
    as a portal admin would: through the registry's own parser and service."""
    from access.models import Role
    from access.registry import registry_entry_parse
    from access.services import SYSTEM, role_registry_set

    role, _ = Role.objects.get_or_create(name=name)
    role_registry_set(
        role=role, entry=registry_entry_parse({"owners": list(owners), **entry}), actor=SYSTEM
    )
