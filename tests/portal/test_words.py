"""One date style, state badges and people by name: the words every page shares."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.template import Context, Template
from django.test import RequestFactory
from django.utils import timezone

from portal.middleware import TimezoneMiddleware
from portal.templatetags.atrium import relative, when
from tests.factories import UserFactory

NOW = datetime(2026, 12, 1, 22, 51, tzinfo=UTC)


@pytest.mark.parametrize(
    ("offset", "words"),
    [
        (timedelta(seconds=-20), "just now"),
        (timedelta(minutes=-1), "1 minute ago"),
        (timedelta(hours=-3, minutes=-59), "4 hours ago"),
        (timedelta(hours=-3, minutes=-20), "3 hours ago"),
        (timedelta(minutes=59, seconds=50), "in 1 hour"),
        (timedelta(days=6, hours=23, minutes=59), "in 1 week"),
        (timedelta(days=2, hours=1), "in 2 days"),
        (timedelta(days=8), "in 1 week"),
        (timedelta(days=45), "15 Jan 2027"),
        (timedelta(days=-40), "22 Oct"),
    ],
)
def test_times_read_as_people_say_them(offset: timedelta, words: str) -> None:
    assert relative(NOW + offset, NOW) == words


def test_the_exact_time_is_on_hover_in_the_viewers_zone() -> None:
    with timezone.override("Europe/Berlin"):
        html = when(NOW)
    assert 'datetime="2026-12-01T22:51:00+00:00"' in html
    assert 'title="Tue 1 Dec 2026, 23:51 CET"' in html


def test_pages_show_times_in_the_zone_the_browser_named() -> None:
    request = RequestFactory().get("/")
    request.COOKIES["atrium_tz"] = "Not/AZone"
    seen: list[str] = []

    def view(_request: object) -> object:
        seen.append(str(timezone.get_current_timezone()))
        return object()

    TimezoneMiddleware(view)(request)  # type: ignore[arg-type]
    request.COOKIES["atrium_tz"] = "Asia/Tokyo"
    TimezoneMiddleware(view)(request)  # type: ignore[arg-type]
    assert seen == ["UTC", "Asia/Tokyo"]


def test_a_badge_has_colour_and_words() -> None:
    html = Template('{% load atrium %}{% badge "active" "Access granted" %}').render(Context())
    assert html == '<span class="badge badge-ok">Access granted</span>'


@pytest.mark.django_db
def test_a_person_is_named_and_linked_to_their_catalog_user(payments: None) -> None:
    grace = UserFactory(email="grace@example.com", name="Grace Hopper")
    stranger = UserFactory(email="nobody@example.com", name="")
    template = Template("{% load people %}{% person grace %} · {% person stranger email=True %}")
    html = template.render(Context({"grace": grace, "stranger": stranger, "request": None}))
    link = '<a href="/catalog/default/user/grace/" title="grace@example.com">Grace Hopper</a>'
    assert link in html
    assert '<span title="nobody@example.com">nobody@example.com</span>' in html


@pytest.mark.parametrize(
    ("sub", "words"),
    [
        ("system", "Atrium"),
        ("client:ci-bot", "API client ci-bot"),
        ("cli:linus", "linus (command line)"),
        ("auth0|p1", "auth0|p1"),
    ],
)
def test_actors_without_a_name_are_said_as_what_they_are(sub: str, words: str) -> None:
    html = Template('{% load people %}{% person_named "" "" sub %}').render(Context({"sub": sub}))
    assert f">{words}</span>" in html
