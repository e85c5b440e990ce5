"""Who did what: the actor a change is recorded under, the audit records it writes, and the
actors of records as the pages name them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import Q
from django.http import HttpRequest

from access.models import AccessRequest, AuditEvent, RoleMembership
from portal.models import User
from portal.ratelimits import request_address

SYSTEM_ACTOR = "system"


@dataclass(frozen=True)
class Actor:
    """Who caused a change, through what, from where: what the audit log records of it."""

    id: str  # a person's `sub`, `client:<id>` for a machine, `system` for the portal's jobs
    via: str = AuditEvent.Via.WEB
    ip: str | None = None
    user_agent: str = ""
    # A person's name and e-mail as they are now, kept with each record; blank for machines.
    name: str = ""
    email: str = ""

    @classmethod
    def of_request(cls, request: HttpRequest, who: User | str, via: str) -> Actor:
        """The caller of a page or the API — a person, or a machine client by its id — with
        the address and client they came from."""
        if isinstance(who, str):
            sub, name, email = who, "", ""
        else:
            sub, name, email = who.sub, who.name, who.email
        agent = request.headers.get("User-Agent", "")
        return cls(sub, via, request_address(request), agent, name=name, email=email)

    def event(
        self, action: str, target: str, correlation_id: str = "", **detail: Any
    ) -> AuditEvent:
        """An audit record by this actor, not yet written (for bulk writes)."""
        return AuditEvent(
            actor=self.id, actor_name=self.name[:255], actor_email=self.email[:254],
            via=self.via, action=action, target=target[:500], correlation_id=correlation_id,
            detail=detail, ip=self.ip, user_agent=self.user_agent[:500],
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


# --- reading the log -------------------------------------------------------------------------


def actor_matches(value: str) -> Q:
    """The records of an actor found by part of their name or e-mail (as recorded, or as the
    person is called now, for records from before names were kept), or by their id."""
    value = value.strip()
    people = User.objects.filter(Q(name__icontains=value) | Q(email__icontains=value))
    return (
        Q(actor_name__icontains=value)
        | Q(actor_email__icontains=value)
        | Q(actor__icontains=value)
        | Q(actor__in=people.values("sub"))
    )


def target_sub(target: str) -> str:
    """The id of the person a record is about, when its target ends with one: `… for auth0|…`
    (a request), `… → auth0|…` (a membership), or the id alone (a sign-in, an account)."""
    last = target.rsplit(" ", 1)[-1]
    return last if "|" in last else ""


def actors_named(events: Iterable[AuditEvent]) -> list[AuditEvent]:
    """The records, each with `shown_name` and `shown_email` for a page to name its actor by:
    as recorded, or, for a record from before names were kept, the person's current name and
    e-mail; and `target_person`, the (name, e-mail, id) of the person its target ends with.
    One query for them all; the records themselves are never changed."""
    events = list(events)
    unnamed = {e.actor for e in events if not (e.actor_name or e.actor_email)}
    wanted = (unnamed | {target_sub(e.target) for e in events}) - {""}
    found = {
        sub: (name, email)
        for sub, name, email in User.objects.filter(sub__in=wanted).values_list(
            "sub", "name", "email"
        )
    } if wanted else {}  # fmt: skip
    for event in events:
        recorded = (event.actor_name, event.actor_email)
        event.shown_name, event.shown_email = (
            recorded if any(recorded) else found.get(event.actor, ("", ""))
        )
        about = target_sub(event.target)
        if about in found:
            event.target_person = (*found[about], about)
    return events
