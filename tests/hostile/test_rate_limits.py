"""Rate limits: each answers 429 with Retry-After, spares everyone else, frees after its window."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import django_ratelimit.core  # type: ignore[import-untyped]
import pytest
import redis
from django.core.cache import caches
from django.test import Client, RequestFactory

from portal.models import User
from portal.ratelimits import client_address
from tests.helpers import (
    CONFIG_VARIABLES,
    PRODUCTION,
    DevTenant,
    ada_of_the_tenant,
    load_settings,
    tenant_ids,
    text,
)
from tests.portal.auth_helpers import machine_token, sign_in

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
ELSEWHERE = "198.51.100.7"  # another client's address


class Clock:
    """django-ratelimit's clock, held still so that a test's calls share one window, and moved
    on by hand to where the window frees."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    held = Clock(1_900_000_000.0)
    monkeypatch.setattr(django_ratelimit.core, "time", held)
    return held


def retry_after(response: Any) -> int:
    assert response.status_code == 429, response.content
    seconds = int(response["Retry-After"])
    assert seconds >= 1
    return seconds


def me(client: Client, token: str | None = None, **meta: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.get("/api/access/me", headers=headers, **meta)


# --- Sign-in --------------------------------------------------------------------------------


def test_sign_in_starts_are_limited_per_address_until_the_window_frees(
    client: Client, devtenant: DevTenant, settings: Any, clock: Clock
) -> None:
    settings.RATE_LIMIT_SIGN_IN = "3/m"
    for _ in range(3):
        assert client.get("/auth/login/").status_code == 302

    refused = client.get("/auth/login/")

    wait = retry_after(refused)
    assert wait <= 60
    assert refused["Content-Type"].startswith("text/html")
    assert "Too many sign-ins started from your address: try again in" in text(refused.content)
    assert Client(REMOTE_ADDR=ELSEWHERE).get("/auth/login/").status_code == 302
    clock.now += wait - 1
    assert client.get("/auth/login/").status_code == 429, "Retry-After was too short"
    clock.now += 1
    assert client.get("/auth/login/").status_code == 302


def test_sign_in_callbacks_are_limited_per_address(
    client: Client, devtenant: DevTenant, settings: Any, clock: Clock
) -> None:
    settings.RATE_LIMIT_SIGN_IN = "3/m"
    for _ in range(3):
        assert client.get("/auth/callback/?code=guess&state=guess").status_code == 400

    refused = client.get("/auth/callback/?code=guess&state=guess")

    retry_after(refused)
    assert "Too many sign-ins answered from your address" in text(refused.content)
    someone_else = Client(REMOTE_ADDR=ELSEWHERE)
    assert sign_in(someone_else, "ada@example.com").response.status_code == 302
    assert "_auth_user_id" in someone_else.session


def test_an_empty_rate_switches_the_limit_off(
    client: Client, devtenant: DevTenant, settings: Any, clock: Clock
) -> None:
    settings.RATE_LIMIT_SIGN_IN = ""

    assert {client.get("/auth/login/").status_code for _ in range(40)} == {302}


# --- Bearer tokens ------------------------------------------------------------------------


def test_refused_tokens_are_limited_per_address_and_then_none_is_verified(
    client: Client, devtenant: DevTenant, settings: Any, clock: Clock
) -> None:
    settings.RATE_LIMIT_BAD_TOKENS = "3/m"
    good = machine_token(devtenant)
    # Tokens that verify count nothing against the limit.
    assert {me(client, good).status_code for _ in range(5)} == {200}
    assert [me(client, "not-a-token").status_code for _ in range(3)] == [401, 401, 401]

    refused = me(client, good)

    wait = retry_after(refused)
    body = refused.json()
    assert body["error"]["name"] == "TooManyRequestsError"
    assert "Too many refused tokens from this address: try again in" in body["error"]["message"]
    assert body["response"] == {"statusCode": 429}
    assert body["request"] == {"method": "GET", "url": "/api/access/me"}
    assert me(client, "not-a-token").status_code == 429
    assert me(Client(REMOTE_ADDR=ELSEWHERE), good).status_code == 200
    clock.now += wait
    assert me(client, good).status_code == 200


def test_a_malformed_authorization_header_counts_as_a_refused_token(
    client: Client, settings: Any, clock: Clock
) -> None:
    settings.RATE_LIMIT_BAD_TOKENS = "2/m"
    basic = {"Authorization": "Basic YWRhOnB3"}
    assert [client.get("/api/access/me", headers=basic).status_code for _ in range(2)] == [401] * 2

    assert client.get("/api/access/me", headers=basic).status_code == 429


# --- Refresh my roles ---------------------------------------------------------------------


def test_refresh_my_roles_is_limited_per_person_before_auth0_is_asked(
    devtenant: DevTenant, settings: Any, clock: Clock
) -> None:
    settings.RATE_LIMIT_ROLE_REFRESH = "2/m"
    _, ada = ada_of_the_tenant(devtenant)
    assert [ada.post("/access/refresh/").status_code for _ in range(2)] == [302, 302]
    asked = len(devtenant.requests_log())

    refused = ada.post("/access/refresh/")

    wait = retry_after(refused)
    assert "Too many role refreshes: try again in" in text(refused.content)
    assert len(devtenant.requests_log()) == asked, "the Management API was called anyway"
    users, _ = tenant_ids(devtenant)
    linus = User.objects.create_user(users["linus@example.com"], "linus@example.com", "Linus")
    other = Client()  # same address, another person
    other.force_login(linus)
    assert other.post("/access/refresh/").status_code == 302
    clock.now += wait
    assert ada.post("/access/refresh/").status_code == 302


# --- API calls ----------------------------------------------------------------------------


def test_api_calls_are_limited_per_caller(
    client: Client, devtenant: DevTenant, settings: Any, clock: Clock
) -> None:
    settings.RATE_LIMIT_API = "3/m"
    machine = machine_token(devtenant)
    assert [me(client, machine).status_code for _ in range(3)] == [200, 200, 200]

    refused = me(client, machine)

    wait = retry_after(refused)
    assert refused.json()["error"]["name"] == "TooManyRequestsError"
    assert "Too many API calls: try again in" in refused.json()["error"]["message"]
    # Another caller from the same address has a limit of their own.
    ada = User.objects.create_user("auth0|ada", "ada@example.com", "Ada")
    person = Client()
    person.force_login(ada)
    assert me(person).status_code == 200
    clock.now += wait
    assert me(client, machine).status_code == 200


def test_anonymous_api_calls_are_limited_per_address(
    client: Client, settings: Any, clock: Clock
) -> None:
    settings.RATE_LIMIT_API = "3/m"
    assert [me(client).status_code for _ in range(3)] == [401, 401, 401]

    assert me(client).status_code == 429
    assert me(Client(REMOTE_ADDR=ELSEWHERE)).status_code == 401


def test_a_limit_frees_again_as_time_really_passes(client: Client, settings: Any) -> None:
    settings.RATE_LIMIT_API = "2/s"
    # The window is a clock second: the third call may fall in the next one and pass.
    refused = next((r for r in (me(client) for _ in range(20)) if r.status_code == 429), None)
    assert refused is not None, "twenty calls in a few seconds were never limited"

    time.sleep(retry_after(refused))

    assert me(client).status_code == 401


# --- Which address counts -----------------------------------------------------------------


def test_x_forwarded_for_is_ignored_unless_proxies_are_trusted(
    client: Client, settings: Any, clock: Clock
) -> None:
    settings.RATE_LIMIT_API = "3/m"
    settings.TRUSTED_PROXY_COUNT = 0
    spoofed = [me(client, HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").status_code for n in range(4)]

    assert spoofed == [401, 401, 401, 429], "a made-up X-Forwarded-For escaped the limit"


def test_behind_a_trusted_proxy_the_address_it_saw_counts(
    client: Client, settings: Any, clock: Clock
) -> None:
    settings.RATE_LIMIT_API = "3/m"
    settings.TRUSTED_PROXY_COUNT = 1
    # The proxy appends what it saw; whatever the client wrote before that changes nothing.
    spoofed = [
        me(client, HTTP_X_FORWARDED_FOR=f"10.9.9.{n}, 203.0.113.5").status_code for n in range(4)
    ]

    assert spoofed == [401, 401, 401, 429]
    assert me(client, HTTP_X_FORWARDED_FOR="203.0.113.6").status_code == 401


@pytest.mark.parametrize(
    ("remote", "forwarded", "trusted", "counted_as"),
    [
        ("127.0.0.1", "203.0.113.5", 0, "127.0.0.1"),
        ("127.0.0.1", "", 1, "127.0.0.1"),
        ("127.0.0.1", "6.6.6.6, 203.0.113.5", 1, "203.0.113.5"),
        ("127.0.0.1", "6.6.6.6, 203.0.113.5, 10.0.0.2", 2, "203.0.113.5"),
        ("127.0.0.1", "203.0.113.5", 2, "203.0.113.5"),  # fewer hops than proxies: all theirs
        ("127.0.0.1", "203.0.113.5:41234", 1, "203.0.113.5"),
        ("127.0.0.1", "[2001:db8::1]:41234", 1, "2001:db8::"),
        ("2001:db8:0:1::7", "", 0, "2001:db8:0:1::"),  # one /64, one machine
        ("2001:db8:0:1:ffff::9", "", 0, "2001:db8:0:1::"),
        ("::ffff:192.0.2.8", "", 0, "192.0.2.8"),
    ],
)
def test_the_client_address(
    settings: Any, remote: str, forwarded: str, trusted: int, counted_as: str
) -> None:
    settings.TRUSTED_PROXY_COUNT = trusted
    request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)

    assert client_address(request) == counted_as


# --- Settings -----------------------------------------------------------------------------


@pytest.mark.parametrize("rate", ["lots", "10", "0/m", "10/0m", "10/w", "-1/m", "10/m extra"])
def test_a_rate_that_is_not_one_is_refused_at_startup_naming_the_setting(
    tmp_path: Path, rate: str
) -> None:
    loaded = load_settings(tmp_path, **PRODUCTION, RATE_LIMIT_ROLE_REFRESH=rate)

    assert loaded.returncode != 0
    assert f"RATE_LIMIT_ROLE_REFRESH={rate!r} is not a rate such as 20/m" in loaded.stderr


PRINT_LIMITS = """
import json
from django.conf import settings as s
print(json.dumps([s.RATE_LIMIT_SIGN_IN, s.RATE_LIMIT_BAD_TOKENS, s.RATE_LIMIT_ROLE_REFRESH,
                  s.RATE_LIMIT_API, s.TRUSTED_PROXY_COUNT, s.CACHES["ratelimit"]["BACKEND"]]))
"""


def limits_of(tmp_path: Path, **variables: str) -> list[Any]:
    """The limits a process started with these variables (and no others of ours) would apply."""
    ours = {*CONFIG_VARIABLES, "TRUSTED_PROXY_COUNT"}
    environment = {
        k: v for k, v in os.environ.items() if k not in ours and not k.startswith("RATE_LIMIT_")
    }
    environment.update(
        DJANGO_SETTINGS_MODULE="portal.settings",
        ATRIUM_VAR_DIR=str(tmp_path / "var"),
        ATRIUM_ENV_FILE=str(tmp_path / "no.env"),
        **PRODUCTION,
        **variables,
    )
    loaded = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()\n" + PRINT_LIMITS],
        env=environment, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr
    limits: list[Any] = json.loads(loaded.stdout)
    return limits


def test_the_limits_default_to_generous_rates_counted_by_the_connection(tmp_path: Path) -> None:
    assert limits_of(tmp_path) == [
        "20/m", "20/m", "5/m", "600/m", 0, "django.core.cache.backends.locmem.LocMemCache",
    ]  # fmt: skip


def test_rates_and_proxies_load_from_the_environment(tmp_path: Path) -> None:
    configured = limits_of(
        tmp_path, RATE_LIMIT_API="100/5m", RATE_LIMIT_SIGN_IN="", REDIS_URL="redis://r:6379/3"
    )
    behind = limits_of(tmp_path, BEHIND_TLS_PROXY="true")
    told = limits_of(tmp_path, BEHIND_TLS_PROXY="true", TRUSTED_PROXY_COUNT="0")

    assert configured[:4] == ["", "20/m", "5/m", "100/5m"]
    assert configured[5] == "portal.caches.RedisCache"
    assert behind[4] == 1, "behind the TLS proxy, the address it saw counts"
    assert told[4] == 0


# --- Redis --------------------------------------------------------------------------------

OTHER_PROCESS = """
import sys
import django
django.setup()
import django_ratelimit.core
from django.test import Client

class Clock:
    def time(self):
        return float(sys.argv[1])

django_ratelimit.core.time = Clock()
client = Client(REMOTE_ADDR=sys.argv[2], HTTP_HOST="127.0.0.1")
print(" ".join(str(client.get("/api/access/me").status_code) for _ in range(3)))
"""


def test_counters_live_in_redis_and_every_process_shares_them(
    client: Client, settings: Any, clock: Clock
) -> None:
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        pytest.skip("set REDIS_URL to count in Redis (CI does)")
    settings.RATE_LIMIT_API = "3/m"
    address = "192.0.2.44"

    other = subprocess.run(
        [sys.executable, "-c", OTHER_PROCESS, str(clock.now), address],
        env={**os.environ, "RATE_LIMIT_API": "3/m"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert other.returncode == 0, other.stderr
    assert other.stdout.split() == ["401", "401", "401"]
    assert me(client, REMOTE_ADDR=address).status_code == 429, "this process did not see them"
    assert me(client, REMOTE_ADDR=ELSEWHERE).status_code == 401
    counters = caches["ratelimit"]
    keys = list(redis.Redis.from_url(redis_url).scan_iter(match=counters.make_key("*")))
    assert keys, "no counter in Redis"
    assert all(0 < redis.Redis.from_url(redis_url).ttl(key) <= 65 for key in keys)


def test_with_redis_unreachable_requests_go_on_uncounted(client: Client, settings: Any) -> None:
    settings.RATE_LIMIT_API = "1/m"
    settings.CACHES = {
        **settings.CACHES,
        # Nothing listens on port 1: every count fails to connect.
        "ratelimit": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        },
    }

    answers = [client.get("/api/access/me").status_code for _ in range(3)]

    assert answers == [401, 401, 401]  # answered, not 500 nor 429


def test_a_call_counted_in_one_round_trip_is_what_django_ratelimit_reads(
    clock: Clock, settings: Any
) -> None:
    from portal.ratelimits import API_CALLS, RateLimited, limit_check, limit_hit

    settings.RATE_LIMIT_API = "3/m"
    request = RequestFactory().get("/api/catalog/entities")
    for _ in range(3):
        limit_hit(API_CALLS, request=request, key="caller:counted")
    usage = django_ratelimit.core.get_usage(
        request, group=API_CALLS.group, key=lambda _group, _request: "caller:counted", rate="3/m"
    )

    assert usage["count"] == 3
    with pytest.raises(RateLimited) as refused:
        limit_check(API_CALLS, request=request, key="caller:counted")
    assert 1 <= refused.value.retry_after <= 61
    with pytest.raises(RateLimited):
        limit_hit(API_CALLS, request=request, key="caller:counted")
    limit_hit(API_CALLS, request=request, key="caller:another")  # everyone else is spared
