"""The base layout, the home page and the branded error pages."""

import re

import pytest
from django.contrib import messages
from django.contrib.auth.models import AnonymousUser
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.test import Client, RequestFactory
from django.views import defaults

from portal import views
from portal.models import User


def test_home_says_what_atrium_is(client: Client) -> None:
    response = client.get("/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "<title>Home · Atrium</title>" in page
    assert "developer portal" in page
    assert "Auth0" in page


def test_htmx_comes_from_our_static_files_not_a_cdn(client: Client) -> None:
    page = client.get("/").content.decode()

    scripts = re.findall(r'<script[^>]*src="([^"]+)"', page)
    assert any(src.startswith("/static/") and "htmx" in src for src in scripts), scripts
    assert all(src.startswith("/static/") for src in scripts), scripts
    # htmx requests carry the CSRF token, so every htmx write passes Django's CSRF check.
    assert re.search(r"<body hx-headers='\{\"X-CSRFToken\": \"[^\"]+\"\}'>", page)


def test_static_files_are_served(client: Client) -> None:
    response = client.get("/static/css/atrium.css")

    assert response.status_code == 200


def test_navigation_lists_only_sections_that_exist(client: Client) -> None:
    page = client.get("/").content.decode()

    nav = re.search(r'<nav class="sections".*?</nav>', page, re.S)
    assert nav is not None
    # Roles and Audit are for portal admins only.
    assert re.findall(r"<a [^>]*>([^<]+)</a>", nav.group(0)) == [
        "Catalog",
        "My access",
        "Approvals",
        "Reviews",
    ]


@pytest.mark.django_db
def test_navigation_marks_the_current_section(client: Client, settings: object) -> None:
    settings.ROOT_URLCONF = "tests.portal.urls_with_sections"  # type: ignore[attr-defined]
    client.force_login(
        User.objects.create_user("auth0|ada", "ada@example.com", "Ada", email_verified=True)
    )

    page = client.get("/access/approvals/").content.decode()

    nav = re.search(r'<nav class="sections".*?</nav>', page, re.S)
    assert nav is not None
    links = re.findall(r'<a href="([^"]+)"( aria-current="page")?>([^<]+)</a>', nav.group(0))
    assert links == [
        ("/catalog/", "", "Catalog"),
        ("/access/", "", "My access"),
        ("/access/approvals/", ' aria-current="page"', "Approvals"),
    ]


def test_flash_messages_are_shown_with_their_level(rf: RequestFactory) -> None:
    request = rf.get("/")
    request.user = AnonymousUser()
    SessionMiddleware(lambda r: HttpResponse()).process_request(request)
    MessageMiddleware(lambda r: HttpResponse()).process_request(request)
    messages.success(request, "Your request was sent to team-payments.")
    messages.error(request, "Auth0 did not answer.")

    page = views.home(request).content.decode()

    assert '<p class="message message-success" role="status">Your request was sent' in page
    assert '<p class="message message-error" role="alert">Auth0 did not answer.</p>' in page


def test_unknown_page_is_a_branded_404(client: Client) -> None:
    response = client.get("/no/such/page/")

    assert response.status_code == 404
    page = response.content.decode()
    assert "Nothing here" in page
    assert "/no/such/page/" in page
    assert 'class="topbar"' in page


def test_forbidden_is_a_branded_403(rf: RequestFactory) -> None:
    response = defaults.permission_denied(rf.get("/secret/"), PermissionDenied())

    assert response.status_code == 403
    assert "You may not open this page" in response.content.decode()


@pytest.mark.django_db
def test_csrf_failure_is_a_branded_403() -> None:
    client = Client(enforce_csrf_checks=True)

    response = client.post("/admin/login/", {"username": "x", "password": "y"})

    assert response.status_code == 403
    assert "This form has expired" in response.content.decode()


def test_server_error_is_a_branded_500_that_needs_no_context(rf: RequestFactory) -> None:
    response = defaults.server_error(rf.get("/"))

    assert response.status_code == 500
    page = response.content.decode()
    assert "Something went wrong on our side" in page
    assert "Traceback" not in page
