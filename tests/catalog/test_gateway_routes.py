"""Gateway routes in descriptors: their syntax, who may declare them, and who keeps a route."""

from __future__ import annotations

from pathlib import Path

import pytest

from catalog.models import Entity, GatewayRoute
from catalog.routes import Route, gateway_annotations, request_path, routes_parse
from catalog.services import location_import, location_refresh, location_register


def test_the_issue_s_example_is_two_routes() -> None:
    routes, problems = routes_parse(
        "GET,POST payments.internal.example/v1/*, payments.internal.example/admin/*"
    )
    assert problems == []
    assert [str(route) for route in routes] == [
        "GET,POST payments.internal.example/v1/*",
        "payments.internal.example/admin/*",
    ]


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("GET *", "'*' has no path"),
        ("GET */v1/*", "holds a wildcard"),
        ("GET *.example.com/v1", "holds a wildcard"),
        ("GET api.example:8443/v1", "has a port"),
        ("FETCH api.example/v1", "'FETCH' is not an HTTP method"),
        ("GET api.example/v1/*/items", "has a * before its end"),
        ("GET api.example/v1/../admin", "'..' segment"),
        ("GET api.example/v1?x=1", "without ? or #"),
        ("GET,POST", "followed by no route"),
        ("GET api.example/a extra", "is not `METHODS host/path`"),
        ("GET bad_host!/v1", "is not a DNS name"),
    ],
)
def test_a_bad_route_is_named_with_its_bad_part(value: str, named: str) -> None:
    _, problems = routes_parse(value)
    assert any(named in problem for problem in problems), problems


def test_routes_on_a_group_are_refused_naming_the_kind() -> None:
    found = gateway_annotations(
        {"kind": "Group", "metadata": {"annotations": {"atrium.dev/gateway-routes": "a.example/x"}}}
    )
    assert found.problems == (
        "atrium.dev/gateway-routes: only API and Component entities serve routes, not a Group",
    )


@pytest.mark.parametrize(
    ("one", "other", "same"),
    [
        ("GET a.example/v1/*", "POST a.example/v1/*", False),
        ("GET a.example/v1/*", "a.example/v1/orders", True),
        ("GET a.example/v1/*", "HEAD a.example/v1/x", True),
        ("a.example/v1/*", "a.example/v2/*", False),
        ("a.example/v1/*", "a.example/v1/admin/*", True),
        ("a.example/*", "b.example/*", False),
        ("a.example/v1", "a.example/v1/", False),
    ],
)
def test_the_same_route_is_an_overlap_of_host_path_and_methods(
    one: str, other: str, same: bool
) -> None:
    first, second = routes_parse(one)[0][0], routes_parse(other)[0][0]
    assert first.overlaps(second) is same
    assert second.overlaps(first) is same


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        ("/v1/orders?id=3", "/v1/orders"),
        ("/v%31/orders", "/v1/orders"),
        ("/v1/../admin", None),
        ("/v1/%2e%2e/admin", None),
        ("/v1%2Fadmin", None),
        ("/v1//admin", None),
        ("/v1\\admin", None),
        ("v1/orders", None),
        ("/v1/%ff", None),
    ],
)
def test_a_request_path_is_matched_decoded_and_only_in_normal_form(
    raw: str, path: str | None
) -> None:
    assert request_path(raw) == path


def api(name: str, routes: str, *, roles: str = "payments.viewer", audience: str = "") -> str:
    extra = f"\n    atrium.dev/audience: {audience}" if audience else ""
    return f"""\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: {name}
  annotations:
    atrium.dev/required-roles: {roles}
    atrium.dev/gateway-routes: "{routes}"{extra}
spec: {{type: service, lifecycle: production, owner: team-a}}
"""


def held(name: str) -> list[str]:
    return sorted(
        str(Route(r.host, r.path, tuple(r.methods.split(",")) if r.methods else ()))
        for r in GatewayRoute.objects.filter(entity__name=name)
    )


@pytest.mark.django_db
def test_routes_are_claimed_from_a_location_allowed_them_only(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(api("payments-api", "GET pay.example/v1/*"))
    report = location_import(target=str(tmp_path / "a.yaml"))
    assert held("payments-api") == []
    assert any(
        "may not declare gateway routes" in str(problem) and "component:default/payments-api"
        in str(problem) for problem in report.problems
    )  # fmt: skip
    report = location_import(target=str(tmp_path / "a.yaml"), allow_routes=True)
    assert report.problems == []
    assert held("payments-api") == ["GET pay.example/v1/*"]
    assert report.allow_kinds_detail["allow_routes_before"] is False
    # Taking the permission away frees the routes at the next refresh.
    location_import(target=str(tmp_path / "a.yaml"), allow_routes=False)
    assert held("payments-api") == []


@pytest.mark.django_db
def test_the_first_claim_keeps_a_route_and_the_second_entity_is_told(tmp_path: Path) -> None:
    (tmp_path / "owner").mkdir()
    (tmp_path / "owner" / "a.yaml").write_text(api("payments-api", "GET pay.example/v1/*"))
    owner = location_register(target=str(tmp_path / "owner"), allow_routes=True)
    location_refresh(location=owner)
    claimed = GatewayRoute.objects.get().claimed_at

    (tmp_path / "squatter").mkdir()
    (tmp_path / "squatter" / "b.yaml").write_text(
        api("evil-api", "GET,POST pay.example/v1/orders, evil.example/*", roles="checkout.viewer")
    )
    squatter = location_register(target=str(tmp_path / "squatter"), allow_routes=True)
    report = location_refresh(location=squatter)
    assert held("evil-api") == ["evil.example/*"]
    (problem,) = report.problems
    assert str(problem).endswith(
        "component:default/evil-api: ConflictError: atrium.dev/gateway-routes: 'GET,POST "
        "pay.example/v1/orders' is already claimed by component:default/payments-api, which "
        "declared it first"
    )
    assert Entity.objects.get(name="evil-api").problems == [
        "ConflictError: atrium.dev/gateway-routes: 'GET,POST pay.example/v1/orders' is already "
        "claimed by component:default/payments-api, which declared it first"
    ]

    # Registering the squatter again, or refreshing both in either order, changes nothing:
    # the standing claim is first, whatever the order of refreshes.
    location_refresh(location=owner)
    location_refresh(location=squatter)
    location_refresh(location=owner)
    assert held("payments-api") == ["GET pay.example/v1/*"]
    assert GatewayRoute.objects.get(entity__name="payments-api").claimed_at == claimed

    # A typo in the owner's annotation keeps its claim rather than freeing it.
    (tmp_path / "owner" / "a.yaml").write_text(api("payments-api", "GET pay.example/v1/**"))
    location_refresh(location=owner)
    location_refresh(location=squatter)
    assert held("payments-api") == ["GET pay.example/v1/*"]
    assert held("evil-api") == ["evil.example/*"]

    # Once the owner no longer declares it, the route is free, and the next claimant has it.
    (tmp_path / "owner" / "a.yaml").write_text(api("payments-api", "GET pay.example/v2/*"))
    location_refresh(location=owner)
    location_refresh(location=squatter)
    assert held("evil-api") == ["GET,POST pay.example/v1/orders", "evil.example/*"]


@pytest.mark.django_db
def test_within_one_location_the_first_read_keeps_a_new_route(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        api("first-api", "a.example/*") + "---\n" + api("second-api", "GET a.example/x")
    )
    report = location_import(target=str(tmp_path / "a.yaml"), allow_routes=True)
    assert held("first-api") == ["a.example/*"]
    assert held("second-api") == []
    assert "already claimed by component:default/first-api" in str(report.problems[0])
