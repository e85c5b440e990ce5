"""Access on an entity's page, for each person who looks: what they hold and until when, what
they asked, what they may ask and why not; and for its owners, who holds it and what waits."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from access.models import AccessRequest, RoleMembership
from portal.models import User
from tests.factories import AccessRequestFactory, GrantFactory, RoleFactory, UserFactory
from tests.helpers import ENTITY, ask, signed_in, text

pytestmark = pytest.mark.django_db
PAGE = "/catalog/default/component/payments-api/"
ASK_VIEWER = "role=payments.viewer"
ASK_ADMIN = "role=payments.admin"


def read(client: Client, tab: str = "") -> str:
    response = client.get(PAGE + (f"?tab={tab}" if tab else ""))
    assert response.status_code == 200
    return str(response.content.decode())


def region(page: str, label: str) -> str:
    found = re.search(rf'<section [^>]*aria-label="{label}">(.*?)</section>', page, re.S)
    assert found, f"no {label} on the page"
    return str(found[1])


def role_card(page: str, role: str) -> str:
    found = re.search(rf"<section [^>]*>\s*<h2 [^>]*><code>{re.escape(role)}</code>.*?</section>",
                      page, re.S)  # fmt: skip
    assert found, f"no card for {role}"
    return text(found[0].encode())


def test_an_engineer_without_a_role_may_ask_for_either_and_sees_no_holders(
    payments: None,
) -> None:
    ada = signed_in("ada@example.com")
    signed_in("bob@example.com", "payments.viewer")

    overview, access = read(ada), read(ada, "access")

    roles = text(region(overview, "Required roles").encode())
    assert roles.count("You do not hold this role Request access") == 2
    assert "decided by team-payments" in roles
    assert f"entity=component%3Adefault%2Fpayments-api&amp;{ASK_VIEWER}" in overview
    assert ASK_ADMIN in overview
    assert "Who holds it" not in access and "Bob" not in access
    assert "Waiting for a decision" not in access


def test_holding_one_declared_role_is_access_and_no_other_is_offered(payments: None) -> None:
    bob = signed_in("bob@example.com", "payments.admin")
    refusal = "You have access through payments.admin already."

    overview, access = read(bob), read(bob, "access")
    form = bob.get("/access/requests/new/", {"entity": ENTITY, "role": "payments.viewer"})
    by_form = ask(bob, "payments.viewer")
    by_api = bob.post(
        "/api/access/requests",
        {"entityRef": ENTITY, "role": "payments.viewer", "reason": "On call", "duration": "P7D"},
        content_type="application/json",
    )

    assert "You have access through payments.admin." in text(overview.encode())
    assert ASK_VIEWER not in overview and ASK_VIEWER not in access
    assert refusal in role_card(access, "payments.viewer")
    assert "You hold this role, with no end" in role_card(access, "payments.admin")
    # The form and the API refuse as the page does, in the same words.
    assert refusal in text(form.content)
    assert '<option value="payments.viewer"' not in form.content.decode()
    assert refusal in text(by_form.content)
    assert by_api.status_code == 400
    assert by_api.json()["error"]["message"] == refusal
    assert not AccessRequest.objects.exists()


def test_a_grant_that_ends_says_until_when_and_offers_to_extend_it(payments: None) -> None:
    ada = signed_in("ada@example.com")
    person = User.objects.get(email="ada@example.com")
    ends = timezone.now() + timedelta(days=2, hours=1)
    grant = GrantFactory.create(requester=person, role_name="payments.viewer", expires_at=ends)

    page = read(ada)
    card = region(page, "Required roles")
    extend = f"{ASK_VIEWER}&amp;extend={grant.pk}"

    assert "You hold this role until in 2 days" in text(card.encode())
    assert f'<time datetime="{ends.isoformat()}"' in card
    assert extend in card
    # Holding a grant that ends, she extends it rather than asking for the other role.
    assert ASK_ADMIN not in card
    assert "You have access through payments.viewer already, until it ends" in text(card.encode())
    form = ada.get("/access/requests/new/?" + extend.replace("&amp;", "&") + f"&entity={ENTITY}")
    assert f"Extending request {grant.pk}" in form.content.decode()


def test_after_asking_the_page_shows_the_request_not_another_button(payments: None) -> None:
    ada = signed_in("ada@example.com")
    ask(ada, "payments.viewer")
    request = AccessRequest.objects.get()

    page = read(ada)
    card = region(page, "Required roles")

    assert f'<a href="/access/requests/{request.pk}/">see your request</a>' in card
    assert '<span class="badge badge-warn">waiting for a decision</span>' in card
    assert ASK_VIEWER not in card
    assert ASK_ADMIN in card  # the other role she may still ask for


def test_owners_see_who_holds_each_role_until_when_and_what_waits(payments: None) -> None:
    grace = signed_in("grace@example.com")
    bob = UserFactory.create(email="bob@example.com", name="Bob Dylan")
    ends = timezone.now() + timedelta(days=5, hours=1)
    GrantFactory.create(requester=bob, role_name="payments.viewer", expires_at=ends)
    carol = UserFactory.create(email="carol@example.com", name="Carol Shaw")
    RoleMembership.objects.create(
        user=carol, role=RoleFactory.create(name="payments.admin"), source="auth0"
    )
    dan = UserFactory.create(email="dan@example.com", name="Dan Abramov")
    waiting = AccessRequestFactory.create(requester=dan, role_name="payments.admin")
    elsewhere = AccessRequestFactory.create(
        requester=dan, role_name="payments.viewer", entity_ref="component:default/other"
    )

    access = read(grace, "access")

    viewer = role_card(access, "payments.viewer")
    assert "Who holds it Bob Dylan until in 5 days · granted through Atrium" in viewer
    admin = role_card(access, "payments.admin")
    assert "Carol Shaw no end · granted in Auth0 directly" in admin
    pending = region(access, "Waiting for a decision")
    assert f'<a href="/access/requests/{waiting.pk}/">Request {waiting.pk}</a>' in pending
    assert "Dan Abramov asks for payments.admin" in text(pending.encode())
    assert f"/access/requests/{elsewhere.pk}/" not in pending  # asked of another entity
    # Nobody else sees them: not an engineer, however much she holds.
    others = read(signed_in("erin@example.com", "payments.admin"), "access")
    assert "Bob Dylan" not in others and "Carol Shaw" not in others and "Dan" not in others


def test_admins_see_holders_and_a_long_list_is_counted(payments: None, settings: object) -> None:
    linus = signed_in("linus@example.com", "portal-admin")
    role = RoleFactory.create(name="payments.viewer")
    for number in range(30):
        RoleMembership.objects.create(
            user=UserFactory.create(email=f"holder-{number:02}@example.com"),
            role=role,
            source="sign_in",
        )

    access = read(linus, "access")

    card = role_card(access, "payments.viewer")
    assert card.count("no end · ") == 25
    assert "Holder-00" in card and "Holder-29" not in card
    assert "and 5 more: everyone who holds payments.viewer" in card
    assert 'href="/access/roles/payments.viewer/"' in access
    assert "No request for these roles waits." in text(
        region(access, "Waiting for a decision").encode()
    )


def test_the_access_tab_reads_as_many_queries_for_many_holders_as_for_few(
    payments: None,
) -> None:
    grace = signed_in("grace@example.com")
    role = RoleFactory.create(name="payments.viewer")

    def queries_with(holders: int) -> int:
        for number in range(holders):
            person = UserFactory.create(email=f"h{holders}-{number}@example.com")
            RoleMembership.objects.create(user=person, role=role, source="sign_in")
            AccessRequestFactory.create(requester=person, role_name="payments.admin")
        read(grace, "access")  # the session's first request reads what later ones keep
        with CaptureQueriesContext(connection) as captured:
            read(grace, "access")
        return len(captured.captured_queries)

    assert queries_with(2) == queries_with(40)
