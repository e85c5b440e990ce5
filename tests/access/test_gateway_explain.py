"""`/authz/explain`: the decision endpoint's steps for people, telling no more than it does,
and keeping no trace of the token pasted."""

from __future__ import annotations

import html
import logging
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from access.models import AuditEvent, RoleMembership
from tests.factories import RoleFactory, RoleMembershipFactory
from tests.helpers import DevTenant, gateway_token, payments_with_routes, person_of_tenant
from tests.helpers import text as page_text

pytestmark = pytest.mark.django_db

HOST = "payments.internal.example"


@pytest.fixture
def routes(tmp_path: Path, devtenant: DevTenant) -> None:
    payments_with_routes(tmp_path)


def text(content: bytes) -> str:
    return html.unescape(page_text(content))


def explain(client: Client, token: str, path: str = "/v1/orders", **extra: str) -> Any:
    form = {"token": token, "method": "GET", "host": HOST, "path": path, **extra}
    return client.post("/authz/explain", form)


def test_the_page_walks_through_the_checks_and_ends_in_the_decision(
    routes: None, devtenant: DevTenant
) -> None:
    ada, as_ada = person_of_tenant(devtenant, "ada@example.com")
    token = gateway_token(devtenant, "ada@example.com")

    page = text(explain(as_ada, token).content)

    for step in ("route: passed declared by component:default/payments-api;",
                 "audience https://payments.internal.example/api;",
                 "signature: passed verified with the issuer's key (RS256)",
                 "iss: passed", "aud: passed", "exp: passed", f"sub: passed {ada.sub}",
                 "roles: failed component:default/payments-api requires one of payments.admin, "
                 "payments.viewer, which this person does not hold now",
                 "403 — component:default/payments-api requires"):  # fmt: skip
        assert step in page, step
    # The route as declared is a detail of a restricted entity Ada may not see.
    assert "GET,POST payments.internal.example/v1/*" not in page

    RoleMembershipFactory.create(user=ada, role=RoleFactory.create(name="payments.viewer"),
                                 source=RoleMembership.Source.PORTAL_GRANT)  # fmt: skip
    page = text(explain(as_ada, token).content)
    assert "as GET,POST payments.internal.example/v1/*" in page
    assert "roles: passed holds payments.viewer in the mirror now" in page
    assert f"200 — holds payments.viewer (X-Atrium-Subject: {ada.sub}" in page


def test_the_token_leaves_no_trace_in_the_page_the_session_the_audit_log_or_the_logs(
    routes: None, devtenant: DevTenant, caplog: pytest.LogCaptureFixture
) -> None:
    _, as_ada = person_of_tenant(devtenant, "ada@example.com")
    token = gateway_token(devtenant, "ada@example.com")
    caplog.set_level(logging.DEBUG)

    page = explain(as_ada, token).content.decode()
    api = as_ada.post("/api/authz/explain", {"token": token, "host": HOST, "path": "/v1/x"},
                      content_type="application/json")  # fmt: skip
    tampered = explain(as_ada, token[:-4] + "AAAA").content.decode()

    assert api.status_code == 200
    signature = token.rsplit(".", 1)[1]
    for answer in (page, api.content.decode(), tampered):
        assert signature not in answer
    session = as_ada.session
    assert all(signature not in str(value) for value in session.values())
    assert not any(signature in str(event.detail) + event.target
                   for event in AuditEvent.objects.all())  # fmt: skip
    assert signature not in caplog.text


def test_it_tells_a_subject_s_roles_only_where_the_decision_would(
    routes: None, devtenant: DevTenant, settings: Any
) -> None:
    grace, as_grace = person_of_tenant(devtenant, "grace@example.com")
    ada, _ = person_of_tenant(devtenant, "ada@example.com")
    RoleMembershipFactory.create(user=ada, role=RoleFactory.create(name="payments.viewer"))
    token = gateway_token(devtenant, "ada@example.com")

    # A token whose signature fails, or one expired: the decision stops at 401, and so does
    # what the page says of the subject.
    forged = text(explain(as_grace, token[:-4] + "AAAA").content)
    assert "signature: failed" in forged
    assert "roles:" not in forged and "payments.viewer in the mirror" not in forged
    settings.AUTH0_LEEWAY = -90_000  # as if a day had passed: the devtenant's tokens live one
    expired = text(explain(as_grace, token).content)
    assert "exp: failed the token expired" in expired
    assert "roles:" not in expired
    assert "401 —" in expired


def test_the_json_variant_answers_the_same_decision(routes: None, devtenant: DevTenant) -> None:
    _, as_ada = person_of_tenant(devtenant, "ada@example.com")
    token = gateway_token(devtenant, "ada@example.com")

    answer = as_ada.post("/api/authz/explain", {"token": token, "host": HOST, "path": "/v2/x"},
                         content_type="application/json").json()  # fmt: skip

    assert answer["status"] == 403
    assert answer["reason"] == f"no route is declared for GET {HOST}/v2/x"
    assert answer["steps"][0] == {
        "check": "route",
        "passed": False,
        "detail": f"no route is declared for GET {HOST}/v2/x",
    }


def test_it_is_for_signed_in_people_and_rate_limited(
    routes: None, devtenant: DevTenant, settings: Any
) -> None:
    assert Client().get("/authz/explain").status_code == 302
    _, as_ada = person_of_tenant(devtenant, "ada@example.com")
    assert as_ada.get("/authz/explain").status_code == 200
    settings.RATE_LIMIT_AUTHZ_EXPLAIN = "2/m"
    token = gateway_token(devtenant, "ada@example.com")

    assert explain(as_ada, token).status_code == 200
    assert explain(as_ada, token).status_code == 200
    refused = explain(as_ada, token)
    assert refused.status_code == 429
    assert "Too many token checks" in text(refused.content)


def test_a_machine_client_may_not_use_it(routes: None, devtenant: DevTenant) -> None:
    from tests.portal.auth_helpers import machine_token

    token = machine_token(devtenant)
    response = Client().post(
        "/api/authz/explain", {"token": token, "host": HOST, "path": "/v1/x"},
        content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}",
    )  # fmt: skip
    assert response.status_code == 403


def test_an_entity_page_links_each_route_it_holds_to_the_check_filled_in(
    routes: None, devtenant: DevTenant
) -> None:
    _, as_grace = person_of_tenant(devtenant, "grace@example.com")  # an owner of payments-api
    _, as_ada = person_of_tenant(devtenant, "ada@example.com")  # no role: routes are a detail
    entity_page = "/catalog/default/component/payments-api/"

    page = as_grace.get(entity_page).content.decode()

    assert "Gateway routes" in page
    assert "<code>GET,POST payments.internal.example/v1/*</code>" in page
    link = "/authz/explain?method=GET&amp;host=payments.internal.example&amp;path=%2Fv1%2F"
    assert link in page
    form = as_grace.get(html.unescape(link) + "&token=pasted-in-a-url").content.decode()
    assert 'value="payments.internal.example"' in form
    assert 'value="/v1/"' in form
    assert '<option value="GET" selected>' in form
    assert "pasted-in-a-url" not in form  # a token never comes from a URL
    assert "Gateway routes" not in as_ada.get(entity_page).content.decode()
