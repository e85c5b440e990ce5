"""People and groups come only from locations allowed them, as Backstage's `catalog.rules`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from access.models import AuditEvent
from catalog.models import Entity, Location
from catalog.selectors import group_member_refs, person_refs, user_emails
from catalog.services import (
    LocationRefused,
    location_import,
    location_refresh,
    location_register,
)
from portal.models import User

pytestmark = pytest.mark.django_db
ORG_KINDS = ["User", "Group"]

ORG = """\
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: team-payments}
spec: {type: team, children: [], members: [carol]}
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata: {name: grace}
spec:
  profile: {email: Grace@Example.com}
  memberOf: [team-payments]
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata: {name: carol}
spec:
  profile: {email: carol@example.com}
  memberOf: []
"""

# What anyone who can add a descriptor to some repository could write.
SPOOF = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: innocent-service}
spec: {type: service, lifecycle: production, owner: team-payments}
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata: {name: mallory}
spec:
  profile: {email: ada@example.com}
  memberOf: [team-payments]
"""


def person(email: str, *, verified: bool = True) -> User:
    return User.objects.create_user(f"auth0|{email}", email, "", email_verified=verified)


def not_allowed(target: Path | str, kind: str = "User") -> str:
    return (
        f"NotAllowedError: {kind} entities may not come from the location {target}; "
        "a portal admin can allow User and Group for it"
    )


@pytest.fixture
def org(tmp_path: Path) -> Path:
    """The organisation's people and teams, registered where they may be defined."""
    (tmp_path / "org.yaml").write_text(ORG)
    location_import(target=str(tmp_path / "org.yaml"), allow_kinds=ORG_KINDS)
    return tmp_path / "org.yaml"


def test_a_spoofed_user_elsewhere_is_refused_and_makes_nobody_a_member(
    org: Path, tmp_path: Path
) -> None:
    (tmp_path / "spoof.yaml").write_text(SPOOF)

    report = location_import(target=str(tmp_path / "spoof.yaml"))

    assert not Entity.objects.filter(ref="user:default/mallory").exists()
    # The rest of the file is read.
    assert Entity.objects.filter(ref="component:default/innocent-service").exists()
    location = Location.objects.get(target=str(tmp_path / "spoof.yaml"))
    assert location.last_outcome == Location.Outcome.PROBLEMS
    assert location.last_problems == [
        f"{tmp_path / 'spoof.yaml'}:2: {not_allowed(location.target)}"
    ]
    (problem,) = report.problems
    assert (problem.ref, problem.field) == ("user:default/mallory", "kind")
    assert person_refs(user=person("ada@example.com")) == ([], [])


def test_a_user_from_a_location_allowed_people_is_who_they_are(org: Path) -> None:
    grace = person("grace@example.com")
    carol = person("carol@example.com")

    assert person_refs(user=grace) == (["user:default/grace"], ["group:default/team-payments"])
    # Declared on the group's side (`members: [carol]`) counts as much.
    assert person_refs(user=carol) == (["user:default/carol"], ["group:default/team-payments"])


def test_an_email_auth0_did_not_verify_matches_no_one(org: Path) -> None:
    assert person_refs(user=person("grace@example.com", verified=False)) == ([], [])


def test_a_user_read_before_its_location_lost_the_permission_goes_at_the_next_refresh(
    org: Path,
) -> None:
    """Existing locations get no permission from the migration; an admin may also take it
    away. Either way the people and groups go, and the location says why."""
    grace = person("grace@example.com")
    Location.objects.update(allows_users=False, allows_groups=False)  # as the migration leaves it

    # Even before a refresh, nothing of that location says who anyone is.
    assert person_refs(user=grace) == ([], [])
    report = location_refresh(location=Location.objects.get())

    assert report.removed == ["group:default/team-payments", "user:default/carol",
                              "user:default/grace"]  # fmt: skip
    assert not Entity.objects.exists()
    problems = Location.objects.get().last_problems
    assert f"{org}:1: {not_allowed(org, 'Group')}" in problems
    assert f"{org}:2: {not_allowed(org)}" in problems


def test_an_invalid_document_of_a_kind_no_longer_allowed_keeps_nothing(org: Path) -> None:
    """A rejected document normally keeps its entity's last good version; not one its location
    may no longer define."""
    org.write_text(ORG.replace("memberOf: [team-payments]", "memberOf: team-payments"))

    location_import(target=str(org), allow_kinds=["Group"])

    assert not Entity.objects.filter(kind="User").exists()
    assert Entity.objects.filter(ref="group:default/team-payments").exists()


def test_a_nested_locations_targets_get_no_more_than_the_location_that_named_them(
    tmp_path: Path,
) -> None:
    (tmp_path / "people").mkdir()
    (tmp_path / "people" / "org.yaml").write_text(ORG + "---\n" + SPOOF.split("---\n")[0])
    (tmp_path / "catalog-info.yaml").write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {name: everything}\n"
        "spec: {targets: [./people/org.yaml]}\n"
    )
    top = tmp_path / "catalog-info.yaml"

    report = location_import(target=str(top))

    assert sorted(Entity.objects.values_list("ref", flat=True)) == [
        "component:default/innocent-service",
        "location:default/everything",
    ]
    nested = tmp_path / "people" / "org.yaml"
    assert f"{nested}:2: {not_allowed(top)}" in [str(problem) for problem in report.problems]
    assert person_refs(user=person("grace@example.com")) == ([], [])

    location_import(target=str(top), allow_kinds=ORG_KINDS)

    assert Entity.objects.get(ref="user:default/grace").parent_ref == "location:default/everything"


