"""The policy's answers: the same through `user.has_perm`, and read once per request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from access.policy import (
    ADMINISTER_PORTAL,
    REQUEST_ACCESS,
    SEE_RESTRICTED,
    DecisionScope,
    Viewer,
    access_through,
    request_refusal,
    viewer_for,
)
from catalog.models import Entity
from catalog.services import location_refresh, location_register
from portal.models import User
from tests.helpers import PEOPLE, own_role, signed_in

pytestmark = pytest.mark.django_db


def restricted_components(count: int, *, start: int = 0) -> str:
    """Components that need ledger.viewer; the odd ones owned by team-payments."""
    roles = "{atrium.dev/required-roles: ledger.viewer}"
    return "---\n".join(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\n"
        f"metadata: {{name: ledger-{i}, annotations: {roles}}}\n"
        f"spec: {{type: service, lifecycle: production, owner: {OWNERS[i % 2]}}}\n"
        for i in range(start, start + count)
    )


OWNERS = ["team-ops", "team-payments"]


def load(tmp_path: Path, name: str, text: str) -> None:
    (tmp_path / name).write_text(text)
    location_refresh(
        location=location_register(target=str(tmp_path / name), allow_kinds=["User", "Group"])
    )


def test_has_perm_gives_the_policys_answers(tmp_path: Path) -> None:
    own_role("ledger.viewer", "team-payments")
    load(tmp_path, "people.yaml", PEOPLE)
    load(tmp_path, "ledger.yaml", restricted_components(2))
    signed_in("ada@example.com", "ledger.viewer")
    signed_in("grace@example.com")
    signed_in("bob@example.com", "engineer")
    signed_in("linus@example.com", "portal-admin")
    ada, grace, bob, linus = (
        User.objects.get(email=f"{who}@example.com") for who in ("ada", "grace", "bob", "linus")
    )
    ops_owned = Entity.objects.get(name="ledger-0")  # owner team-ops
    payments_owned = Entity.objects.get(name="ledger-1")  # owner team-payments

    assert ada.has_perm(SEE_RESTRICTED, ops_owned)  # holds the required role
    assert grace.has_perm(SEE_RESTRICTED, payments_owned)  # her group owns it
    assert not grace.has_perm(SEE_RESTRICTED, ops_owned)
    assert not bob.has_perm(SEE_RESTRICTED, ops_owned)
    assert linus.has_perm(SEE_RESTRICTED, ops_owned) and linus.has_perm(ADMINISTER_PORTAL)
    assert bob.has_perm(REQUEST_ACCESS, ops_owned)  # a role he lacks
    assert not ada.has_perm(REQUEST_ACCESS, ops_owned)  # she holds the only one it needs
    assert not bob.has_perm(ADMINISTER_PORTAL) and not bob.has_perm("access.change_role")
    assert linus.has_perm("access.view_rolemembership")  # admins have the Django admin


def test_nobody_decides_their_own_request_whatever_they_hold() -> None:
    grace_ref, ada_ref = "user:default/grace", "user:default/ada"
    admin_who_asked = Viewer(sub="auth0|linus", user_refs=frozenset({grace_ref}), is_admin=True)
    owner = Viewer(sub="auth0|grace", user_refs=frozenset({grace_ref}), email="grace@example.com")
    named = Viewer(sub="auth0|ada", user_refs=frozenset({ada_ref}))
    admin = Viewer(sub="auth0|root", is_admin=True)

    def scope(*, others: bool = True, refusal: str = "") -> DecisionScope:
        return DecisionScope(
            role="payments.viewer", owners=("group:default/team-payments",),
            decider_refs=frozenset({grace_ref, ada_ref}),
            decider_emails=frozenset({"grace@example.com"} if others else set()),
            approvals_required=1, refusal=refusal,
        )  # fmt: skip

    def decides(viewer: Viewer, *, requester: str = "auth0|linus", **kwargs: Any) -> bool:
        return viewer.may_decide(
            requester_sub=requester, requester_email=f"{requester}@x", scope=scope(**kwargs)
        )

    assert not decides(admin_who_asked) and not decides(admin_who_asked, others=False)
    assert decides(owner) and decides(named)
    assert not decides(admin) and decides(admin, others=False)  # admins stand in for no one else
    assert not decides(owner, refusal="component:default/x no longer requires payments.viewer.")
    # Grace's other account asked: the same e-mail is the same person.
    assert not owner.may_decide(
        requester_sub="google-oauth2|grace", requester_email="GRACE@example.com", scope=scope()
    )


def test_a_persons_roles_and_groups_are_read_once_per_request(tmp_path: Path) -> None:
    load(tmp_path, "people.yaml", PEOPLE)
    grace = signed_in("grace@example.com", "engineer")
    person = User.objects.get(email="grace@example.com")

    with CaptureQueriesContext(connection) as asked:
        first = viewer_for(person)
        again = viewer_for(person)

    assert first is again and first.group_refs == {"group:default/team-payments"}
    assert len(asked.captured_queries) == 3  # roles; the catalog User; its groups
    assert grace.get("/catalog/").status_code == 200


def test_a_page_of_50_restricted_entities_costs_what_a_page_of_5_does(tmp_path: Path) -> None:
    load(tmp_path, "people.yaml", PEOPLE)
    grace = signed_in("grace@example.com", "engineer")
    load(tmp_path, "few.yaml", restricted_components(5))

    with CaptureQueriesContext(connection) as few:
        small = grace.get("/catalog/?kind=component&per_page=50").content.decode()
    load(tmp_path, "many.yaml", restricted_components(45, start=5))
    with CaptureQueriesContext(connection) as many:
        large = grace.get("/catalog/?kind=component&per_page=50").content.decode()

    assert small.count("ledger-") < large.count("ledger-")
    assert len(many.captured_queries) == len(few.captured_queries)


def test_an_entity_owned_by_a_user_shows_its_details_to_that_user(tmp_path: Path) -> None:
    """Backstage lets a User own an entity; that person is its owner in pages, API and filters."""
    load(tmp_path, "people.yaml", PEOPLE)
    load(
        tmp_path,
        "tool.yaml",
        "apiVersion: backstage.io/v1alpha1\nkind: Component\n"
        "metadata: {name: grace-tool, annotations: {atrium.dev/required-roles: ledger.viewer},"
        " links: [{url: 'https://tool.example.com', title: Console}]}\n"
        "spec: {type: service, lifecycle: production, owner: user:grace}\n",
    )
    grace = signed_in("grace@example.com")
    bob = signed_in("bob@example.com")
    api = "/api/catalog/entities/by-name/component/default/grace-tool"

    assert grace.get(api).json()["metadata"]["links"][0]["title"] == "Console"
    assert "links" not in bob.get(api).json()["metadata"]
    assert "https://tool.example.com" in grace.get("/catalog/default/component/grace-tool/").text
    assert "grace-tool" in grace.get("/catalog/?mine=true").text
    assert "grace-tool" not in bob.get("/catalog/?mine=true").text


def test_holding_any_declared_role_is_access_and_refuses_asking_for_another(
    tmp_path: Path,
) -> None:
    load(tmp_path, "tools.yaml", TWO_ROLES)
    entity = Entity.objects.prefetch_related("required_role_rows").get(name="tools")
    scope = DecisionScope(role="", owners=("group:default/team-payments",),
                          decider_refs=frozenset(), decider_emails=frozenset(),
                          approvals_required=1)  # fmt: skip

    def refusal(*, held: set[str], ending: frozenset[str] = frozenset(), role: str) -> str | None:
        viewer = Viewer(sub="auth0|bob", held_roles=frozenset(held), ending_roles=frozenset(ending))
        return request_refusal(viewer, entity, role, scope)

    assert refusal(held=set(), role="tools.viewer") is None
    assert refusal(held={"tools.admin"}, role="tools.viewer") == (
        "You have access through tools.admin already."
    )
    assert (
        refusal(held={"tools.admin"}, role="tools.admin")
        == "You hold tools.admin already, with no end."
    )
    # While the role held ends, asking for the other gives nothing: extend the one held.
    assert refusal(
        held={"tools.admin"}, ending=frozenset({"tools.admin"}), role="tools.viewer"
    ) == ("You have access through tools.admin already, until it ends: extend that instead.")
    assert (
        refusal(held={"tools.admin"}, ending=frozenset({"tools.admin"}), role="tools.admin") is None
    )
    # Extending one grant while the other lasts gives nothing either.
    both = {"tools.admin", "tools.viewer"}
    assert refusal(held=both, ending=frozenset({"tools.viewer"}), role="tools.viewer") == (
        "You have access through tools.admin already."
    )
    assert refusal(held=both, ending=frozenset(both), role="tools.viewer") is None
    # A role held that the entity does not declare gives no access to it.
    assert refusal(held={"ledger.viewer"}, role="tools.viewer") is None
    holder = Viewer(held_roles=frozenset(both | {"ledger.viewer"}))
    assert access_through(holder, required_roles=["tools.viewer", "tools.admin"]) == sorted(both)


def test_who_holds_an_entitys_roles_is_for_its_owners_deciders_and_admins() -> None:
    grace_ref = "user:default/grace"
    scope = DecisionScope(
        role="payments.viewer", owners=("group:default/team-payments",),
        decider_refs=frozenset({grace_ref}), decider_emails=frozenset({"grace@example.com"}),
        approvals_required=1,
    )  # fmt: skip
    owner_ref = "group:default/team-ops"

    def sees(viewer: Viewer) -> bool:
        return viewer.may_see_holders(owner_ref=owner_ref, scope=scope)

    assert sees(Viewer(sub="auth0|grace", user_refs=frozenset({grace_ref})))  # decides
    assert sees(Viewer(sub="auth0|ops", group_refs=frozenset({owner_ref})))  # owns the entity
    assert sees(Viewer(sub="auth0|root", is_admin=True))
    assert not sees(Viewer(sub="auth0|bob", held_roles=frozenset({"payments.viewer"})))
    assert not Viewer(sub="auth0|ops", group_refs=frozenset({owner_ref})).may_see_holders(
        owner_ref="", scope=scope
    )


TWO_ROLES = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: tools
  annotations: {atrium.dev/required-roles: "tools.viewer, tools.admin"}
spec: {type: service, lifecycle: production, owner: team-payments}
"""
