"""An entity whose Atrium annotations are unsound: its page and the request pages say so."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils.html import escape

from access.audit import Actor
from access.services import access_request_create
from catalog.models import Entity
from catalog.services import location_refresh, location_register
from portal.models import User
from tests.helpers import own_role, signed_in

pytestmark = pytest.mark.django_db

LEDGER = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: ledger
  annotations:
    atrium.dev/required-roles: ledger-reader
    atrium.dev/approvals-required: "{approvals}"
spec: {{type: service, lifecycle: production, owner: team-a}}
"""
UNSOUND = (
    "The approval annotations of component:default/ledger are malformed: "
    "atrium.dev/approvals-required: '²' is not a whole number from 1 to 10; requests cannot "
    "be decided until it is fixed"
)


def test_unsound_approval_annotations_refuse_requests_with_their_reason(tmp_path: Path) -> None:
    descriptor = tmp_path / "catalog-info.yaml"
    descriptor.write_text(LEDGER.format(approvals="1"))
    location = location_register(target=str(tmp_path))
    location_refresh(location=location)
    own_role("ledger-reader", "group:default/team-a")
    requester = signed_in("asker@example.com")
    asker = User.objects.get(email="asker@example.com")
    request, _ = access_request_create(
        requester=asker, entity=Entity.objects.get(name="ledger"), role="ledger-reader",
        reason="month end", duration=timedelta(days=1), actor=Actor(asker.sub),
    )  # fmt: skip
    # The owners then write an approval count no request can be decided by.
    descriptor.write_text(LEDGER.format(approvals="²"))
    location_refresh(location=location)
    admin = signed_in("admin@example.com", settings.PORTAL_ADMIN_ROLE)

    entity_page = requester.get("/catalog/default/component/ledger/")
    # Someone else asks for the role now: the form says why nobody can.
    new_request = signed_in("other@example.com").get(
        "/access/requests/new/?entity=component:default/ledger&role=ledger-reader"
    )
    pages = {
        "entity": entity_page,
        "new request": new_request,
        "request": requester.get(f"/access/requests/{request.pk}/"),
        "admin's view of it": admin.get(f"/access/requests/{request.pk}/"),
        "approvals": admin.get("/access/approvals/"),
        "my access": requester.get("/access/"),
    }

    assert {name: page.status_code for name, page in pages.items()} == dict.fromkeys(pages, 200)
    assert escape(UNSOUND) in entity_page.content.decode()
    assert escape(UNSOUND) in new_request.content.decode()
    assert escape(UNSOUND.split(": ", 1)[1]) in entity_page.content.decode()
