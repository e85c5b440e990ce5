"""The access pages: my roles, and for portal admins the mirrored roles and the sync."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST
from django_tables2 import RequestConfig

from access.auth0 import Auth0Error
from access.models import AuditEvent, Role
from access.policy import viewer_for, viewer_forget
from access.selectors import (
    entities_declaring,
    mirror_state,
    role_members,
    role_memberships_of,
    roles_page,
    sync_history,
)
from access.services import role_memberships_refresh_from_auth0
from access.tables import MemberTable, RoleTable
from catalog.refs import parse_entity_ref
from portal.models import User

MEMBERS_PER_PAGE = 50


def _person(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


def _require_admin(request: HttpRequest) -> None:
    if not viewer_for(_person(request)).is_admin:
        raise PermissionDenied("the roles mirror is for portal admins")


@require_GET
def overview(request: HttpRequest) -> HttpResponse:
    """My roles, where each came from and when it ends."""
    context = {"memberships": role_memberships_of(user=_person(request))}
    return render(request, "access/overview.html", context)


@require_POST
def refresh_my_roles(request: HttpRequest) -> HttpResponse:
    """Ask Auth0 what I hold now, rather than wait for the next sync or sign-in."""
    person = _person(request)
    try:
        outcome = role_memberships_refresh_from_auth0(
            user=person,
            via=AuditEvent.Via.WEB,
            ip=request.META.get("REMOTE_ADDR"),
            user_agent=request.headers.get("User-Agent", "")[:500],
        )
    except Auth0Error as error:
        messages.error(request, f"Auth0 could not tell us your roles, so nothing changed: {error}")
        return redirect("access:overview")
    viewer_forget(person)
    changes = [f"added {name}" for name in outcome.added]
    changes += [f"removed {name} (no longer held in Auth0)" for name in outcome.removed]
    if changes:
        messages.success(
            request, "Your roles were refreshed from Auth0: " + "; ".join(changes) + "."
        )
    else:
        messages.info(request, "Your roles already match Auth0.")
    return redirect("access:overview")


@require_GET
def roles(request: HttpRequest) -> HttpResponse:
    """Admins: every mirrored role, how current the mirror is, and the recent syncs."""
    _require_admin(request)
    table = RoleTable(roles_page())
    RequestConfig(request, paginate=False).configure(table)
    context = {
        "table": table,
        "mirror": mirror_state(),
        "history": sync_history(),
        "sync_interval": settings.ROLE_SYNC_INTERVAL,
    }
    return render(request, "access/roles.html", context)


@require_GET
def role_detail(request: HttpRequest, name: str) -> HttpResponse:
    """Admins: who holds a role, since how, and the entities that require it."""
    _require_admin(request)
    role = get_object_or_404(Role, name=name)
    table = MemberTable(role_members(role=role))
    RequestConfig(request, paginate={"per_page": MEMBERS_PER_PAGE}).configure(table)
    declaring = [
        {"ref": ref, "name": entity_name, "url": parse_entity_ref(ref).url}
        for ref, entity_name in entities_declaring(role_name=role.name)
    ]
    context = {"role": role, "table": table, "declaring": declaring}
    return render(request, "access/role_detail.html", context)
