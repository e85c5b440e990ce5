"""Who did what: the actor a change is recorded under, and the audit records it writes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest

from access.models import AccessRequest, AuditEvent, RoleMembership
from portal.ratelimits import request_address

SYSTEM_ACTOR = "system"


@dataclass(frozen=True)
class Actor:
    """Who caused a change, through what, from where: what the audit log records of it."""

    name: str  # a person's `sub`, `client:<id>` for a machine, `system` for the portal's jobs
    via: str = AuditEvent.Via.WEB
    ip: str | None = None
    user_agent: str = ""

    @classmethod
    def of_request(cls, request: HttpRequest, name: str, via: str) -> Actor:
        """The caller of a page or the API, with the address and client they came from."""
        return cls(name, via=via, ip=request_address(request),
                   user_agent=request.headers.get("User-Agent", ""))  # fmt: skip

    def event(
        self, action: str, target: str, correlation_id: str = "", **detail: Any
    ) -> AuditEvent:
        """An audit record by this actor, not yet written (for bulk writes)."""
        return AuditEvent(
            actor=self.name, via=self.via, action=action, target=target[:500],
            correlation_id=correlation_id, detail=detail, ip=self.ip,
            user_agent=self.user_agent[:500],
        )  # fmt: skip

    def record(self, action: str, target: str, correlation_id: str = "", **detail: Any) -> None:
        self.event(action, target, correlation_id, **detail).save()


SYSTEM = Actor(SYSTEM_ACTOR, via=AuditEvent.Via.TASK)
SYNC = Actor(SYSTEM_ACTOR, via=AuditEvent.Via.SYNC)


def request_target(request: AccessRequest) -> str:
    return f"{request.role_name} on {request.entity_ref} for {request.requester.sub}"


def membership_events(
    *,
    added: Iterable[tuple[str, str]],
    removed: Iterable[RoleMembership],
    actor: Actor,
    correlation_id: str,
) -> list[AuditEvent]:
    """The audit records of memberships found in Auth0 and of memberships Auth0 no longer has:
    a portal grant so ended is "grant.ended", anything else "role.removed"."""
    events = [
        actor.event("role.imported", f"{name} → {sub}", correlation_id, role=name, user=sub,
                    source="granted outside the portal")
        for sub, name in added
    ]  # fmt: skip
    for membership in removed:
        sub, name = membership.user.sub, membership.role.name
        ended_grant = membership.source == RoleMembership.Source.PORTAL_GRANT
        events.append(
            actor.event(
                "grant.ended" if ended_grant else "role.removed",
                f"{name} → {sub}",
                correlation_id,
                role=name,
                user=sub,
                reason="removed in Auth0",
                source=membership.source,
            )  # fmt: skip
        )
    return events
