"""Who may have a location read again through the API, and who learns where its files lie."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from access.policy import may_refresh_entity
from catalog.models import Entity
from catalog.services import location_refresh, location_register
from portal.auth.bearer import Principal
from portal.celery import app as celery_app
from portal.models import User
from tests.helpers import signed_in

pytestmark = pytest.mark.django_db

TEAM = """\
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: team-x}
spec: {type: team, children: []}
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata: {name: grace}
spec: {profile: {email: grace@example.com}, memberOf: [team-x]}
"""

SERVICE = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: x, description: before}
spec: {type: service, lifecycle: production, owner: team-x}
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A folder location holding team-x, Grace in it, and the service x team-x owns."""
    (tmp_path / "team.yaml").write_text(TEAM)
    (tmp_path / "services").mkdir()
    (tmp_path / "services" / "x.yaml").write_text(SERVICE)
    location_refresh(
        location=location_register(target=str(tmp_path), allow_kinds=["User", "Group"])
    )
    return tmp_path


def _refresh(client: Any) -> Any:
    return client.post(
        "/api/catalog/refresh",
        {"entityRef": "component:default/x"},
        content_type="application/json",
    )


def test_an_owner_queues_a_refresh_that_a_worker_then_runs(
    folder: Path, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    (folder / "services" / "x.yaml").write_text(SERVICE.replace("before", "after"))

    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = _refresh(signed_in("grace@example.com"))

    assert response.status_code == 200
    # Answered before anything was read: the request does not wait for the location.
    assert Entity.objects.get(name="x").description == "before"
    assert len(queued) == 1
    celery_app.conf.task_always_eager = True
    try:
        queued[0]()
    finally:
        celery_app.conf.task_always_eager = False
    assert Entity.objects.get(name="x").description == "after"


def test_someone_who_does_not_own_the_entity_may_not_refresh_it(
    folder: Path, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = _refresh(signed_in("ada@example.com"))

    assert response.status_code == 403
    assert response.json()["error"]["message"] == (
        "only component:default/x's owners and portal admins may refresh it"
    )
    assert queued == []


def test_a_portal_admin_may_refresh_any_entity(
    folder: Path, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    admin = signed_in("root@example.com", "portal-admin")
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = _refresh(admin)

    assert response.status_code == 200
    assert len(queued) == 1


def test_locations_show_file_paths_to_portal_admins_only(folder: Path) -> None:
    reader = signed_in("ada@example.com").get("/api/catalog/locations").json()
    admin = signed_in("root@example.com", "portal-admin").get("/api/catalog/locations").json()
    by_entity = signed_in("bob@example.com").get(
        "/api/catalog/locations/by-entity/component/default/x"
    )

    assert [item["data"]["target"] for item in admin] == [str(folder)]
    assert [item["data"]["type"] for item in reader] == ["file"]
    assert str(folder) not in str(reader)
    assert reader[0]["data"]["target"] == "(a path on the Atrium server, shown to portal admins)"
    assert str(folder) not in by_entity.content.decode()


def test_an_entity_page_names_the_file_of_its_problem_within_the_location(folder: Path) -> None:
    (folder / "services" / "x.yaml").write_text(SERVICE.replace("owner: team-x", "owner: 12"))
    location_refresh(location=Entity.objects.get(name="x").location)

    page = signed_in("ada@example.com").get("/catalog/default/component/x/").content.decode()

    assert "services/x.yaml:1: " in page
    assert str(folder) not in page


@pytest.mark.parametrize(
    ("scopes", "may"),
    [({"write:catalog"}, True), ({"read:catalog"}, False), (set(), False)],
)
def test_a_machine_client_refreshes_with_write_catalog_only(scopes: set[str], may: bool) -> None:
    machine = Principal(sub="m@clients", via="bearer", client_id="m", scopes=frozenset(scopes))

    assert may_refresh_entity(machine, None, owner_ref="group:default/team-x") is may


def test_a_persons_token_without_write_catalog_refreshes_nothing_even_for_an_owner(
    folder: Path,
) -> None:
    grace = User.objects.create_user(
        "auth0|grace", "grace@example.com", "Grace", email_verified=True
    )
    token = Principal(sub=grace.sub, via="bearer", scopes=frozenset({"read:catalog"}))
    session = Principal(sub=grace.sub, via="session", scopes=frozenset({"write:catalog"}))

    assert not may_refresh_entity(token, grace, owner_ref="group:default/team-x")
    assert may_refresh_entity(session, grace, owner_ref="group:default/team-x")
    assert not may_refresh_entity(session, grace, owner_ref="group:default/team-y")
