"""The approvals page as an owner reads it: what each request is and who asks, counts that stay
true after each decision, a bulk bar that says what it did, and pages of 50."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from access.models import AccessRequest, Decision
from catalog.services import location_refresh, location_register
from portal.models import User
from tests.factories import AccessRequestFactory, RoleFactory, RoleMembershipFactory, UserFactory
from tests.helpers import ENTITY, text

pytestmark = pytest.mark.django_db

APPROVALS = "/access/approvals/"
# Ada's team, declared where the catalog trusts Users and Groups.
CHECKOUT = """\
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: team-checkout, title: Checkout}
spec: {type: team, children: []}
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata: {name: ada}
spec:
  profile: {email: ada@example.com}
  memberOf: [team-checkout]
"""


def person(email: str, name: str) -> tuple[User, Client]:
    user = UserFactory.create(email=email, name=name)
    client = Client()
    client.force_login(user)
    return user, client


@pytest.fixture
def grace(payments: None) -> tuple[User, Client]:
    """Grace Hopper, of team-payments, which owns the payments roles."""
    return person("grace@example.com", "Grace Hopper")


@pytest.fixture
def ada(tmp_path: Path) -> User:
    """Ada Lovelace, of team-checkout, holding catalog.reader already."""
    (tmp_path / "checkout.yaml").write_text(CHECKOUT)
    location_refresh(
        location=location_register(
            target=str(tmp_path / "checkout.yaml"), allow_kinds=["User", "Group"]
        )
    )
    ada = UserFactory.create(email="ada@example.com", name="Ada Lovelace")
    RoleMembershipFactory.create(user=ada, role=RoleFactory.create(name="catalog.reader"))
    return ada


def page_of(client: Client, query: str = "") -> str:
    response = client.get(f"{APPROVALS}{query}")
    assert response.status_code == 200
    return response.content.decode()


def test_each_request_says_what_it_is_who_asks_and_how_long_it_has_waited(
    grace: tuple[User, Client], ada: User
) -> None:
    AccessRequestFactory.create(
        requester=ada, reason="Chasing a refund bug", duration=timedelta(days=14),
        created_at=timezone.now() - timedelta(hours=3, minutes=5),
    )  # fmt: skip

    page = page_of(grace[1])

    row = re.search(r'<tr id="request-\d+" class="waiting-row">.*?</tr>', page, re.S)
    assert row is not None
    said = text(row.group(0).encode())
    assert '<a href="/catalog/default/component/payments-api/">Payments API</a>' in row.group(0)
    assert "payments.viewer" in said
    assert "Ada Lovelace ada@example.com" in said
    assert 'href="/catalog/default/group/team-checkout/"' in row.group(0)
    assert "Checkout" in said and "Holds catalog.reader" in said
    assert "Holds catalog.reader Chasing a refund bug 14 days 3 hours ago Approve Deny" in said
    # On a phone each cell is labelled (by the stylesheet, from these).
    for label in ("Reason", "For", "Waiting"):
        assert f'data-label="{label}"' in row.group(0)
    # The checkbox column's header is there for screen readers only.
    assert '<span class="visually-hidden">Select</span>' in page


def test_someone_without_a_team_or_a_role_is_said_to_hold_none(
    grace: tuple[User, Client],
) -> None:
    AccessRequestFactory.create(requester=UserFactory.create(email="new@example.com"))

    said = text(page_of(grace[1]).encode())

    assert "Holds no role yet" in said


def test_a_request_for_an_entity_the_catalog_lost_names_its_ref(
    grace: tuple[User, Client],
) -> None:
    AccessRequestFactory.create(entity_ref="component:default/gone-api")
    from access.selectors import waiting_details

    [row] = waiting_details(requests=AccessRequest.objects.all())

    assert (row.entity_title, row.entity_url) == ("component:default/gone-api", "")


def test_the_counts_are_fetched_again_after_a_decision_and_stay_in_place_at_zero(
    grace: tuple[User, Client], ada: User
) -> None:
    request = AccessRequestFactory.create(requester=ada)
    _, as_grace = grace
    assert "(1)" in page_of(as_grace)

    decided = as_grace.post(
        f"{APPROVALS}{request.pk}/", {"outcome": "approved"}, headers={"HX-Request": "true"}
    )

    assert decided["HX-Trigger"] == "approvals-changed"
    assert "You approved the request" in text(decided.content)
    assert as_grace.get(f"{APPROVALS}count/").content.decode().strip() == ""
    assert as_grace.get(f"{APPROVALS}count/?as=tab").content.decode().strip() == "(0)"
    # With nothing waiting, the bar's count, the tab's and the total are still there to update.
    page = page_of(as_grace)
    assert page.count('hx-trigger="approvals-changed from:body"') == 3
    assert "Nothing is waiting for you." in page
    assert "data-bulk-bar" not in page  # nothing to decide in bulk


def test_the_bulk_bar_has_its_script_and_works_without_it(
    grace: tuple[User, Client], ada: User
) -> None:
    AccessRequestFactory.create(requester=ada)

    page = page_of(grace[1])

    assert '<script src="/static/js/approvals.js" defer></script>' in page
    assert "data-bulk-bar" in page and "Tick requests to decide several at once." in page
    bar = page[page.index("data-bulk-bar") : page.index("</form>", page.index("data-bulk-bar"))]
    # Without JavaScript the buttons work; the script disables them while nothing is ticked.
    assert "Approve selected" in bar and "disabled" not in bar


def test_approving_with_nothing_ticked_says_so(grace: tuple[User, Client], ada: User) -> None:
    request = AccessRequestFactory.create(requester=ada)

    answer = grace[1].post(f"{APPROVALS}bulk/", {"outcome": "approved"}, follow=True)

    assert "Nothing was approved: tick the requests to decide first." in text(answer.content)
    request.refresh_from_db()
    assert request.state == "pending" and not request.decisions.exists()


def test_a_bulk_decision_says_what_it_did_and_who_decided_first(
    grace: tuple[User, Client], ada: User
) -> None:
    others = [UserFactory.create() for _ in range(3)]
    mine = [AccessRequestFactory.create(requester=who) for who in others]
    first = AccessRequestFactory.create(requester=ada)
    alan, as_alan = person("alan@example.com", "Alan Turing")
    grace[1].post(f"{APPROVALS}{first.pk}/", {"outcome": "approved"})

    answer = as_alan.post(
        f"{APPROVALS}bulk/",
        {"outcome": "approved", "selected": [r.pk for r in mine] + [first.pk]},
        follow=True,
    )

    assert "Approved 3 requests; 1 was already decided by Grace Hopper." in text(answer.content)
    assert Decision.objects.filter(approver=alan).count() == 3


def test_a_bulk_decision_comes_back_to_the_page_and_filters_it_was_sent_from(
    grace: tuple[User, Client], ada: User
) -> None:
    request = AccessRequestFactory.create(requester=ada)

    answer = grace[1].post(
        f"{APPROVALS}bulk/",
        {"outcome": "denied", "selected": [request.pk], "query": "role=payments.viewer&page=2"},
    )

    assert answer["Location"] == f"{APPROVALS}?role=payments.viewer&page=2"


def many_waiting(count: int) -> None:
    """`count` people each asking for one of the payments roles, oldest first."""
    people = User.objects.bulk_create(
        User(sub=f"auth0|many-{i}", email=f"many-{i}@example.com", name=f"Person {i}",
             email_verified=True)
        for i in range(count)
    )  # fmt: skip
    start = timezone.now() - timedelta(days=2)
    AccessRequest.objects.bulk_create(
        AccessRequest(
            requester=who, entity_ref=ENTITY, reason=f"reason {i}", duration=timedelta(days=7),
            role_name="payments.admin" if i % 2 else "payments.viewer",
            created_at=start + timedelta(minutes=i),
        )
        for i, who in enumerate(people)
    )  # fmt: skip
    for who in people[:100]:
        RoleMembershipFactory.create(user=who, role=RoleFactory.create(name="catalog.reader"))


def test_a_thousand_waiting_requests_render_a_page_of_fifty_in_a_bounded_number_of_queries(
    grace: tuple[User, Client], django_assert_max_num_queries: Any
) -> None:
    many_waiting(1000)
    _, as_grace = grace

    # 25 today, the same for 3 waiting or 1,000: none per request, on the page or off it.
    with django_assert_max_num_queries(30):
        page = page_of(as_grace)

    assert page.count('class="waiting-row"') == 50
    assert "1–50 of 1000 waiting for you, oldest first." in text(page.encode())
    assert "Waiting (1000)" in text(page.encode())
    assert "reason 0<" in page and "reason 50<" not in page
    assert 'href="?page=2" rel="next"' in page and "Page 1 of 20" in page


def test_the_total_asked_again_after_a_decision_is_the_line_alone(
    grace: tuple[User, Client], django_assert_max_num_queries: Any
) -> None:
    many_waiting(1000)
    _, as_grace = grace
    page_of(as_grace)  # the person's viewer, kept, as after the page's first load

    # 18 today, the full page's 25 less its rows' entities, teams, roles and people.
    with django_assert_max_num_queries(20):
        answer = as_grace.get(
            APPROVALS, headers={"HX-Request": "true", "HX-Target": "approvals-total"}
        ).content.decode()

    assert "1–50 of 1000 waiting for you, oldest first." in text(answer.encode())
    assert answer.strip().startswith('<p class="approvals-total" id="approvals-total"')
    assert 'class="waiting-row"' not in answer


def test_pages_keep_the_filters_and_the_last_page_holds_the_rest(
    grace: tuple[User, Client],
) -> None:
    many_waiting(120)
    _, as_grace = grace

    page = page_of(as_grace, "?role=payments.admin&page=2")

    assert page.count('class="waiting-row"') == 10
    assert "51–60 of 60 matching, of 120 waiting for you" in text(page.encode())
    assert 'href="?role=payments.admin&amp;page=1" rel="prev"' in page
    assert "Page 2 of 2" in page
