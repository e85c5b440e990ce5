"""Access reviews, as their services carry them out: a schedule from the registry, a review that
falls due and is opened by beat's task, owners who keep and remove (never their own holding),
removals carried into the devtenant and the mirror, the removal policy, reminders once a slot,
and decisions that cannot be made twice."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest
import requests
from django.conf import settings as django_settings
from django.core import mail
from django.db.models import Q
from django.utils import timezone

from access import auth0
from access.audit import SYSTEM, Actor
from access.auth0 import Auth0Error, Directory
from access.models import (
    AccessRequest,
    AccessReview,
    AccessReviewItem,
    AuditEvent,
    Role,
    RoleMembership,
)
from access.notifications import review_recipients
from access.policy import viewer_for
from access.review_selectors import review_progress
from access.reviews import (
    ItemDecision,
    ReviewConflict,
    ReviewNotAllowed,
    ReviewRefused,
    months_after,
    review_complete,
    review_decide,
    review_decide_matching,
    review_due_after,
    review_keep_unflagged,
    review_open,
    review_removals_retry,
    reviews_enforce,
    reviews_open_due,
    reviews_remind_claim,
)
from access.services import (
    access_request_decide,
    review_removal_carry_out,
    review_removal_failing,
)
from access.sync import roles_sync
from access.tasks import review_removal_task
from portal.celery import app as celery_app
from portal.models import User
from tests.factories import RoleFactory, RoleMembershipFactory, UserFactory
from tests.helpers import (
    DevTenant,
    ask,
    management,
    own_role,
    person_of_tenant,
    tenant_ids,
    tenant_roles_of,
)

pytestmark = pytest.mark.django_db
ROLE = "payments.viewer"


def holder(email: str, *, source: str = RoleMembership.Source.SIGN_IN, **person: Any) -> User:
    user = UserFactory.create(email=email, **person)
    RoleMembershipFactory.create(user=user, role=RoleFactory.create(name=ROLE), source=source)
    return user


def grace_and_alan() -> tuple[User, User]:
    """The two owners of the payments roles (team-payments, from the `payments` fixture)."""
    return (
        UserFactory.create(email="grace@example.com", name="Grace Hopper"),
        UserFactory.create(email="alan@example.com", name="Alan Turing"),
    )


def item_of(review: AccessReview, user: User) -> AccessReviewItem:
    return review.items.get(user=user)


def keep(item: AccessReviewItem, note: str = "") -> ItemDecision:
    return ItemDecision(item.pk, AccessReviewItem.Decision.KEEP, note)


def remove(item: AccessReviewItem, note: str = "") -> ItemDecision:
    return ItemDecision(item.pk, AccessReviewItem.Decision.REMOVE, note)


# --- the schedule ----------------------------------------------------------------------------


def test_reviews_fall_due_on_the_anchored_day_every_interval_without_drifting() -> None:
    # A day the month lacks is its last day, and the next month is counted from the anchor.
    assert months_after(date(2025, 1, 31), 1) == date(2025, 2, 28)
    assert months_after(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert months_after(date(2025, 1, 31), 2) == date(2025, 3, 31)
    assert months_after(date(2025, 11, 15), 3) == date(2026, 2, 15)
    assert months_after(date(2025, 3, 15), -3) == date(2024, 12, 15)
    anchor = date(2025, 1, 31)
    assert review_due_after(anchor=anchor, every=1, after=date(2025, 2, 10)) == date(2025, 2, 28)
    assert review_due_after(anchor=anchor, every=1, after=date(2025, 2, 28)) == date(2025, 3, 31)
    assert review_due_after(anchor=anchor, every=3, after=date(2024, 12, 1)) == date(2025, 1, 31)
    assert review_due_after(anchor=anchor, every=12, after=date(2031, 6, 1)) == date(2032, 1, 31)
    # Before the anchor too: the anchor is a day of the cycle, not its start.
    assert review_due_after(anchor=date(2030, 6, 1), every=6, after=date(2025, 3, 1)) == date(
        2025, 6, 1
    )


def test_a_schedule_set_today_falls_due_one_interval_on_and_an_unchanged_one_stays(
    payments: None,
) -> None:
    today = timezone.now().date()
    own_role(ROLE, "team-payments", reviewEvery="P3M")
    role = Role.objects.get(name=ROLE)
    first = role.review_next_due

    own_role(ROLE, "team-payments", reviewEvery="P3M", maxDuration="P30D")
    role.refresh_from_db()

    assert first is not None and first.date() == months_after(today, 3)
    assert role.review_next_due == first  # importing the same schedule again moves nothing
    own_role(ROLE, "team-payments")
    role.refresh_from_db()
    assert (role.review_every, role.review_next_due) == (None, None)


# --- opening ---------------------------------------------------------------------------------


def test_a_review_falls_due_and_beats_task_opens_it_once_with_a_snapshot_of_every_holder(
    payments: None, eager_tasks: None, django_capture_on_commit_callbacks: Any
) -> None:
    grace, alan = grace_and_alan()
    ada = holder("ada@example.com", name="Ada Lovelace")
    old = timezone.now() - timedelta(days=200)
    stale = holder("stale@example.com", last_login=old, source=RoleMembership.Source.AUTH0)
    today = timezone.now().date()
    # Due in ten days: inside the two weeks before a review is due, when it opens.
    own_role(ROLE, "team-payments", reviewEvery="P3M",
             reviewDay=(today + timedelta(days=10)).isoformat())  # fmt: skip
    ada.last_login = timezone.now()
    ada.save()
    beat_task = celery_app.tasks[str(django_settings.CELERY_BEAT_SCHEDULE["reviews-open"]["task"])]

    with django_capture_on_commit_callbacks(execute=True):
        beat_task.apply()
        beat_task.apply()  # beat retried, or a second beat: nothing opens twice

    review = AccessReview.objects.get()
    assert (review.role.name, review.kind, review.holders_total) == (ROLE, "scheduled", 2)
    assert review.due_at.date() == today + timedelta(days=10) and review.state == "open"
    ada_item, stale_item = item_of(review, ada), item_of(review, stale)
    assert (ada_item.source, ada_item.flags, ada_item.flagged) == ("sign_in", ["outside"], True)
    assert stale_item.flags == ["stale", "outside"]
    assert stale_item.last_sign_in == old
    role = Role.objects.get(name=ROLE)
    assert role.review_next_due is not None
    assert role.review_next_due.date() == months_after(today + timedelta(days=10), 3)
    opened = AuditEvent.objects.get(action="review.opened")
    assert (opened.actor, opened.correlation_id) == ("system", f"review-{review.pk}")
    assert opened.detail["holders"] == 2
    # The owners hear of it at once; the reminder of the slot it opened in is not sent again.
    assert [m.to for m in mail.outbox] == [["alan@example.com", "grace@example.com"]]
    assert mail.outbox[0].subject.startswith(f"[Atrium] Review who holds {ROLE}, due ")
    assert reviews_remind_claim() == []
    del grace, alan


def test_a_review_opens_with_a_bounded_number_of_queries_however_many_hold_the_role(
    payments: None, django_assert_max_num_queries: Any
) -> None:
    own_role(ROLE, "team-payments", reviewEvery="P1M")
    role = Role.objects.get(name=ROLE)
    people = User.objects.bulk_create(
        [User(sub=f"auth0|bulk-{i}", email=f"bulk-{i}@example.com") for i in range(400)]
    )
    RoleMembership.objects.bulk_create(
        [RoleMembership(user=user, role=role, source="auth0") for user in people]
    )

    with django_assert_max_num_queries(14):
        review = review_open(role=role, kind=AccessReview.Kind.SCHEDULED, actor=SYSTEM)

    assert review.items.count() == 400


def test_open_reviews_now_opens_the_next_review_of_every_scheduled_role_once(
    payments: None,
) -> None:
    own_role(ROLE, "team-payments", reviewEvery="P3M")
    own_role("payments.admin", "team-payments")  # no schedule
    holder("ada@example.com")
    due = Role.objects.get(name=ROLE).review_next_due

    assert reviews_open_due() == []  # three months off: not yet
    opened = reviews_open_due(force=True)
    assert reviews_open_due(force=True) == []  # open already

    review = AccessReview.objects.get(pk__in=opened)
    assert (review.role.name, review.due_at) == (ROLE, due)
    with pytest.raises(ReviewConflict):
        review_open(role=ROLE, kind=AccessReview.Kind.SCHEDULED, actor=SYSTEM)


def test_a_review_of_one_use_names_its_holder_reason_and_request(payments: None) -> None:
    ada = holder("ada@example.com", source=RoleMembership.Source.PORTAL_GRANT)
    bob = holder("bob@example.com")
    request = AccessRequest.objects.create(
        requester=ada, entity_ref="component:default/payments-api", role_name=ROLE,
        reason="INC-1", duration=timedelta(hours=1), state=AccessRequest.State.ACTIVE,
    )  # fmt: skip

    review = review_open(role=ROLE, kind=AccessReview.Kind.USE, holders=[ada],
                         reason="break-glass use", request=request, actor=SYSTEM)  # fmt: skip

    assert (review.kind, review.reason, review.request_id) == ("use", "break-glass use", request.pk)
    assert list(review.items.values_list("sub", "request_id")) == [(ada.sub, request.pk)]
    assert review.due_at > timezone.now()
    with pytest.raises(ReviewRefused):
        review_open(role=ROLE, kind=AccessReview.Kind.USE, holders=[], actor=SYSTEM)
    del bob


# --- deciding --------------------------------------------------------------------------------


def test_an_owner_cannot_review_their_own_holding_nor_one_of_their_second_account(
    payments: None,
) -> None:
    grace, alan = grace_and_alan()
    RoleMembershipFactory.create(user=grace, role=RoleFactory.create(name=ROLE))
    other_grace = holder("GRACE@example.com", sub="google-oauth2|grace", name="Grace (Google)")
    ada = holder("ada@example.com")
    linus = holder("linus@example.com")
    RoleMembershipFactory.create(user=linus, role=RoleFactory.create(name="portal-admin"))
    review = review_open(role=ROLE, kind=AccessReview.Kind.SCHEDULED, actor=SYSTEM)
    mine, second, adas = item_of(review, grace), item_of(review, other_grace), item_of(review, ada)

    with pytest.raises(ReviewNotAllowed, match="Nobody reviews their own holding"):
        review_decide(review_id=review.pk, reviewer=grace, decisions=[keep(mine)],
                      actor=Actor(grace.sub), all_or_nothing=True)  # fmt: skip
    outcome = review_decide(review_id=review.pk, reviewer=grace, actor=Actor(grace.sub),
                            decisions=[keep(second), keep(adas)])  # fmt: skip
    kept_all = review_keep_unflagged(review_id=review.pk, reviewer=grace, actor=Actor(grace.sub))
    # Alan, the other owner, reviews Grace's; a portal admin does not while an owner can.
    with pytest.raises(ReviewNotAllowed):
        review_decide(review_id=review.pk, reviewer=linus, decisions=[keep(mine)],
                      actor=Actor(linus.sub), all_or_nothing=True)  # fmt: skip
    review_decide(review_id=review.pk, reviewer=alan, decisions=[keep(mine), keep(second)],
                  actor=Actor(alan.sub))  # fmt: skip

    assert outcome.done == 1 and len(outcome.refused) == 1
    assert "another account" in outcome.refused[0]
    assert kept_all == 0  # every holder is flagged (seen in a sign-in token) or Grace's own
    assert item_of(review, grace).decided_by == alan
    assert item_of(review, other_grace).decided_by == alan
    assert item_of(review, ada).decided_by == grace


def test_an_account_that_took_the_owners_e_mail_after_the_snapshot_is_still_theirs(
    payments: None,
) -> None:
    grace, _ = grace_and_alan()
    second = holder("old-address@example.com", sub="github|grace")
    review = review_open(role=ROLE, kind=AccessReview.Kind.SCHEDULED, actor=SYSTEM)
    User.objects.filter(pk=second.pk).update(email="grace@example.com")  # renamed in Auth0 since

    with pytest.raises(ReviewNotAllowed, match="Nobody reviews their own holding"):
        review_decide(review_id=review.pk, reviewer=grace, actor=Actor(grace.sub),
                      decisions=[keep(item_of(review, second))], all_or_nothing=True)  # fmt: skip
    AccessReviewItem.objects.filter(review=review).update(flagged=False)
    kept = review_keep_unflagged(review_id=review.pk, reviewer=grace, actor=Actor(grace.sub))

    assert kept == 0 and item_of(review, second).decision == ""


def test_a_portal_admin_reviews_the_holding_of_a_roles_only_owner(payments: None) -> None:
    grace = UserFactory.create(email="grace@example.com", name="Grace Hopper")  # Alan is gone
    User.objects.filter(email="alan@example.com").delete()
    RoleMembershipFactory.create(user=grace, role=RoleFactory.create(name=ROLE))
    ada = holder("ada@example.com")
    linus = UserFactory.create(email="linus@example.com")
    RoleMembershipFactory.create(user=linus, role=RoleFactory.create(name="portal-admin"))
    # Only Grace is in team-payments with an e-mail: Alan's catalog User is not.
    from catalog.models import Entity

    Entity.objects.filter(ref="user:default/alan").delete()
    review = review_open(role=ROLE, kind=AccessReview.Kind.SCHEDULED, actor=SYSTEM)
    # Grace's own holding waits for an admin: the admins hear of the review beside her.
    told = review_recipients(review=review)

    done = review_decide(
        review_id=review.pk, reviewer=linus, actor=Actor(linus.sub),
        decisions=[keep(item_of(review, grace)), keep(item_of(review, ada))],
    )  # fmt: skip

    assert done.done == 1 and item_of(review, grace).decided_by == linus
    assert item_of(review, ada).decision == ""  # Grace reviews Ada herself
    assert viewer_for(linus).is_admin
    assert told == ["grace@example.com", "linus@example.com"]
    assert review_recipients(review=review) == ["grace@example.com"]  # nothing waits for them


def test_a_stale_tab_cannot_decide_twice(payments: None) -> None:
    grace, alan = grace_and_alan()
    ada = holder("ada@example.com")
    review = review_open(role=ROLE, kind=AccessReview.Kind.SCHEDULED, actor=SYSTEM)
    item = item_of(review, ada)

    review_decide(review_id=review.pk, reviewer=grace, decisions=[keep(item, "on call")],
                  actor=Actor(grace.sub))  # fmt: skip
    with pytest.raises(ReviewConflict, match="already kept by Grace Hopper"):
        review_decide(review_id=review.pk, reviewer=alan, decisions=[remove(item)],
                      actor=Actor(alan.sub), all_or_nothing=True)  # fmt: skip
    late = review_decide(review_id=review.pk, reviewer=grace, decisions=[remove(item)],
                         actor=Actor(grace.sub))  # fmt: skip

    assert late.done == 0 and late.late == {"already kept by you": 1}
    item.refresh_from_db()
    assert (item.decision, item.note, item.removal) == ("keep", "on call", "")
    assert AuditEvent.objects.filter(action__startswith="review.kept").count() == 1


def test_keep_all_not_flagged_is_one_statement_and_leaves_the_flagged(
    payments: None, django_assert_max_num_queries: Any
) -> None:
    grace, _ = grace_and_alan()
    role = Role.objects.get(name=ROLE)
    now = timezone.now()
    people = User.objects.bulk_create(
        [User(sub=f"auth0|p-{i}", email=f"p-{i}@example.com", last_login=now) for i in range(300)]
    )
    RoleMembership.objects.bulk_create(
        [RoleMembership(user=u, role=role, source="portal_grant") for u in people]
    )
    never = holder("never@example.com", source=RoleMembership.Source.PORTAL_GRANT)
    review = review_open(role=role, kind=AccessReview.Kind.SCHEDULED, actor=SYSTEM)

    with django_assert_max_num_queries(12) as queries:
        kept = review_keep_unflagged(review_id=review.pk, reviewer=grace, actor=Actor(grace.sub))

    assert kept == 300
    touching = [q["sql"] for q in queries.captured_queries if "access_accessreviewitem" in q["sql"]]
    assert len(touching) == 1 and touching[0].startswith("UPDATE")  # one statement for all
    assert item_of(review, never).decision == ""  # never signed in: flagged
    progress = review_progress(review=review)
    assert (progress.kept, progress.undecided, progress.flagged_undecided) == (300, 1, 1)
    event = AuditEvent.objects.get(action="review.kept")
    assert event.detail["count"] == 300


# --- carrying removals out --------------------------------------------------------------------


def test_an_owner_keeps_and_removes_and_the_removals_are_gone_from_the_devtenant_and_the_mirror(
    devtenant: DevTenant, payments: None, eager_tasks: None,
    django_capture_on_commit_callbacks: Any,
) -> None:  # fmt: skip
    grace, _ = person_of_tenant(devtenant, "grace@example.com")
    ada, as_ada = person_of_tenant(devtenant, "ada@example.com")
    users, roles = tenant_ids(devtenant)
    # Linus was given payments.viewer in Auth0 directly; the sync mirrors it.
    management(devtenant, "POST", f"users/{users['linus@example.com']}/roles",
               {"roles": [roles[ROLE]]})  # fmt: skip
    roles_sync()
    # Ada asks and Grace approves: a portal grant, active in the devtenant.
    with django_capture_on_commit_callbacks(execute=True):
        ask(as_ada)
        access_request_decide(request_id=AccessRequest.objects.get().pk, approver=grace,
                              outcome="approved", comment="", actor=Actor(grace.sub))  # fmt: skip
    linus = User.objects.get(email="linus@example.com")
    assert {ROLE} <= tenant_roles_of(devtenant, "ada@example.com")
    assert viewer_for(User.objects.get(pk=ada.pk)).held_roles >= {ROLE}
    review = review_open(role=ROLE, kind=AccessReview.Kind.SCHEDULED, actor=SYSTEM)
    assert {i.source for i in review.items.all()} == {"auth0", "portal_grant"}
    assert item_of(review, ada).approved_by == "Grace"
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        review_decide(review_id=review.pk, reviewer=grace, actor=Actor(grace.sub, name="Grace"),
                      decisions=[remove(item_of(review, ada), "left the team"),
                                 remove(item_of(review, linus))])  # fmt: skip

    # Gone in Auth0, in the mirror, and from every kept viewer; Ada's grant is revoked.
    assert ROLE not in tenant_roles_of(devtenant, "ada@example.com")
    assert ROLE not in tenant_roles_of(devtenant, "linus@example.com")
    assert not RoleMembership.objects.filter(role__name=ROLE).exists()
    assert ROLE not in viewer_for(User.objects.get(pk=ada.pk)).held_roles
    grant = AccessRequest.objects.get()
    assert grant.state == AccessRequest.State.REVOKED
    assert {i.removal for i in review.items.all()} == {"done"}
    assert AuditEvent.objects.filter(action="review.removal_done").count() == 2
    revoked = AuditEvent.objects.get(action="grant.revoked")
    assert revoked.detail == {"reason": f"removed in access review {review.pk}"}
    assert [m.subject for m in mail.outbox] == [f"[Atrium] Your access to {ROLE} was revoked"]
    # Every holder decided: Grace completes it, once.
    completed = review_complete(review_id=review.pk, person=grace, actor=Actor(grace.sub))
    with pytest.raises(ReviewConflict):
        review_complete(review_id=review.pk, person=grace, actor=Actor(grace.sub))
    assert completed.state == "completed"
    assert AuditEvent.objects.get(action="review.completed").detail == {
        "holders": 2, "kept": 0, "removed": 2
    }  # fmt: skip


def test_a_failing_auth0_leaves_a_removal_failed_and_visible_until_retried(
    devtenant: DevTenant, payments: None, monkeypatch: Any, eager_tasks: None,
    django_capture_on_commit_callbacks: Any,
) -> None:  # fmt: skip
    grace, _ = person_of_tenant(devtenant, "grace@example.com")
    users, roles = tenant_ids(devtenant)
    management(devtenant, "POST", f"users/{users['ada@example.com']}/roles",
               {"roles": [roles[ROLE]]})  # fmt: skip
    roles_sync()
    ada = User.objects.get(email="ada@example.com")
    review = review_open(role=ROLE, kind=AccessReview.Kind.SCHEDULED, actor=SYSTEM)
    item = item_of(review, ada)
    # The worker's client tries once a call, so the test does not wait out its backoff.
    key = (django_settings.AUTH0_ISSUER, django_settings.AUTH0_MGMT_CLIENT_ID)
    monkeypatch.setitem(auth0._shared, key, Directory(retries=0))
    devtenant.admin("faults", {"method": "DELETE", "path": "/api/v2/users/*/roles",
                               "status": 503, "times": 100})  # fmt: skip
    AccessReviewItem.objects.filter(pk=item.pk).update(
        decision="remove", decided_by=grace, decided_at=timezone.now(), removal="pending"
    )

    # One attempt, as the task makes it: the error is shown with the holder, still pending.
    with pytest.raises(Auth0Error):
        review_removal_carry_out(item_id=item.pk, actor=SYSTEM)
    review_removal_failing(item_id=item.pk, message="503 Injected fault", actor=SYSTEM, last=False)
    item.refresh_from_db()
    pending = (item.removal, item.removal_error)
    # The task retries (in-process here, one after the other) and fails after its last.
    result = review_removal_task.apply(args=(item.pk,))
    item.refresh_from_db()
    deletes = [r for r in devtenant.requests_log() if r["method"] == "DELETE"]

    assert pending == ("pending", "503 Injected fault")
    assert result.result == "failed" and item.removal == "failed" and "503" in item.removal_error
    assert len(deletes) == 1 + 7 and item.removal_attempts == 8
    assert ROLE in tenant_roles_of(devtenant, "ada@example.com")
    assert RoleMembership.objects.filter(user=ada, role__name=ROLE).exists()  # never "done"
    assert AuditEvent.objects.filter(action="review.removal_failed").count() == 1

    requests.delete(devtenant.url("__admin/faults"), timeout=10)
    with django_capture_on_commit_callbacks(execute=True):
        retried = review_removals_retry(review_id=review.pk, person=grace, actor=Actor(grace.sub))

    item.refresh_from_db()
    assert retried == 1 and (item.removal, item.removal_error) == ("done", "")
    assert ROLE not in tenant_roles_of(devtenant, "ada@example.com")
    # Carrying it out again changes nothing and calls nobody.
    assert review_removal_carry_out(item_id=item.pk, actor=SYSTEM) == "done"


def test_a_removal_overtaken_by_a_later_approval_leaves_the_new_grant_in_auth0_and_the_mirror(
    devtenant: DevTenant, payments: None, eager_tasks: None,
    django_capture_on_commit_callbacks: Any,
) -> None:  # fmt: skip
    grace, _ = person_of_tenant(devtenant, "grace@example.com")
    ada, as_ada = person_of_tenant(devtenant, "ada@example.com")
    users, roles = tenant_ids(devtenant)
    management(devtenant, "POST", f"users/{users['ada@example.com']}/roles",
               {"roles": [roles[ROLE]]})  # fmt: skip
    roles_sync()
    review = review_open(role=ROLE, kind=AccessReview.Kind.SCHEDULED, actor=SYSTEM)
    item = item_of(review, ada)
    # Grace removes Ada; the removal waits for Auth0 (its task not run yet).
    review_decide(review_id=review.pk, reviewer=grace, actor=Actor(grace.sub),
                  decisions=[remove(item, "left the team")])  # fmt: skip
    # Meanwhile Ada, back on the team, asks again and Grace approves: a grant, active in Auth0.
    RoleMembership.objects.filter(user=ada, role__name=ROLE).delete()
    with django_capture_on_commit_callbacks(execute=True):
        ask(as_ada)
        access_request_decide(request_id=AccessRequest.objects.get().pk, approver=grace,
                              outcome="approved", comment="", actor=Actor(grace.sub))  # fmt: skip
    deletes_before = [r for r in devtenant.requests_log() if r["method"] == "DELETE"]

    # The removal's task runs at last: it ends nothing the later decision gave.
    outcome = review_removal_carry_out(item_id=item.pk, actor=SYSTEM)
    item.refresh_from_db()
    deletes = [r for r in devtenant.requests_log() if r["method"] == "DELETE"]

    assert outcome == item.removal == "superseded"
    assert deletes == deletes_before  # Auth0 was not asked to remove anything
    assert ROLE in tenant_roles_of(devtenant, "ada@example.com")
    assert AccessRequest.objects.get().state == AccessRequest.State.ACTIVE
    assert ROLE in viewer_for(User.objects.get(pk=ada.pk)).held_roles
    record = AuditEvent.objects.get(action="review.removal_superseded")
    assert record.detail == {"holder": ada.sub, "later_request": AccessRequest.objects.get().pk}
    assert review_progress(review=review).removal_superseded == 1


# --- the removal policy ----------------------------------------------------------------------


def test_an_overdue_review_with_the_removal_policy_removes_only_what_was_not_reviewed(
    devtenant: DevTenant, payments: None, eager_tasks: None,
    django_capture_on_commit_callbacks: Any,
) -> None:  # fmt: skip
    grace, _ = person_of_tenant(devtenant, "grace@example.com")
    users, roles = tenant_ids(devtenant)
    for email in ("ada@example.com", "linus@example.com"):
        management(devtenant, "POST", f"users/{users[email]}/roles", {"roles": [roles[ROLE]]})
    roles_sync()
    own_role(ROLE, "team-payments", reviewEvery="P1M", removeUnreviewedAfter="P7D")
    ada, linus = (User.objects.get(email=e) for e in ("ada@example.com", "linus@example.com"))
    review = review_open(role=ROLE, kind=AccessReview.Kind.SCHEDULED, actor=SYSTEM,
                         due_at=timezone.now() - timedelta(days=6))  # fmt: skip
    review_decide(review_id=review.pk, reviewer=grace, decisions=[keep(item_of(review, ada))],
                  actor=Actor(grace.sub))  # fmt: skip
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        early = reviews_enforce()  # six days past due: the policy waits for seven
        AccessReview.objects.filter(pk=review.pk).update(
            due_at=timezone.now() - timedelta(days=7, minutes=1)
        )
        enforced = reviews_enforce()
        again = reviews_enforce()

    assert early == {} and enforced == {review.pk: 1} and again == {}
    kept, removed = item_of(review, ada), item_of(review, linus)
    assert (kept.decision, kept.removal) == ("keep", "")
    assert (removed.decision, removed.decided_by, removed.removal) == ("remove", None, "done")
    assert removed.note == "not reviewed within 7 days of the due date"
    assert ROLE in tenant_roles_of(devtenant, "ada@example.com")
    assert ROLE not in tenant_roles_of(devtenant, "linus@example.com")
    review.refresh_from_db()
    assert review.state == "completed" and review.completed_by is None
    said = AuditEvent.objects.get(action="review.policy_removed")
    assert said.detail["holders"] == [linus.sub] and said.detail["count"] == 1
    assert (
        mail.outbox[-1].subject == f"[Atrium] {ROLE}: 1 holders not reviewed in time were removed"
    )
    assert "Nobody reviewed 1 holder of payments.viewer within 7 days" in mail.outbox[-1].body


def test_a_review_never_removes_the_portal_s_last_admin(payments: None) -> None:
    """Neither removal by removal nor all at once: with nobody holding portal-admin, nobody
    could administer the portal, nor undo the removal from it. The one before it goes."""
    linus, margaret = (UserFactory.create(email=e) for e in ("linus@example.com",
                                                            "margaret@example.com"))  # fmt: skip
    for admin in (linus, margaret):
        RoleMembershipFactory.create(user=admin, role=RoleFactory.create(name="portal-admin"))
    review = review_open(role="portal-admin", kind=AccessReview.Kind.SCHEDULED, actor=SYSTEM)

    first = review_decide(review_id=review.pk, reviewer=linus, actor=Actor(linus.sub),
                          decisions=[remove(item_of(review, margaret))])  # fmt: skip
    # Margaret is still in the mirror while the worker removes her in Auth0: she counts as gone.
    assert first.done == 1 and viewer_for(margaret).is_admin
    last = review_decide(review_id=review.pk, reviewer=margaret, actor=Actor(margaret.sub),
                         decisions=[remove(item_of(review, linus))])  # fmt: skip
    with pytest.raises(ReviewRefused, match="the portal without an admin"):
        review_decide(review_id=review.pk, reviewer=margaret, actor=Actor(margaret.sub),
                      decisions=[remove(item_of(review, linus))], all_or_nothing=True)  # fmt: skip
    with pytest.raises(ReviewRefused, match="keep at least one"):
        review_decide_matching(review_id=review.pk, reviewer=margaret, decision="remove",
                               matching=Q(), actor=Actor(margaret.sub))  # fmt: skip

    assert last.done == 0
    assert last.refused == [
        "Removing them would leave nobody holding portal-admin, and the portal without an "
        "admin: keep at least one, or give the role to someone else in Auth0 first."
    ]
    assert item_of(review, linus).decision == ""
    assert AuditEvent.objects.filter(action="review.removed").count() == 1


def test_the_removal_policy_leaves_the_last_admins_and_says_so_once(payments: None) -> None:
    linus = UserFactory.create(email="linus@example.com")
    RoleMembershipFactory.create(user=linus, role=RoleFactory.create(name="portal-admin"))
    own_role("portal-admin", reviewEvery="P1M", removeUnreviewedAfter="P7D")
    review = review_open(role="portal-admin", kind=AccessReview.Kind.SCHEDULED, actor=SYSTEM,
                         due_at=timezone.now() - timedelta(days=8))  # fmt: skip

    assert reviews_enforce() == {review.pk: 0}
    assert reviews_enforce() == {}  # withheld once, not every beat

    review.refresh_from_db()
    assert review.completed_at is None and item_of(review, linus).decision == ""
    withheld = AuditEvent.objects.get(action="review.policy_withheld")
    assert "the portal without an admin" in withheld.detail["reason"]
    assert not AuditEvent.objects.filter(action="review.policy_removed").exists()


def test_the_removal_policy_leaves_a_holder_an_owner_approved_again_after_the_snapshot(
    devtenant: DevTenant, payments: None, eager_tasks: None,
    django_capture_on_commit_callbacks: Any,
) -> None:  # fmt: skip
    grace, _ = person_of_tenant(devtenant, "grace@example.com")
    ada, as_ada = person_of_tenant(devtenant, "ada@example.com")
    users, roles = tenant_ids(devtenant)
    management(devtenant, "POST", f"users/{users['ada@example.com']}/roles",
               {"roles": [roles[ROLE]]})  # fmt: skip
    roles_sync()
    own_role(ROLE, "team-payments", reviewEvery="P1M", removeUnreviewedAfter="P7D")
    review = review_open(role=ROLE, kind=AccessReview.Kind.SCHEDULED, actor=SYSTEM,
                         due_at=timezone.now() - timedelta(days=8))  # fmt: skip
    # Nobody reviews Ada, but Grace approves her new request after the snapshot.
    RoleMembership.objects.filter(user=ada, role__name=ROLE).delete()
    with django_capture_on_commit_callbacks(execute=True):
        ask(as_ada)
        access_request_decide(request_id=AccessRequest.objects.get().pk, approver=grace,
                              outcome="approved", comment="", actor=Actor(grace.sub))  # fmt: skip

    with django_capture_on_commit_callbacks(execute=True):
        enforced = reviews_enforce()

    item = item_of(review, ada)
    assert enforced == {review.pk: 1}
    assert (item.decision, item.decided_by, item.removal) == ("remove", None, "superseded")
    assert ROLE in tenant_roles_of(devtenant, "ada@example.com")
    assert AccessRequest.objects.get().state == AccessRequest.State.ACTIVE


# --- reminders -------------------------------------------------------------------------------


def test_reviewers_are_reminded_once_a_slot_from_two_weeks_before_the_due_date(
    payments: None, eager_tasks: None, django_capture_on_commit_callbacks: Any, settings: Any,
    slack: list[dict[str, Any]],
) -> None:  # fmt: skip
    grace_and_alan()
    holder("ada@example.com")
    now = timezone.now()
    review = review_open(role=ROLE, kind=AccessReview.Kind.SCHEDULED, actor=SYSTEM,
                         due_at=now + timedelta(days=30))  # fmt: skip
    mail.outbox.clear()

    def claims(at: datetime) -> list[str]:
        return [slot for _, slot in reviews_remind_claim(now=at)]

    assert claims(now) == []  # a month off
    assert claims(now + timedelta(days=17)) == ["before-14d"]
    assert claims(now + timedelta(days=17, hours=1)) == []  # the same slot: once
    assert claims(now + timedelta(days=23)) == ["before-7d"]
    assert claims(now + timedelta(days=31)) == ["overdue-0w"]
    assert claims(now + timedelta(days=38)) == ["overdue-1w"]
    with django_capture_on_commit_callbacks(execute=True):
        sent = celery_app.tasks[
            str(django_settings.CELERY_BEAT_SCHEDULE["reviews-remind"]["task"])
        ].apply()
    assert sent.result == 0  # every slot up to now was claimed above
    from access.tasks import review_notify_task

    review_notify_task.apply(args=(review.pk, "reminder", "overdue-1w"))
    subject = mail.outbox[-1].subject
    assert subject.startswith(f"[Atrium] The review of who holds {ROLE} is overdue")
    assert mail.outbox[-1].to == ["alan@example.com", "grace@example.com"]
    assert "1 of 1 holder still to keep or remove" in mail.outbox[-1].body
    link = f"{settings.PORTAL_BASE_URL}/access/reviews/{review.pk}/"
    assert slack == [{"text": f"{subject} — {link}"}]
    assert AuditEvent.objects.filter(action="review.reminded").count() == 1


def test_matching_decisions_decide_only_the_undecided_holders_the_person_may_review(
    payments: None,
    eager_tasks: None,
) -> None:
    grace, _ = grace_and_alan()
    RoleMembershipFactory.create(user=grace, role=RoleFactory.create(name=ROLE))
    stale = [holder(f"s{i}@example.com", last_login=timezone.now() - timedelta(days=365))
             for i in range(3)]  # fmt: skip
    review = review_open(role=ROLE, kind=AccessReview.Kind.SCHEDULED, actor=SYSTEM)
    review_decide(review_id=review.pk, reviewer=grace, decisions=[keep(item_of(review, stale[0]))],
                  actor=Actor(grace.sub))  # fmt: skip

    removed = review_decide_matching(
        review_id=review.pk, reviewer=grace, decision="remove", matching=Q(flags__contains="stale"),
        actor=Actor(grace.sub),
    )  # fmt: skip

    assert removed == 2
    assert item_of(review, stale[0]).decision == "keep"
    assert item_of(review, grace).decision == ""  # hers, and not stale
