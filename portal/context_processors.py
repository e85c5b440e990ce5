"""Template context every page shares."""

from typing import Any

from django.http import HttpRequest

from access.policy import viewer_for
from access.review_selectors import reviews_overdue_for
from access.selectors import blocked_sync, count_to_decide
from catalog.templatetags.people import person_known
from portal.navigation import nav_items


def portal(request: HttpRequest) -> dict[str, Any]:
    # Kept for the request: a page renders more than one template with it (a table is one).
    shared: dict[str, Any] | None = getattr(request, "_atrium_context", None)
    if shared is None:
        shared = _portal(request)
        request._atrium_context = shared  # type: ignore[attr-defined]
    return shared


def _portal(request: HttpRequest) -> dict[str, Any]:

    # The viewer is the one the page's view asked for already (kept for the request).
    viewer = viewer_for(getattr(request, "user", None))
    is_admin = viewer.is_admin
    user = getattr(request, "user", None)
    if viewer.sub and user is not None:
        # The top bar names the person, linked to the catalog User their viewer found.
        person_known(request, user.email, viewer.user_refs)
    waiting = count_to_decide(viewer=viewer)
    return {
        "nav_items": nav_items(path=request.path, is_admin=is_admin, counts={"Approvals": waiting}),
        # Admins see, on every page, that the roles sync is stopped until someone looks.
        "blocked_sync": blocked_sync() if is_admin else None,
        # Owners and admins see, on every page, the access reviews past their due date.
        "overdue_reviews": reviews_overdue_for(viewer=viewer),
    }
