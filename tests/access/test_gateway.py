"""`/authz/`: the gateways' decision, from the routes the catalog declares and the mirror now."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from access.models import AuditEvent, RoleMembership
from devtenant.demo import PAYMENTS_AUDIENCE
from portal.models import User
from tests.factories import RoleFactory, RoleMembershipFactory
from tests.helpers import (
    DevTenant,
    gateway_token,
    payments_with_routes,
    person_of_tenant,
    signed_in,
)
from tests.portal.auth_helpers import client_token

pytestmark = pytest.mark.django_db

HOST = "payments.internal.example"


@pytest.fixture
def routes(tmp_path: Path, devtenant: DevTenant) -> None:
    payments_with_routes(tmp_path)


def ask(
    token: str | None = None,
    *,
    method: str = "GET",
    uri: str = "/v1/orders",
    host: str = HOST,
    **headers: str,
) -> Any:
    """What NGINX's auth_request sends: the target in X-Forwarded-*, the client's token."""
    sent = {"X-Forwarded-Method": method, "X-Forwarded-Host": host, "X-Forwarded-Uri": uri}
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    return Client().get("/authz/", headers={**sent, **headers})


def grant(user: User, role: str = "payments.viewer", **extra: Any) -> RoleMembership:
    membership: RoleMembership = RoleMembershipFactory.create(
        user=user, role=RoleFactory.create(name=role),
        source=RoleMembership.Source.PORTAL_GRANT, **extra,
    )  # fmt: skip
    return membership


def reason(response: Any) -> str:
    body: dict[str, Any] = json.loads(response.content)
    return str(body["reason"])


def test_no_token_is_a_401_that_says_how_to_send_one(routes: None) -> None:
    response = ask()

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == (
        f'Bearer realm="atrium", audience="{PAYMENTS_AUDIENCE}"'
    )
    assert reason(response) == "send the access token as Authorization: Bearer <token>"


def test_a_token_for_another_audience_is_a_401_naming_the_route_s(
    routes: None, devtenant: DevTenant
) -> None:
    person_of_tenant(devtenant, "ada@example.com")
    portal_token = gateway_token(devtenant, "ada@example.com", audience="https://atrium.dev/api")

    response = ask(portal_token)

    assert response.status_code == 401
    assert PAYMENTS_AUDIENCE in reason(response)
    assert response["WWW-Authenticate"].startswith('Bearer error="invalid_token"')


def test_the_mirror_decides_a_person_now_whatever_the_token_says(
    routes: None, devtenant: DevTenant
) -> None:
    ada, _ = person_of_tenant(devtenant, "ada@example.com")
    token = gateway_token(devtenant, "ada@example.com")

    refused = ask(token)
    assert refused.status_code == 403
    assert reason(refused) == (
        "component:default/payments-api requires one of payments.admin, payments.viewer, "
        "which this person does not hold now"
    )

    membership = grant(ada)
    allowed = ask(token)
    assert allowed.status_code == 200
    assert allowed["X-Atrium-Subject"] == ada.sub
    assert allowed["X-Atrium-Roles"] == "payments.viewer"
    assert ask(token, method="POST", uri="/admin/refunds?id=1").status_code == 200
    # The routes name GET and POST under /v1/ only (GET covers HEAD).
    assert ask(token, method="HEAD").status_code == 200
    assert ask(token, method="DELETE").status_code == 403

    membership.delete()  # revoked: the same token, refused at once
    assert ask(token).status_code == 403


def test_a_grant_that_ended_on_time_is_refused_with_no_change_to_the_mirror(
    routes: None, devtenant: DevTenant
) -> None:
    ada, _ = person_of_tenant(devtenant, "ada@example.com")
    token = gateway_token(devtenant, "ada@example.com")
    ends = timezone.now() + timedelta(seconds=1)
    grant(ada, expires_at=ends)
    assert ask(token).status_code == 200

    # Nothing changed in the mirror (the expiry job has not run): the holding's end has passed.
    time.sleep(max(0.0, (ends - timezone.now()).total_seconds()) + 0.05)
    assert ask(token).status_code == 403


def test_a_person_an_admin_deactivates_is_refused_at_once_though_they_hold_the_role(
    routes: None, devtenant: DevTenant
) -> None:
    ada, _ = person_of_tenant(devtenant, "ada@example.com")
    grant(ada)
    token = gateway_token(devtenant, "ada@example.com")
    assert ask(token).status_code == 200

    linus = signed_in("linus@example.com", "portal-admin")
    changed = linus.post(f"/admin/portal/user/{ada.pk}/change/", {})  # "Active" unticked
    assert changed.status_code == 302, changed.content
    ada.refresh_from_db()
    assert ada.is_active is False

    response = ask(token)
    assert response.status_code == 403
    assert reason(response) == "the portal has shut this account out"


def test_machine_clients_pass_by_a_scope_named_after_a_required_role(
    routes: None, devtenant: DevTenant
) -> None:
    devtenant.admin("seed", {"apis": [{"identifier": PAYMENTS_AUDIENCE, "name": "Payments API",
                                       "scopes": ["payments.viewer"]}]})  # fmt: skip

    def machine(scopes: list[str], client_id: str) -> str:
        client_token(devtenant, [], client_id=client_id)
        devtenant.admin("seed", {"clients": [{
            "client_id": client_id, "client_secret": f"{client_id}-secret", "name": client_id,
            "app_type": "non_interactive", "grant_types": ["client_credentials"],
            "client_grants": {PAYMENTS_AUDIENCE: scopes},
        }]})  # fmt: skip
        return devtenant.token(
            grant_type="client_credentials", client_id=client_id,
            client_secret=f"{client_id}-secret", audience=PAYMENTS_AUDIENCE,
        )  # fmt: skip

    allowed = ask(machine(["payments.viewer"], "settlement"))
    assert allowed.status_code == 200
    assert allowed["X-Atrium-Subject"] == "settlement@clients"
    assert allowed["X-Atrium-Roles"] == "payments.viewer"
    refused = ask(machine([], "crawler"))
    assert refused.status_code == 403
    assert "the client crawler was granted none of them as a scope" in reason(refused)


def test_a_route_nobody_declared_is_refused_unless_the_setting_allows_it(
    routes: None, settings: Any
) -> None:
    refused = ask(uri="/v2/orders")
    assert refused.status_code == 403
    assert reason(refused) == f"no route is declared for GET {HOST}/v2/orders"

    settings.AUTHZ_UNKNOWN_ROUTES = "allow"
    allowed = ask(uri="/v2/orders")
    assert allowed.status_code == 200
    assert allowed["X-Atrium-Subject"] == ""  # what the gateway puts in place of the client's


@pytest.mark.parametrize("uri", ["/v1/../admin/x", "/v1/%2e%2e/x", "/v1%2Fx", "//v1/x"])
def test_a_path_that_upstreams_could_read_otherwise_is_refused(routes: None, uri: str) -> None:
    response = ask(uri=uri)

    assert response.status_code == 403
    assert "not in normal form" in reason(response)


# Beside payments-api, a site whose pages any valid token opens, on the same host.
OPEN_SITE = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: payments-docs
  annotations:
    atrium.dev/gateway-routes: >-
      GET payments.internal.example/docs/*, payments.internal.example/health
    atrium.dev/audience: https://payments.internal.example/api
spec: {type: website, lifecycle: production, owner: team-payments}
"""


