"""Every answer carries the security headers; signed-in pages and the API are never cached."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.test.client import RequestFactory

from portal.middleware import PortalCSPMiddleware
from tests.helpers import signed_in

pytestmark = pytest.mark.django_db

# What the policy must say, directive by directive (the issuer's origin comes on top).
POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "frame-ancestors": "'none'",
}


def directives(response: Any) -> dict[str, str]:
    header = response.headers["Content-Security-Policy"]
    found = {}
    for part in filter(None, (part.strip() for part in header.split(";"))):
        name, _, value = part.partition(" ")
        found[name] = value
    return found


def assert_secure_headers(response: Any) -> None:
    policy = directives(response)
    for name, value in POLICY.items():
        assert policy[name] == value, (name, policy)
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    assert "unsafe-eval" not in response.headers["Content-Security-Policy"]
    assert policy["form-action"].split()[0] == "'self'"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    permissions = response.headers["Permissions-Policy"]
    for feature in ("camera", "microphone", "geolocation", "payment", "usb"):
        assert f"{feature}=()" in permissions


def assert_not_stored(response: Any) -> None:
    cache_control = response.headers["Cache-Control"]
    assert "no-store" in cache_control and "private" in cache_control, cache_control


def test_a_signed_in_page_has_the_policy_and_is_not_stored() -> None:
    response = signed_in("ada@example.com").get("/catalog/")

    assert response.status_code == 200
    assert_secure_headers(response)
    assert_not_stored(response)


def test_an_htmx_fragment_has_the_policy_and_is_not_stored() -> None:
    response = signed_in("ada@example.com").get("/catalog/?q=pay", headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert "<html" not in response.content.decode()  # the fragment, not the page
    assert_secure_headers(response)
    assert_not_stored(response)


def test_api_answers_have_the_policy_and_are_not_stored() -> None:
    by_session = signed_in("ada@example.com").get("/api/catalog/entities")
    anonymous = Client().get("/api/access/me")
    no_route = Client().get("/api/nothing-here")

    assert (by_session.status_code, anonymous.status_code, no_route.status_code) == (200, 401, 404)
    for response in (by_session, anonymous, no_route):
        assert_secure_headers(response)
        assert_not_stored(response)


def test_error_pages_have_the_policy_and_are_not_stored() -> None:
    person = signed_in("ada@example.com")
    missing = person.get("/catalog/default/component/no-such-thing/")
    refused = person.get("/access/audit/")  # portal admins only

    assert (missing.status_code, refused.status_code) == (404, 403)
    for response in (missing, refused):
        assert_secure_headers(response)
        assert_not_stored(response)


def test_the_sign_in_redirect_has_the_policy() -> None:
    response = Client().get("/access/")

    assert response.status_code == 302 and response["Location"].startswith("/auth/login/")
    assert_secure_headers(response)


def test_static_files_keep_their_cache_and_get_the_policy() -> None:
    response = Client().get("/static/css/atrium.css")

    assert response.status_code == 200
    assert "no-store" not in response.headers.get("Cache-Control", "")
    assert_secure_headers(response)


def test_forms_may_post_to_the_portal_and_the_issuers_origin_only(settings: Any) -> None:
    settings.AUTH0_ISSUER = "https://acme.eu.auth0.com/"

    response = signed_in("ada@example.com").get("/access/")

    assert directives(response)["form-action"] == "'self' https://acme.eu.auth0.com"


def test_the_issuer_is_added_per_response_not_to_the_setting(settings: Any) -> None:
    settings.AUTH0_ISSUER = "https://one.example.com/"
    middleware = PortalCSPMiddleware(lambda request: None)  # type: ignore[arg-type]
    request = RequestFactory().get("/")
    first = middleware.get_policy_parts(request, response=None)  # type: ignore[arg-type]
    settings.AUTH0_ISSUER = "https://two.example.com/"
    second = middleware.get_policy_parts(request, response=None)  # type: ignore[arg-type]

    assert first.update == {"form-action": ["https://one.example.com"]}
    assert second.update == {"form-action": ["https://two.example.com"]}
    assert settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]["form-action"] == ["'self'"]


def test_htmx_is_told_to_evaluate_no_code_and_inject_no_style() -> None:
    page = signed_in("ada@example.com").get("/catalog/").content.decode()

    assert '"allowEval": false' in page
    assert '"allowScriptTags": false' in page
    assert '"includeIndicatorStyles": false' in page
    assert "{#" not in page and "<style" not in page  # no template comment leaks as markup
