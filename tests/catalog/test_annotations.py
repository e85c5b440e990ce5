"""Atrium's annotations are read as SPEC says, and malformed ones fail safe."""

from datetime import timedelta
from typing import Any

from catalog.annotations import access_annotations


def entity(**annotations: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "payments-api",
            "namespace": "default",
            "annotations": {f"atrium.dev/{k.replace('_', '-')}": v for k, v in annotations.items()},
        }
    }


def test_an_entity_without_annotations_is_open() -> None:
    access = access_annotations(entity())

    assert not access.restricted
    assert access.approvals_required == 1
    assert access.approvers == ()
    assert access.problems == ()


def test_required_roles_approvers_duration_and_count_are_read() -> None:
    access = access_annotations(
        entity(
            required_roles=" payments.viewer, payments.admin ,,payments.viewer",
            approvers="group:team-payments, user:security/grace, team-sre",
            max_access_duration="P30D",
            approvals_required="2",
        )
    )

    assert access.required_roles == ("payments.viewer", "payments.admin")
    assert [a.key for a in access.approvers] == [
        "group:default/team-payments",
        "user:security/grace",
        "group:default/team-sre",
    ]
    assert access.max_access_duration == timedelta(days=30)
    assert access.approvals_required == 2
    assert not access.decisions_blocked


def test_a_malformed_duration_falls_back_to_the_default_with_a_problem() -> None:
    access = access_annotations(entity(required_roles="x", max_access_duration="30 days"))

    assert access.max_access_duration is None
    assert access.problems == (
        "atrium.dev/max-access-duration: '30 days' is not an ISO 8601 duration such as P30D or "
        "PT12H; the portal's default applies",
    )
    assert not access.decisions_blocked


def test_malformed_approvers_or_counts_block_decisions_rather_than_guess() -> None:
    bad_count = access_annotations(entity(required_roles="x", approvals_required="two"))
    bad_approver = access_annotations(entity(required_roles="x", approvers="component:payments"))

    assert bad_count.decisions_blocked
    assert bad_approver.decisions_blocked
    assert bad_approver.approvers == ()
    assert "neither a group nor a user" in bad_approver.problems[0]


def test_a_role_name_too_long_to_store_is_left_out_with_a_problem() -> None:
    access = access_annotations(entity(required_roles="payments.viewer, " + "r" * 256))

    assert access.required_roles == ("payments.viewer",)
    assert access.problems == (
        "atrium.dev/required-roles: a role name may be at most 255 characters",
    )


def test_an_annotation_whose_every_role_is_left_out_still_restricts() -> None:
    access = access_annotations(entity(required_roles="r" * 256 + ", " + "s" * 300))

    assert access.required_roles == ()
    assert access.restricted
    assert "its gateway routes let nobody through" in access.problems[0]
    assert not access_annotations(entity(required_roles=" , ")).restricted