@pytest.mark.parametrize(
    "uri",
    [
        "/docs/..;/admin/refunds",  # Tomcat, Jetty, Spring: `..;` is `..`, and this is /admin
        "/docs/..%3B/admin/refunds",
        "/docs/.;/../admin/refunds",
        "/docs/%2e%2e;jsessionid=1/admin/refunds",
        "/docs/%252e%252e/admin/refunds",  # an upstream behind a decoding proxy reads `..`
        "/docs/..%252Fadmin/refunds",
        "/docs/..%253B/admin/refunds",
        "/health#/../admin/refunds",  # a request line carries no fragment; one that does...
        "/docs/%E2%80%A5/admin/refunds",  # U+2025: `..` to an upstream that normalizes (NFKC)
    ],
)
def test_a_path_an_upstream_reads_as_another_route_s_is_refused_not_matched_to_an_open_one(
    routes: None, devtenant: DevTenant, tmp_path: Path, uri: str
) -> None:
    from catalog.services import location_refresh, location_register

    (tmp_path / "docs.yaml").write_text(OPEN_SITE)
    location_refresh(
        location=location_register(target=str(tmp_path / "docs.yaml"), allow_routes=True)
    )
    person_of_tenant(devtenant, "ada@example.com")
    token = gateway_token(devtenant, "ada@example.com")  # Ada holds no payments role
    assert ask(token, uri="/docs/guide").status_code == 200
    assert ask(token, uri="/admin/refunds").status_code == 403

    response = ask(token, uri=uri)

    assert response.status_code == 403, uri
    assert "not in normal form" in reason(response)


