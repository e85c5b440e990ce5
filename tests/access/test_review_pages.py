"""Access reviews as owners, admins, auditors and automation use them: the list of reviews, a
review's page (filters, Keep and Remove one at a time or in bulk without JavaScript, a stale
tab told 409), completing it, the evidence pages and CSV, the access report, the API, and the
banner of overdue reviews."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from access.audit import SYSTEM
from access.models import AccessReview, AccessReviewItem, RoleMembership
from access.reviews import review_open
from portal.models import User
from tests.factories import RoleFactory, RoleMembershipFactory, UserFactory
from tests.helpers import DevTenant, text
from tests.portal.auth_helpers import client_token

pytestmark = pytest.mark.django_db
ROLE = "payments.viewer"
HTMX = {"HX-Request": "true"}


def signed(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def owners(payments: None) -> tuple[User, User]:
    """Grace and Alan, of team-payments, which owns payments.viewer."""
    return (
        UserFactory.create(email="grace@example.com", name="Grace Hopper"),
        UserFactory.create(email="alan@example.com", name="Alan Turing"),
    )


def holders(count: int, *, signed_in: bool = True, source: str = "portal_grant") -> list[User]:
    role = RoleFactory.create(name=ROLE)
    now = timezone.now()
    people = User.objects.bulk_create(
        [User(sub=f"auth0|h{i}-{count}", email=f"h{i:04}-{count}@example.com", name=f"Holder {i}",
              last_login=now if signed_in else None) for i in range(count)]
    )  # fmt: skip
    RoleMembership.objects.bulk_create(
        [RoleMembership(user=user, role=role, source=source) for user in people]
    )
    return people


def opened() -> AccessReview:
    return review_open(role=ROLE, kind=AccessReview.Kind.SCHEDULED, actor=SYSTEM)


def page(client: Client, review: AccessReview, query: str = "") -> str:
    response = client.get(f"/access/reviews/{review.pk}/{query}")
    assert response.status_code == 200
    return response.content.decode()


def test_owners_find_the_reviews_waiting_for_them_and_others_find_none(
    owners: tuple[User, User],
) -> None:
    grace, _ = owners
    holders(3)
    review = opened()
    ada = UserFactory.create(email="ada@example.com")

    listed = text(signed(grace).get("/access/reviews/").content)
    nothing = text(signed(ada).get("/access/reviews/").content)
    hidden = signed(ada).get(f"/access/reviews/{review.pk}/")

    assert "Waiting for you" in listed and "payments.viewer" in listed
    assert "0 of 3 decided" in listed and "3 to decide" in listed
    assert "No review waits for your decisions." in nothing and "payments.viewer" not in nothing
    assert hidden.status_code == 404  # not an owner: no such review, for her


def test_the_first_page_of_a_review_costs_the_same_queries_for_30_or_600_holders(
    owners: tuple[User, User], django_assert_max_num_queries: Any
) -> None:
    grace, _ = owners
    client = signed(grace)
    holders(30)
    small = opened()
    page(client, small)  # the viewer kept, as between two page loads
    with django_assert_max_num_queries(30) as small_page:
        body = page(client, small)
    small_sql = [q["sql"] for q in small_page.captured_queries]
    AccessReview.objects.filter(pk=small.pk).update(completed_at=timezone.now())
    RoleMembership.objects.all().delete()
    holders(600)
    large = opened()
    page(client, large)  # the viewer read again (the memberships changed), then kept
    with django_assert_max_num_queries(len(small_sql)) as large_page:
        large_body = page(client, large)

    assert len(large_page) == len(small_sql) <= 16
    assert "1–50 of 600 holders" in text(large_body.encode())
    assert large_body.count('class="holder-row') == 50 and body.count('class="holder-row') == 30


def test_an_owner_keeps_and_removes_without_javascript_and_a_stale_tab_is_told_409(
    owners: tuple[User, User],
) -> None:
    grace, alan = owners
    ada = holders(1)[0]
    review = opened()
    item = review.items.get(user=ada)
    as_grace, as_alan = signed(grace), signed(alan)
    stale_alan = page(as_alan, review)  # Alan's tab, open before Grace decides

    kept = as_grace.post(f"/access/reviews/{review.pk}/decide/",
                         {"item": item.pk, "decision": "keep", f"note-{item.pk}": "on call"},
                         follow=True)  # fmt: skip
    late = as_alan.post(f"/access/reviews/{review.pk}/decide/",
                        {"item": item.pk, "decision": "remove"}, headers=HTMX)  # fmt: skip
    late_plain = as_alan.post(f"/access/reviews/{review.pk}/decide/",
                              {"item": item.pk, "decision": "remove"}, follow=True)  # fmt: skip

    assert f'form="decide-{item.pk}"' in stale_alan
    assert "Kept: the decision is recorded." in text(kept.content)
    assert late.status_code == 409
    assert "Holder 0 was already kept by Grace Hopper." in text(late.content)
    assert "on call" in text(late.content)  # the row shows what Grace decided
    assert "already kept by Grace Hopper" in text(late_plain.content)
    item.refresh_from_db()
    assert (item.decision, item.decided_by, item.note) == ("keep", grace, "on call")


def test_an_owners_own_holding_offers_no_decision_and_the_server_refuses_one(
    owners: tuple[User, User],
) -> None:
    grace, _ = owners
    RoleMembershipFactory.create(user=grace, role=RoleFactory.create(name=ROLE))
    review = opened()
    mine = review.items.get(user=grace)
    as_grace = signed(grace)

    body = page(as_grace, review)
    forged = as_grace.post(f"/access/reviews/{review.pk}/decide/",
                           {"item": mine.pk, "decision": "keep"}, headers=HTMX)  # fmt: skip
    bulk = as_grace.post(f"/access/reviews/{review.pk}/bulk/",
                         {"action": "keep", "selected": [mine.pk]}, follow=True)  # fmt: skip

    assert "Your own holding: another owner reviews it." in text(body.encode())
    assert f'form="decide-{mine.pk}"' not in body
    assert forged.status_code == 403 and "Nobody reviews their own holding" in text(forged.content)
    assert "Nobody reviews their own holding" in text(bulk.content)
    assert review.items.get(pk=mine.pk).decision == ""


def test_bulk_decisions_for_hundreds_of_holders_work_without_javascript(
    owners: tuple[User, User],
) -> None:
    grace, _ = owners
    recent = holders(300)
    idle = holders(250, signed_in=False, source="auth0")
    review = opened()
    as_grace = signed(grace)
    some = list(review.items.filter(user__in=recent[:40]).values_list("pk", flat=True))

    ticked = as_grace.post(f"/access/reviews/{review.pk}/bulk/",
                           {"action": "keep", "selected": some, "note": "team"},
                           follow=True)  # fmt: skip
    # Every holder who never signed in, through the filter and "every undecided matching".
    matching = as_grace.post(f"/access/reviews/{review.pk}/bulk/", {
        "action": "remove", "scope": "matching", "query": "idle_days=90&outside=true",
    }, follow=True)  # fmt: skip
    invalid = as_grace.post(f"/access/reviews/{review.pk}/bulk/", {
        "action": "remove", "scope": "matching", "query": "idle_days=ninety",
    }, follow=True)  # fmt: skip
    kept_rest = as_grace.post(f"/access/reviews/{review.pk}/bulk/", {"action": "keep_unflagged"},
                              follow=True)  # fmt: skip
    done = page(as_grace, review)

    assert "Kept 40 holders." in text(ticked.content)
    assert "Removed 250 holders matching the filters." in text(matching.content)
    assert "Nothing was removed: the filters are not valid (idle_days:" in text(invalid.content)
    assert "Kept 260 holders not flagged" in text(kept_rest.content)
    assert review.items.filter(decision="remove").count() == 250
    assert set(review.items.filter(decision="remove").values_list("user_id", flat=True)) == {
        user.pk for user in idle
    }
    assert review.items.filter(decision="").count() == 0
    assert "Every holder is decided." in text(done.encode())
    assert "Complete the review" in done
    completed = as_grace.post(f"/access/reviews/{review.pk}/complete/", follow=True)
    assert "The review is complete." in text(completed.content)
    assert AccessReview.objects.get(pk=review.pk).completed_by == grace


def test_the_evidence_holds_every_decision_removal_and_audit_record_as_a_page_and_csv(
    owners: tuple[User, User],
) -> None:
    grace, alan = owners
    people = holders(3)
    review = opened()
    items = {item.user_id: item for item in review.items.all()}
    as_grace = signed(grace)
    as_grace.post(f"/access/reviews/{review.pk}/decide/",
                  {"item": items[people[0].pk].pk, "decision": "keep",
                   "note": "=HYPERLINK(\"http://evil\")"})  # fmt: skip
    signed(alan).post(f"/access/reviews/{review.pk}/decide/",
                      {"item": items[people[1].pk].pk, "decision": "remove",
                       "note": "left"})  # fmt: skip
    AccessReviewItem.objects.filter(pk=items[people[1].pk].pk).update(
        removal="failed", removal_error="DELETE /api/v2/users/x/roles: Auth0 answered 403"
    )

    html = text(as_grace.get(f"/access/reviews/{review.pk}/evidence/").content)
    csv_response = as_grace.get(f"/access/reviews/{review.pk}/evidence/?format=csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(csv_response.streaming_content).decode())))  # type: ignore[attr-defined]

    assert f"Review {review.pk}: who holds payments.viewer" in html
    assert "kept Grace Hopper (grace@example.com)" in html
    assert "removed Alan Turing (alan@example.com)" in html
    assert "failed: DELETE /api/v2/users/x/roles: Auth0 answered 403" in html
    assert "Access review opened" in html and "Removed in an access review" in html
    holder_rows = [r for r in rows if r["record"] == "holder"]
    audit_rows = [r for r in rows if r["record"] == "audit"]
    assert len(holder_rows) == 3
    by_email = {r["holder_email"]: r for r in holder_rows}
    first, second = by_email[people[0].email], by_email[people[1].email]
    assert (first["decision"], first["decided_by"]) == ("keep", "Grace Hopper <grace@example.com>")
    assert first["note"] == '\'=HYPERLINK("http://evil")'  # a spreadsheet shows it as text
    assert (second["decision"], second["removal"]) == ("remove", "failed")
    assert by_email[people[2].email]["decision"] == ""
    assert [r["audit_action"] for r in audit_rows] == [
        "review.opened", "review.kept", "review.removed",
    ]  # fmt: skip


def test_evidence_of_all_roles_over_a_period_and_the_access_report(
    owners: tuple[User, User],
) -> None:
    grace, _ = owners
    linus = UserFactory.create(email="linus@example.com", name="Linus Torvalds")
    RoleMembershipFactory.create(user=linus, role=RoleFactory.create(name="portal-admin"))
    holders(2)
    first = opened()
    AccessReview.objects.filter(pk=first.pk).update(
        opened_at=timezone.now() - timedelta(days=400), completed_at=timezone.now()
    )
    second = opened()
    other = UserFactory.create(email="zed@example.com")
    RoleMembershipFactory.create(user=other, role=RoleFactory.create(name="checkout.viewer"),
                                 source="auth0")  # fmt: skip
    third = review_open(role="checkout.viewer", kind="scheduled", actor=SYSTEM)
    as_linus, as_grace = signed(linus), signed(grace)
    this_year = (timezone.now() - timedelta(days=30)).date().isoformat()

    everything = text(as_linus.get("/access/reviews/evidence/").content)
    recent = text(as_linus.get(f"/access/reviews/evidence/?since={this_year}").content)
    graces = text(as_grace.get("/access/reviews/evidence/").content)
    one_role = as_linus.get(f"/access/reviews/evidence/?role={ROLE}&since={this_year}&format=csv")
    bad = as_linus.get("/access/reviews/evidence/?since=yesterday")
    far = as_linus.get("/access/reviews/evidence/?until=9999-12-31")
    by_role = as_linus.get("/access/reviews/report/")
    by_entity = as_linus.get("/access/reviews/report/?by=entity")
    refused = as_grace.get("/access/reviews/report/")

    assert all(f"Review {r.pk}:" in everything for r in (first, second, third))
    assert f"Review {first.pk}:" not in recent and f"Review {third.pk}:" in recent
    # Grace owns payments.viewer, not checkout.viewer: its review is not hers to see.
    assert f"Review {second.pk}:" in graces and f"Review {third.pk}:" not in graces
    ids = {row["review_id"] for row in csv.DictReader(io.StringIO(
        b"".join(one_role.streaming_content).decode()))}  # type: ignore[attr-defined]  # fmt: skip
    assert ids == {str(second.pk)}
    assert bad.status_code == 400 and "since: 'yesterday' is not a date" in bad.content.decode()
    assert far.status_code == 400 and "until: 9999-12-31 is out of range" in far.content.decode()
    role_rows = list(csv.DictReader(io.StringIO(b"".join(by_role.streaming_content).decode())))  # type: ignore[attr-defined]
    assert {(r["role"], r["holder_email"], r["source"]) for r in role_rows} >= {
        ("checkout.viewer", "zed@example.com", "auth0"),
        ("portal-admin", "linus@example.com", "sign_in"),
    }
    entity_rows = list(csv.DictReader(io.StringIO(
        b"".join(by_entity.streaming_content).decode())))  # type: ignore[attr-defined]  # fmt: skip
    assert {r["entity_ref"] for r in entity_rows} == {"component:default/payments-api"}
    assert {r["role"] for r in entity_rows} == {ROLE} and len(entity_rows) == 2
    assert refused.status_code == 403


def test_overdue_reviews_are_a_banner_for_their_owners_and_admins_only(
    owners: tuple[User, User],
) -> None:
    grace, _ = owners
    linus = UserFactory.create(email="linus@example.com")
    RoleMembershipFactory.create(user=linus, role=RoleFactory.create(name="portal-admin"))
    ada = UserFactory.create(email="ada@example.com")
    holders(1)
    review = review_open(role=ROLE, kind="scheduled", actor=SYSTEM,
                         due_at=timezone.now() - timedelta(days=2))  # fmt: skip

    def banner(user: User) -> bool:
        return "The access review of payments.viewer is overdue" in text(
            signed(user).get("/catalog/").content
        )

    assert banner(grace) and banner(linus) and not banner(ada)
    AccessReview.objects.filter(pk=review.pk).update(completed_at=timezone.now())
    assert not banner(grace)


# --- the API ---------------------------------------------------------------------------------


def test_the_api_lists_reads_and_decides_reviews_by_the_pages_rules(
    devtenant: DevTenant, owners: tuple[User, User]
) -> None:
    grace, alan = owners
    RoleMembershipFactory.create(user=grace, role=RoleFactory.create(name=ROLE))
    people = holders(2)
    review = opened()
    as_grace, as_alan = signed(grace), signed(alan)
    auditor = {"Authorization": f"Bearer {client_token(devtenant, ['read:audit'])}"}
    reader = {"Authorization": f"Bearer {client_token(devtenant, ['read:access'])}"}
    url = f"/api/access/reviews/{review.pk}"
    decide = f"{url}/decisions"

    def post(client: Client, decisions: list[dict[str, str]]) -> Any:
        return client.post(decide, {"decisions": decisions}, content_type="application/json")

    listed = as_grace.get("/api/access/reviews").json()
    read = as_grace.get(url).json()
    ok = post(as_grace, [{"sub": people[0].sub, "decision": "keep", "note": "fine"},
                         {"sub": people[1].sub, "decision": "keep"}])  # fmt: skip
    again = post(as_alan, [{"sub": people[0].sub, "decision": "remove"}])
    own = post(as_grace, [{"sub": grace.sub, "decision": "keep"}])
    unknown = post(as_alan, [{"sub": "auth0|nobody", "decision": "keep"}])
    wrong = post(as_alan, [{"sub": grace.sub, "decision": "maybe"}])
    by_alan = post(as_alan, [{"sub": grace.sub, "decision": "remove", "note": "left"}])
    machine_all = Client().get("/api/access/reviews", headers=auditor).json()
    machine_none = Client().get("/api/access/reviews", headers=reader).json()
    machine_one = Client().get(url, headers=auditor)
    machine_write = Client().post(decide, {"decisions": [{"sub": grace.sub, "decision": "keep"}]},
                                  content_type="application/json", headers=auditor)  # fmt: skip
    stranger = signed(UserFactory.create(email="ada@example.com")).get(url)

    assert [r["id"] for r in listed["items"]] == [review.pk]
    assert listed["items"][0]["state"] == "open" and listed["items"][0]["holdersTotal"] == 3
    assert {h["sub"] for h in read["holders"]} == {grace.sub, *(p.sub for p in people)}
    holder = next(h for h in read["holders"] if h["sub"] == people[0].sub)
    assert (holder["source"], holder["decision"], holder["removal"]) == ("portal_grant", None, None)
    assert ok.status_code == 200
    decided = {h["sub"]: h for h in ok.json()["holders"]}
    assert (decided[people[0].sub]["decision"], decided[people[0].sub]["decidedBy"]) == (
        "keep", grace.sub,
    )  # fmt: skip
    assert again.status_code == 409
    assert again.json()["error"]["name"] == "ConflictError"
    assert own.status_code == 403 and "own holding" in own.json()["error"]["message"]
    assert unknown.status_code == 400 and wrong.status_code == 400
    assert by_alan.status_code == 200
    assert {h["sub"]: h["removal"]["state"] for h in by_alan.json()["holders"]
            if h["removal"]} == {grace.sub: "pending"}  # fmt: skip
    assert [r["id"] for r in machine_all["items"]] == [review.pk]
    assert machine_none["items"] == []  # reviews are audit evidence: read:audit
    assert machine_one.status_code == 200 and len(machine_one.json()["holders"]) == 3
    assert machine_write.status_code == 403
    assert stranger.status_code == 404
