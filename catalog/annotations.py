"""Atrium's own annotations: the Auth0 roles an entity requires and how requests for them go.

Backstage accepts any annotation value, so a descriptor with a malformed Atrium annotation is
still a valid entity; the problem is reported beside it. A malformed duration falls back to the
portal's default; malformed approvers or approval counts fail closed (`decisions_blocked`), since
guessing would hand the decision to people the owners did not name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from catalog.refs import EntityRef, EntityRefError, parse_entity_ref
from portal.durations import DurationError, duration_parse

REQUIRED_ROLES = "atrium.dev/required-roles"
MAX_ROLE_NAME = 255
# More roles than any entity needs; each is a row and a line of the entity's page.
MAX_REQUIRED_ROLES = 50
APPROVERS = "atrium.dev/approvers"
MAX_ACCESS_DURATION = "atrium.dev/max-access-duration"
APPROVALS_REQUIRED = "atrium.dev/approvals-required"
# As the role registry's `minApprovals`: each request keeps its count in a small integer.
MOST_APPROVALS = 10


@dataclass(frozen=True)
class AccessAnnotations:
    required_roles: tuple[str, ...] = ()
    # Empty means "the owner decides" (SPEC's default).
    approvers: tuple[EntityRef, ...] = ()
    max_access_duration: timedelta | None = None
    approvals_required: int = 1
    problems: tuple[str, ...] = field(default=())
    decisions_blocked: bool = False
    # The annotation named a role. Stays true when every role it named was left out as
    # malformed: a typo in the annotation must not open what its author meant to close.
    restricted: bool = False


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _shown(value: str) -> str:
    """A value as a problem quotes it: whole when short, its start and length when not."""
    if len(value) <= 100:
        return repr(value)
    return f"{value[:60]!r}… ({len(value):,} characters)"


def access_annotations(entity: dict[str, Any]) -> AccessAnnotations:
    annotations: dict[str, str] = entity["metadata"].get("annotations") or {}
    namespace = entity["metadata"].get("namespace", "default")
    problems: list[str] = []
    blocked = False

    roles = tuple(dict.fromkeys(_split(annotations.get(REQUIRED_ROLES, ""))))
    restricted = bool(roles)
    if any(len(role) > MAX_ROLE_NAME for role in roles):
        # Longer than any Auth0 role name, and than the column that stores it: left out.
        roles = tuple(role for role in roles if len(role) <= MAX_ROLE_NAME)
        problems.append(
            f"{REQUIRED_ROLES}: a role name may be at most {MAX_ROLE_NAME} characters"
            + (
                ""
                if roles
                else "; until it is fixed only the owner and portal admins see the "
                "entity's details, and its gateway routes let nobody through"
            )
        )
    if len(roles) > MAX_REQUIRED_ROLES:
        # The first ones still restrict the entity: fewer roles only ever show less.
        problems.append(
            f"{REQUIRED_ROLES}: {len(roles)} roles; an entity may require at most "
            f"{MAX_REQUIRED_ROLES}, and only the first {MAX_REQUIRED_ROLES} count"
        )
        roles = roles[:MAX_REQUIRED_ROLES]

    approvers: list[EntityRef] = []
    for raw in _split(annotations.get(APPROVERS, "")):
        try:
            ref = parse_entity_ref(raw, default_kind="Group", default_namespace=namespace)
        except EntityRefError as error:
            problems.append(f"{APPROVERS}: {error}")
            blocked = True
            continue
        if ref.kind.lower() not in {"group", "user"}:
            problems.append(f"{APPROVERS}: {_shown(raw)} is neither a group nor a user")
            blocked = True
            continue
        approvers.append(ref)

    duration = None
    raw_duration = annotations.get(MAX_ACCESS_DURATION)
    if raw_duration is not None:
        try:
            duration = duration_parse(str(raw_duration))
        except DurationError as error:
            problems.append(f"{MAX_ACCESS_DURATION}: {error}; the portal's default applies")

    approvals = 1
    raw_approvals = annotations.get(APPROVALS_REQUIRED)
    if raw_approvals is not None:
        # ASCII digits only: `²` is a digit to str.isdigit() and no number to int(); and
        # few of them, as int() refuses thousands of digits.
        text = str(raw_approvals).strip().lstrip("0")
        if text.isascii() and text.isdigit() and len(text) <= 2 and int(text) <= MOST_APPROVALS:
            approvals = int(text)
        else:
            problems.append(
                f"{APPROVALS_REQUIRED}: {_shown(raw_approvals)} is not a whole number from 1 to "
                f"{MOST_APPROVALS}; requests cannot be decided until it is fixed"
            )
            blocked = True

    return AccessAnnotations(
        required_roles=roles,
        approvers=tuple(approvers),
        max_access_duration=duration,
        approvals_required=approvals,
        problems=tuple(problems),
        decisions_blocked=blocked,
        restricted=restricted,
    )
