"""The access-request API: the same rules as the pages, in SPEC's shapes."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from access.models import AccessRequest
from tests.helpers import ENTITY, DevTenant, person_of_tenant
from tests.portal.auth_helpers import machine_token

pytestmark = pytest.mark.django_db


def post(client: Client, path: str, body: dict[str, str]) -> Any:
    return client.post(f"/api/access/{path}", body, content_type="application/json")


ASK = {"entityRef": ENTITY, "role": "payments.viewer", "reason": "On call", "duration": "P7D"}


def test_ask_decide_and_conflict_through_the_api(devtenant: DevTenant, payments: None) -> None:  # noqa: F811
    ada, as_ada = person_of_tenant(devtenant, "ada@example.com")
    grace, as_grace = person_of_tenant(devtenant, "grace@example.com")

    created = as_ada.post("/api/access/requests", ASK, content_type="application/json")
    again = as_ada.post("/api/access/requests", ASK, content_type="application/json")
    body = created.json()

    assert created.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == body["id"]
    assert body["state"] == "pending" and body["grant"] is None
    assert body["requester"] == {"sub": ada.sub, "email": "ada@example.com"}
    assert (body["entityRef"], body["role"], body["duration"]) == (ENTITY, "payments.viewer", "P7D")

    own = as_ada.post(
        f"/api/access/requests/{body['id']}/approve", {}, content_type="application/json"
    )
    assert own.status_code == 403
    assert own.json()["error"] == {"name": "NotAllowedError",
                                   "message": "Nobody decides their own request, from this or "
                                              "another account."}  # fmt: skip

    approved = as_grace.post(f"/api/access/requests/{body['id']}/approve",
                             {"comment": "ok"}, content_type="application/json")  # fmt: skip
    twice = as_grace.post(f"/api/access/requests/{body['id']}/deny", {},
                          content_type="application/json")  # fmt: skip

    assert approved.status_code == 200
    decision = approved.json()["decisions"][0]
    assert (decision["by"], decision["outcome"], decision["comment"]) == (
        grace.sub,
        "approved",
        "ok",
    )
    assert approved.json()["grant"]["state"] == "approved"
    assert twice.status_code == 409
    assert twice.json()["error"]["message"] == "This request was already approved by Grace."


def test_bad_requests_say_what_is_wrong(devtenant: DevTenant, payments: None) -> None:  # noqa: F811
    _, as_ada = person_of_tenant(devtenant, "ada@example.com")

    def ask(**change: str) -> tuple[int, str]:
        response = as_ada.post("/api/access/requests", {**ASK, **change},
                               content_type="application/json")  # fmt: skip
        return response.status_code, response.json()["error"]["message"]

    assert ask(role="nope") == (
        400,
        f"{ENTITY} does not require 'nope'; it requires payments.admin, payments.viewer",
    )
    assert ask(duration="P60D") == (
        400,
        "The duration must be longer than zero and at most 30 days.",
    )
    assert ask(duration="soon") == (
        400,
        "duration: 'soon' is not an ISO 8601 duration such as P30D or PT12H",
    )
    assert ask(entityRef="component:default/nope")[0] == 404
    assert not AccessRequest.objects.exists()


def test_machines_read_requests_and_grants_but_do_not_ask(
    client: Client,
    devtenant: DevTenant,
    payments: None,
) -> None:
    _, as_ada = person_of_tenant(devtenant, "ada@example.com")
    as_ada.post("/api/access/requests", ASK, content_type="application/json")
    auth = {"Authorization": f"Bearer {machine_token(devtenant)}"}

    listed = client.get("/api/access/requests", headers=auth).json()
    grants = client.get("/api/access/grants", headers=auth).json()
    asked = client.post("/api/access/requests", ASK, content_type="application/json", headers=auth)

    assert [item["role"] for item in listed["items"]] == ["payments.viewer"]
    assert grants == {"items": []}
    assert asked.status_code == 403  # no request:access scope, and no person to ask for


def test_people_see_only_requests_that_concern_them(
    devtenant: DevTenant,
    payments: None,
) -> None:
    _, as_ada = person_of_tenant(devtenant, "ada@example.com")
    _, as_grace = person_of_tenant(devtenant, "grace@example.com")
    _, as_linus = person_of_tenant(devtenant, "linus@example.com")
    request_id = as_ada.post("/api/access/requests", ASK, content_type="application/json").json()[
        "id"
    ]

    assert len(as_grace.get("/api/access/requests").json()["items"]) == 1  # she decides it
    assert as_linus.get("/api/access/requests").json()["items"] == []
    assert as_linus.get(f"/api/access/requests/{request_id}").status_code == 404
