"""Django's admin: Atrium's, for portal admins only, and read-only where the portal's services
keep the audit log true (requests, grants, the mirror, locations and entities)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from access.models import AccessRequest
from catalog.models import Entity, Location
from tests.factories import AccessRequestFactory, GrantFactory, UserFactory
from tests.helpers import signed_in, text

pytestmark = pytest.mark.django_db


def test_the_admin_is_atriums_with_its_logo_colours_and_sign_out() -> None:
    linus = signed_in("linus@example.com", "portal-admin")

    response = linus.get("/admin/")

    page = response.content.decode()
    assert response.status_code == 200
    assert "<title>Site administration | Atrium administration</title>" in page
    assert "Atrium administration" in text(response.content)
    assert "Django administration" not in page
    assert "/static/css/admin.css" in page
    assert "/static/img/atrium.svg" in page
    # Signing out here signs out of the portal and of Auth0, as the top bar's button does.
    assert '<form id="logout-form" method="post" action="/auth/logout/">' in page
    # Django's groups would grant nothing (the access policy decides): they are not offered.
    assert "/admin/auth/group/" not in page


def test_requests_and_grants_are_listed_searched_and_filtered(demo_catalog: None) -> None:
    linus = signed_in("linus@example.com", "portal-admin")
    ada = UserFactory.create(email="ada@example.com", name="Ada Lovelace")
    AccessRequestFactory.create(requester=ada, reason="On call this week")
    GrantFactory.create(role_name="payments.admin", reason="Incident 42")

    everything = listed(linus.get("/admin/access/accessrequest/"))
    pending = listed(linus.get("/admin/access/accessrequest/?state__exact=pending"))
    found = listed(linus.get("/admin/access/accessrequest/?q=Lovelace"))
    grants = listed(linus.get("/admin/access/rolemembership/?q=payments.admin"))

    assert "payments.viewer" in everything
    assert "payments.admin" in everything
    assert "payments.admin" not in pending
    assert "Ada Lovelace" in found
    assert "payments.admin" not in found
    assert "granted by the portal" in grants


def test_requests_grants_locations_and_entities_cannot_be_changed_here(
    demo_catalog: None,
) -> None:
    linus = signed_in("linus@example.com", "portal-admin")
    request = AccessRequestFactory.create(reason="On call this week")
    entity = Entity.objects.get(ref="component:default/payments-api")
    location = Location.objects.get()

    shown = linus.get(f"/admin/access/accessrequest/{request.pk}/change/")
    entity_page = linus.get(f"/admin/catalog/entity/{entity.pk}/change/")

    # Shown to read, with a link to the portal's own page, and no button to save anything.
    assert shown.status_code == 200
    assert "On call this week" in text(shown.content)
    assert "View on site" in text(shown.content)
    assert 'name="_save"' not in shown.content.decode()
    assert entity_page.status_code == 200
    assert "Payments API" in text(entity_page.content)
    assert 'name="_save"' not in entity_page.content.decode()
    for path in [
        "/admin/access/accessrequest/add/",
        f"/admin/access/accessrequest/{request.pk}/delete/",
        "/admin/access/rolemembership/add/",
        "/admin/catalog/location/add/",
        f"/admin/catalog/location/{location.pk}/delete/",
        "/admin/catalog/entity/add/",
        f"/admin/catalog/entity/{entity.pk}/delete/",
    ]:
        assert linus.get(path).status_code == 403, path
    # A change posted anyway changes nothing.
    posted = linus.post(
        f"/admin/access/accessrequest/{request.pk}/change/", {"state": "active", "reason": "x"}
    )
    assert posted.status_code == 403
    request.refresh_from_db()
    assert (request.state, request.reason) == (AccessRequest.State.PENDING, "On call this week")


def test_only_portal_admins_reach_the_admin_whatever_their_staff_flag() -> None:
    ada = signed_in("ada@example.com", "engineer")
    staff = Client()
    staff.force_login(UserFactory.create(email="bob@example.com", is_staff=True))

    assert ada.get("/admin/", follow=True).status_code == 403
    assert staff.get("/admin/", follow=True).status_code == 403
    assert staff.get("/admin/access/accessrequest/", follow=True).status_code == 403


def listed(response: Any) -> str:
    """The rows of an admin list, as a person reads them (not its filters' choices)."""
    page = response.content.decode()
    assert response.status_code == 200
    start = page.index('<table id="result_list">')
    table = page[start : page.index("</table>", start)]
    return text(table.encode())
