"""axe-core on the main pages of each persona, in Chromium under the portal's
Content-Security-Policy, at laptop and phone width: no serious or critical violation on any,
and a focus ring on every control the keyboard reaches."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, ViewportSize

from tests.browser.conftest import demo_seed
from tests.helpers import browser_sign_in

pytestmark = pytest.mark.django_db(transaction=True)

ADA, GRACE, LINUS = "ada@example.com", "grace@example.com", "linus@example.com"
ENTITY_PAGE = "/catalog/default/component/payments-api/"
REQUEST_FORM = (
    "/access/requests/new/?entity=component%3Adefault%2Fpayments-api&role=payments.viewer"
)

BREAK_GLASS_FORM = "/access/requests/new/?entity=component%3Adefault%2Fcart-service"

VIEWPORTS: list[ViewportSize] = [{"width": 1280, "height": 800}, {"width": 390, "height": 844}]
# (who signs in, or "" for nobody; the page), one test each, so that CI names every page that
# fails rather than the first.
PAGES = [
    pytest.param("", "/", id="signed-out-home"),
    pytest.param(ADA, "/", id="engineer-home"),
    pytest.param(ADA, "/catalog/", id="engineer-catalog"),
    pytest.param(ADA, ENTITY_PAGE, id="engineer-entity"),
    pytest.param(ADA, REQUEST_FORM, id="engineer-request-form"),
    pytest.param(ADA, "/access/", id="engineer-my-access"),
    pytest.param(ADA, "/authz/explain", id="engineer-explain-gateway-decision"),
    pytest.param(GRACE, "/access/approvals/", id="owner-approvals"),
    # Checkout's request form, with the red break-glass form the demo opens to team-payments.
    pytest.param(GRACE, BREAK_GLASS_FORM, id="owner-break-glass-form"),
    pytest.param(GRACE, "/access/reviews/", id="owner-reviews"),
    pytest.param(GRACE, "/access/reviews/{review}/", id="owner-review"),
    pytest.param(GRACE, "/access/reviews/{review}/evidence/", id="owner-review-evidence"),
    pytest.param(LINUS, "/access/roles/", id="admin-roles"),
    pytest.param(LINUS, "/access/roles/payments.viewer/", id="admin-role"),
    pytest.param(LINUS, "/access/audit/", id="admin-audit"),
    pytest.param(LINUS, "/admin/", id="admin-django-admin"),
    pytest.param(LINUS, "/admin/access/accessrequest/", id="admin-django-admin-requests"),
]


@pytest.mark.parametrize(("email", "path"), PAGES)
def test_axe_finds_no_serious_violation_and_every_control_shows_its_focus(
    page: Page,
    browser: Browser,
    portal: Any,
    axe: Callable[[Page], None],
    focus_rings: Callable[[Page], None],
    email: str,
    path: str,
) -> None:
    demo_seed()
    # Ada's request waits for Grace, so that the pages show one rather than an empty list.
    ada_asks_for_payments_viewer(browser, portal.url)
    if path.startswith("/access/reviews/"):
        path = path.format(review=a_review_with_decisions())
    if email:
        browser_sign_in(page, portal.url, email)

    page.goto(f"{portal.url}{path}")

    # A laptop, then a phone: the same page laid out again for a narrow screen.
    for viewport in VIEWPORTS:
        page.set_viewport_size(viewport)
        axe(page)
        if not path.startswith("/admin/"):  # Django's own admin lays itself out
            # Nothing makes the page scroll sideways: tables become stacked rows.
            wide = page.evaluate("document.documentElement.scrollWidth")
            assert wide <= viewport["width"], f"{path} is {wide}px wide at {viewport['width']}px"
    focus_rings(page)


def ada_asks_for_payments_viewer(browser: Browser, base_url: str) -> None:
    from access.audit import Actor
    from access.models import AuditEvent
    from access.services import access_request_create
    from catalog.models import Entity
    from portal.models import User

    # Signing in makes Ada the person the devtenant knows, with her roles.
    context = browser.new_context()
    browser_sign_in(context.new_page(), base_url, ADA)
    context.close()
    ada = User.objects.get(email=ADA)
    access_request_create(
        requester=ada,
        entity=Entity.objects.get(ref="component:default/payments-api"),
        role="payments.viewer",
        reason="On call this week",
        duration=None,
        actor=Actor(ada.sub, via=AuditEvent.Via.WEB),
    )


def a_review_with_decisions() -> int:
    """An open review of payments.viewer: Ada kept, Linus removed (failed in Auth0), one more
    undecided and flagged, so that every kind of row is on the page."""
    from django.utils import timezone

    from access.audit import SYSTEM
    from access.models import AccessReview, AccessReviewItem, Role, RoleMembership
    from access.reviews import review_open
    from portal.models import User

    role = Role.objects.get(name="payments.viewer")
    ada = User.objects.get(email=ADA)
    linus, _ = User.objects.get_or_create(
        sub="auth0|a11y-linus", defaults={"email": LINUS, "name": "Linus Torvalds"}
    )
    idle, _ = User.objects.get_or_create(
        sub="auth0|a11y-idle", defaults={"email": "idle@example.com", "name": "Idle"}
    )
    for user, source in ((ada, "portal_grant"), (linus, "auth0"), (idle, "sign_in")):
        RoleMembership.objects.get_or_create(user=user, role=role, defaults={"source": source})
    review = review_open(role=role, kind=AccessReview.Kind.SCHEDULED, actor=SYSTEM)
    now = timezone.now()
    AccessReviewItem.objects.filter(review=review, user=ada).update(
        decision="keep", decided_at=now, note="on call"
    )
    AccessReviewItem.objects.filter(review=review, user=linus).update(
        decision="remove", decided_at=now, removal="failed", removal_error="Auth0 answered 503"
    )
    return review.pk
