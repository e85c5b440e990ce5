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
APPROVERS = "atrium.dev/approvers"
MAX_ACCESS_DURATION = "atrium.dev/max-access-duration"
APPROVALS_REQUIRED = "atrium.dev/approvals-required"


@dataclass(frozen=True)
class AccessAnnotations:
    required_roles: tuple[str, ...] = ()
    # Empty means "the owner decides" (SPEC's default).
    approvers: tuple[EntityRef, ...] = ()
    max_access_duration: timedelta | None = None
    approvals_required: int = 1
    problems: tuple[str, ...] = field(default=())
    decisions_blocked: bool = False

    @property
    def restricted(self) -> bool:
        return bool(self.required_roles)


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def access_annotations(entity: dict[str, Any]) -> AccessAnnotations:
    annotations: dict[str, str] = entity["metadata"].get("annotations") or {}
    namespace = entity["metadata"].get("namespace", "default")
    problems: list[str] = []
    blocked = False

    roles = tuple(dict.fromkeys(_split(annotations.get(REQUIRED_ROLES, ""))))
    if any(len(role) > MAX_ROLE_NAME for role in roles):
        # Longer than any Auth0 role name, and than the column that stores it: left out.
        problems.append(f"{REQUIRED_ROLES}: a role name may be at most {MAX_ROLE_NAME} characters")
        roles = tuple(role for role in roles if len(role) <= MAX_ROLE_NAME)

    approvers: list[EntityRef] = []
    for raw in _split(annotations.get(APPROVERS, "")):
        try:
            ref = parse_entity_ref(raw, default_kind="Group", default_namespace=namespace)
        except EntityRefError as error:
            problems.append(f"{APPROVERS}: {error}")
            blocked = True
            continue
        if ref.kind.lower() not in {"group", "user"}:
            problems.append(f"{APPROVERS}: {raw!r} is neither a group nor a user")
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
        if raw_approvals.strip().isdigit() and int(raw_approvals) >= 1:
            approvals = int(raw_approvals)
        else:
            problems.append(
                f"{APPROVALS_REQUIRED}: {raw_approvals!r} is not a whole number of at least 1; "
                "requests cannot be decided until it is fixed"
            )
            blocked = True

    return AccessAnnotations(
        required_roles=roles,
        approvers=tuple(approvers),
        max_access_duration=duration,
        approvals_required=approvals,
        problems=tuple(problems),
        decisions_blocked=blocked,
    )
