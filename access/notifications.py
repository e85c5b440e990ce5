"""Telling people of a request's events and of access reviews: who is told, the mail they get,
the Slack line."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import httpx
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from access.audit import SYSTEM
from access.models import AccessRequest, AccessReview
from access.review_selectors import review_progress, review_scope
from access.selectors import decision_scope, portal_admin_emails
from portal.templatetags.atrium import exact_time

SUBJECTS = {
    "requested": "{requester} asks for {role}",
    "approved": "Your request for {role} was approved",
    "denied": "Your request for {role} was denied",
    "active": "You now hold {role}",
    "reminder": "Your access to {role} ends {ends}",
    "expired": "Your access to {role} has ended",
    "revoked": "Your access to {role} was revoked",
    "lapsed": "Your request for {role} lapsed without a decision",
    "auto_approved": "{requester} was given {role} at once by rule",
    "break_glass": "BREAK-GLASS: {requester} took {role}",
}


def event_recipients(*, request: AccessRequest, event: str) -> list[str]:
    """A new request goes to those who decide it (the portal's admins when nobody else may);
    an auto-approval to the role's owners, who would have decided it; a break-glass use to
    every owner and every portal admin at once; everything else to the person who asked."""
    if event in ("requested", "auto_approved", "break_glass"):
        scope = decision_scope(entity_ref=request.entity_ref, role=request.role_name)
        owners = sorted(scope.decider_emails - {request.requester.email.lower()})
        if event == "break_glass":
            admins = set(portal_admin_emails()) - {request.requester.email}
            return sorted(set(owners) | admins)
        return owners or portal_admin_emails()
    return [request.requester.email] if request.requester.email else []


def request_event_notify(*, request_id: int, event: str) -> int:
    """Mail (plain text and HTML) the people an event concerns, and Slack if configured; how
    many were mailed. A mail server or Slack that fails raises (OSError, httpx.HTTPError), for
    the caller to try again."""
    request = AccessRequest.objects.select_related("requester").get(pk=request_id)
    recipients = event_recipients(request=request, event=event)
    base = settings.PORTAL_BASE_URL.rstrip("/")
    context: dict[str, Any] = {
        "request": request,
        "event": event,
        "request_url": f"{base}/access/requests/{request.pk}/",
        "approvals_url": f"{base}/access/approvals/",
        "extend_url": f"{base}/access/requests/new/?"
        + urlencode(
            {"entity": request.entity_ref, "role": request.role_name, "extend": request.pk}
        ),  # fmt: skip
    }
    subject = "[Atrium] " + SUBJECTS[event].format(
        requester=request.requester, role=request.role_name,
        ends=exact_time(request.expires_at) or "soon",
    )  # fmt: skip
    _send(subject=subject, template="access/mail/event", context=context,
          recipients=recipients, url=context["request_url"])  # fmt: skip
    return len(recipients)


def _send(
    *, subject: str, template: str, context: dict[str, Any], recipients: list[str], url: str
) -> None:
    """The mail (`template`.txt and .html) to the recipients, if any, and the subject with its
    link to Slack, if configured; a failure of either raises for the caller to try again."""
    if recipients:
        mail = EmailMultiAlternatives(
            subject=subject, body=render_to_string(f"{template}.txt", context), to=recipients
        )
        mail.attach_alternative(render_to_string(f"{template}.html", context), "text/html")
        mail.send()
    if settings.SLACK_WEBHOOK_URL:
        text = f"{subject} — {url}"
        httpx.post(settings.SLACK_WEBHOOK_URL, json={"text": text}, timeout=10).raise_for_status()


# --- access reviews --------------------------------------------------------------------------

REVIEW_SUBJECTS = {
    "opened": "Review who holds {role}, due {due}",
    "reminder": "Review who holds {role}, due {due}",
    "overdue": "The review of who holds {role} is overdue (due {due})",
    "policy_removed": "{role}: {count} holders not reviewed in time were removed",
}


def review_recipients(*, review: AccessReview) -> list[str]:
    """The role's owners, who review it (without the holder a review of one use is about);
    the portal's admins too when a holding is one no owner but its holder could review, and
    alone when no owner can review anything."""
    scope = review_scope(role_name=review.role.name)
    about = set(review.items.exclude(email="").values_list("email", flat=True)[:2])
    own = about if review.kind == AccessReview.Kind.USE and len(about) == 1 else set()
    recipients = set(scope.reviewer_emails - own)
    # An owner's own holding that no other owner may review waits for the portal's admins
    # (policy.may_review): they hear of the review too.
    owners_holding = review.items.filter(decision="", email__in=scope.reviewer_emails)
    stand_in = any(not scope.others_than(email) for email in owners_holding.values_list(
        "email", flat=True))  # fmt: skip
    if not recipients or stand_in:
        recipients |= set(portal_admin_emails())
    return sorted(recipients)


def review_event_notify(*, review_id: int, event: str, slot: str = "") -> int:
    """Mail the reviewers of a review (plain text and HTML), and Slack if configured: it opened,
    a reminder (in its `slot`, overdue or not), or the removal policy removed what nobody
    reviewed; how many were mailed. Recorded as `review.reminded`. A mail server or Slack that
    fails raises (OSError, httpx.HTTPError), for the caller to try again."""
    review = AccessReview.objects.select_related("role", "request").get(pk=review_id)
    if event == "reminder" and review.completed_at is not None:
        return 0  # completed since the reminder was claimed
    recipients = review_recipients(review=review)
    progress = review_progress(review=review)
    if event == "reminder" and slot.startswith("overdue"):
        event = "overdue"
    base = settings.PORTAL_BASE_URL.rstrip("/")
    # What nobody decided, which the removal policy did.
    by_policy = review.items.filter(decision="remove", decided_by__isnull=True).count()
    context: dict[str, Any] = {
        "review": review, "event": event, "progress": progress, "by_policy": by_policy,
        "review_url": f"{base}/access/reviews/{review.pk}/",
        "evidence_url": f"{base}/access/reviews/{review.pk}/evidence/",
    }  # fmt: skip
    subject = "[Atrium] " + REVIEW_SUBJECTS[event].format(
        role=review.role.name, due=exact_time(review.due_at), count=by_policy
    )
    _send(subject=subject, template="access/mail/review", context=context,
          recipients=recipients, url=context["review_url"])  # fmt: skip
    detail: dict[str, Any] = {"event": event, "recipients": len(recipients)}
    if slot:
        detail["slot"] = slot
    SYSTEM.record("review.reminded", f"{review.role.name} review {review.pk}",
                  review.correlation_id, **detail)  # fmt: skip
    return len(recipients)