def test_a_route_whose_entity_names_only_malformed_roles_lets_nobody_through(
    routes: None, devtenant: DevTenant, tmp_path: Path
) -> None:
    """The role name is too long to store and is left out: the route must not become open."""
    from catalog.services import location_refresh, location_register

    closed = OPEN_SITE.replace(
        "    atrium.dev/audience:",
        f"    atrium.dev/required-roles: {'r' * 300}\n    atrium.dev/audience:",
    )
    (tmp_path / "docs.yaml").write_text(closed)
    location_refresh(
        location=location_register(target=str(tmp_path / "docs.yaml"), allow_routes=True)
    )
    ada, _ = person_of_tenant(devtenant, "ada@example.com")
    grant(ada)
    token = gateway_token(devtenant, "ada@example.com")
    assert ask(token, uri="/v1/orders").status_code == 200  # her token and grant are good

    response = ask(token, uri="/docs/guide")

    assert response.status_code == 403
    assert reason(response) == (
        "component:default/payments-docs is restricted, but its annotation names no valid "
        "role; nobody passes until its owners fix it"
    )


@pytest.mark.parametrize("missing", ["X-Forwarded-Uri", "X-Forwarded-Method", "X-Forwarded-Host"])
def test_a_forward_auth_call_missing_part_of_its_target_is_refused_naming_what_is_missing(
    routes: None, devtenant: DevTenant, tmp_path: Path, missing: str
) -> None:
    from catalog.services import location_refresh, location_register

    (tmp_path / "docs.yaml").write_text(OPEN_SITE.replace("/health", "/"))
    location_refresh(
        location=location_register(target=str(tmp_path / "docs.yaml"), allow_routes=True)
    )
    person_of_tenant(devtenant, "ada@example.com")
    token = gateway_token(devtenant, "ada@example.com")
    target = {"X-Forwarded-Method": "POST", "X-Forwarded-Host": HOST,
              "X-Forwarded-Uri": "/admin/refunds"}  # fmt: skip
    del target[missing]

    # Not decided as `/` (open) nor as the subrequest's own GET (NGINX's auth_request sends
    # every check as a GET): the gateway was set up without it, and a guess could open routes.
    response = Client().get("/authz/", headers={"Authorization": f"Bearer {token}", **target})

    assert response.status_code == 403
    assert reason(response) == (
        f"the gateway sent no {missing}: a forward-auth check names its target's method, host "
        "and URI in X-Forwarded-Method, X-Forwarded-Host and X-Forwarded-Uri"
    )