def test_who_is_in_a_group_and_their_emails_come_only_from_trusted_entities(
    org: Path, tmp_path: Path, django_assert_num_queries: Any
) -> None:
    """What the access app asks to know who decides: members and e-mails, in one query each
    however many refs."""
    # Teams only: its Group may name members, its Users are refused.
    (tmp_path / "teams.yaml").write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {name: team-ops}\n"
        "spec: {type: team, children: [], members: [dave, grace]}\n---\n"
        "apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata: {name: dave}\n"
        "spec: {profile: {email: dave@example.com}, memberOf: [team-payments]}\n"
    )
    location_import(target=str(tmp_path / "teams.yaml"), allow_kinds=["group"])
    asked = ["group:default/team-payments", "group:default/team-ops", "group:default/nobody",
             "user:default/dave", "User:default/Grace"]  # fmt: skip

    with django_assert_num_queries(1):
        members = group_member_refs(group_refs=asked)
    with django_assert_num_queries(1):
        emails = user_emails(user_refs=["user:default/grace", "user:default/carol",
                                        "user:default/dave", "user:default/nobody"])  # fmt: skip

    assert members == {
        "group:default/team-payments": {"user:default/grace", "user:default/carol"},
        "group:default/team-ops": {"user:default/dave", "user:default/grace"},
        "group:default/nobody": set(),
        "user:default/dave": {"user:default/dave"},
        "user:default/grace": {"user:default/grace"},
    }
    # Dave is only a name in a group: no trusted User holds his e-mail.
    assert emails == {"user:default/grace": "grace@example.com",
                      "user:default/carol": "carol@example.com"}  # fmt: skip


def test_a_membership_counts_only_in_a_group_a_trusted_location_defines(tmp_path: Path) -> None:
    (tmp_path / "people.yaml").write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata: {name: grace}\n"
        "spec: {profile: {email: grace@example.com}, memberOf: [team-payments, team-ghost]}\n"
    )
    (tmp_path / "teams.yaml").write_text(ORG.split("---\n")[0])
    location_import(target=str(tmp_path / "people.yaml"), allow_kinds=["User"])
    location_import(target=str(tmp_path / "teams.yaml"), allow_kinds=["Group"])
    grace = person("grace@example.com")

    assert person_refs(user=grace) == (["user:default/grace"], ["group:default/team-payments"])

    location_register(target=str(tmp_path / "teams.yaml"), allow_kinds=[])

    assert person_refs(user=grace) == (["user:default/grace"], [])


def test_registering_keeps_or_sets_the_kinds_and_refuses_others(tmp_path: Path) -> None:
    target = str(tmp_path / "org.yaml")

    location = location_register(target=target, allow_kinds=["user", "GROUP", "Component"])
    kept = location_register(target=target)
    with pytest.raises(LocationRefused) as refused:
        location_register(target=target, allow_kinds=["User", "Template"])
    narrowed = location_register(target=target, allow_kinds=["Group"])

    assert location.allow_kinds == kept.allow_kinds == ["User", "Group"]
    assert str(refused.value) == (
        "'Template' is not a kind a location can be allowed: only User and Group can be "
        "(Component, API, Resource, System, Domain, Location come from any location)"
    )
    assert narrowed.allow_kinds == ["Group"]
    assert narrowed.may_define("group") and narrowed.may_define("API")
    assert not narrowed.may_define("User")
    assert location_register(target=str(tmp_path / "new.yaml")).allow_kinds == []


def test_import_catalog_allows_kinds_and_the_audit_log_says_when_they_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "org.yaml").write_text(ORG)
    target = str(tmp_path / "org.yaml")

    call_command("import_catalog", "--allow-kinds", "User,Group", target)
    call_command("import_catalog", target)  # keeps what the location has
    with pytest.raises(SystemExit) as exited:
        call_command("import_catalog", "--allow-kinds", "", target)

    assert exited.value.code == 1
    assert not_allowed(target) in capsys.readouterr().err
    assert not Entity.objects.filter(kind__in=ORG_KINDS).exists()
    details = [event.detail for event in AuditEvent.objects.order_by("id")]
    assert [detail["allow_kinds"] for detail in details] == [ORG_KINDS, ORG_KINDS, []]
    assert [detail.get("allow_kinds_before") for detail in details] == [None, None, ORG_KINDS]


def test_import_catalog_refuses_a_kind_it_cannot_allow(tmp_path: Path) -> None:
    (tmp_path / "org.yaml").write_text(ORG)

    with pytest.raises(CommandError) as refused:
        call_command("import_catalog", "--allow-kinds", "User,Robot", str(tmp_path / "org.yaml"))

    assert refused.value.returncode == 1
    assert "'Robot' is not a kind a location can be allowed" in str(refused.value)
    assert not Location.objects.exists() and not AuditEvent.objects.exists()