def test_envoy_s_check_is_the_request_itself_under_the_prefix(
    routes: None, devtenant: DevTenant
) -> None:
    ada, _ = person_of_tenant(devtenant, "ada@example.com")
    grant(ada)
    token = gateway_token(devtenant, "ada@example.com")

    allowed = Client().post(
        "/authz/v1/orders?page=2", HTTP_HOST=f"{HOST}:8443", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert allowed.status_code == 200
    assert allowed["X-Atrium-Subject"] == ada.sub
    # /authz/explain under a host that is not the portal's is a check of /explain too.
    unknown = Client().get("/authz/explain", HTTP_HOST=HOST)
    assert unknown.status_code == 403
    assert reason(unknown) == f"no route is declared for GET {HOST}/explain"


def test_denials_are_audited_once_per_subject_and_route_a_minute(
    routes: None, devtenant: DevTenant
) -> None:
    ada, _ = person_of_tenant(devtenant, "ada@example.com")
    token = gateway_token(devtenant, "ada@example.com")

    for _ in range(5):
        assert ask(token).status_code == 403
    for _ in range(3):
        assert ask().status_code == 401

    denied = list(AuditEvent.objects.filter(action="authz.denied").order_by("id"))
    assert [(event.actor, event.detail["status"]) for event in denied] == [
        (ada.sub, 403),
        ("anonymous", 401),
    ]
    assert denied[0].target == f"GET {HOST}/v1/orders"
    assert denied[0].detail["route"] == "GET,POST payments.internal.example/v1/*"
    assert denied[0].detail["entity"] == "component:default/payments-api"


def test_a_decision_reads_no_database_once_its_routes_and_holder_are_kept(
    routes: None, devtenant: DevTenant, settings: Any, django_assert_num_queries: Any
) -> None:
    if "redis" not in settings.CACHES["default"]["BACKEND"].lower():
        pytest.skip("routes and holdings are kept only with Redis (REDIS_URL)")
    ada, _ = person_of_tenant(devtenant, "ada@example.com")
    grant(ada)
    token = gateway_token(devtenant, "ada@example.com")
    assert ask(token).status_code == 200

    with django_assert_num_queries(0):
        assert ask(token).status_code == 200


def test_a_revocation_whose_new_version_redis_missed_is_refused_within_the_bound(
    routes: None, devtenant: DevTenant, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    if "redis" not in settings.CACHES["default"]["BACKEND"].lower():
        pytest.skip("routes and holdings are kept only with Redis (REDIS_URL)")
    from django.core.cache import caches

    from access import gateway

    monkeypatch.setattr(gateway, "KEPT_SECONDS", 0.5, raising=False)  # a minute, in production
    ada, _ = person_of_tenant(devtenant, "ada@example.com")
    membership = grant(ada)
    token = gateway_token(devtenant, "ada@example.com")
    assert ask(token).status_code == 200  # her holding is kept in this process

    def down(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("Redis is unreachable")

    with monkeypatch.context() as outage:  # the revocation's new version is lost
        outage.setattr(caches["default"], "set", down)
        membership.delete()

    time.sleep(0.6)
    refused = ask(token)
    assert refused.status_code == 403, "a revoked grant let through until some other change"


def test_decisions_are_counted_for_metrics(
    routes: None, devtenant: DevTenant, settings: Any
) -> None:
    from django.core.cache import cache

    from portal.metrics import DECISIONS_KEY, decisions_flush

    decisions_flush()  # what earlier tests counted in this process
    cache.delete_many([DECISIONS_KEY.format(outcome=o) for o in ("allowed", "denied",
                                                                 "unauthenticated")])  # fmt: skip
    ada, _ = person_of_tenant(devtenant, "ada@example.com")
    grant(ada)
    token = gateway_token(devtenant, "ada@example.com")
    for _ in range(3):
        ask(token)
    ask(token, uri="/v9/")
    ask()
    settings.METRICS_TOKEN = "scrape"

    scrape = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer scrape").content.decode()

    assert 'atrium_authz_decisions_total{outcome="allowed"} 3.0' in scrape
    assert 'atrium_authz_decisions_total{outcome="denied"} 1.0' in scrape
    assert 'atrium_authz_decisions_total{outcome="unauthenticated"} 1.0' in scrape
