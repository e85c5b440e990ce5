"""Helpers the suite's packages share: the devtenant, signed-in people, the payments catalog,
and settings loaded in a fresh interpreter. Fixtures live in the conftest.py files."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import requests
from django.test import Client

from access.models import AccessRequest
from devtenant.demo import (
    CLI_CLIENT_ID,
    CLI_CLIENT_SECRET,
    DEMO_PASSWORD,
    PAYMENTS_AUDIENCE,
    PORTAL_AUDIENCE,
    demo_tenant,
)
from devtenant.process import DevTenantProcess
from portal.models import User
from tests.factories import RoleFactory, RoleMembershipFactory, UserFactory

ROOT = Path(__file__).resolve().parents[1]


# --- The devtenant ----------------------------------------------------------------------------


class DevTenant(DevTenantProcess):
    """The suite's devtenant, reset to the demo tenant for each test that uses it."""

    def reset(self, *, portal_base_url: str) -> None:
        """An empty tenant, then the demo tenant with the portal's URLs registered."""
        self.admin("reset")
        self.admin("seed", demo_tenant(portal_base_url=portal_base_url))


def tenant_ids(devtenant: DevTenant) -> tuple[dict[str, str], dict[str, str]]:
    """(user id by e-mail, role id by name) of the devtenant."""
    state = requests.get(devtenant.url("__admin/state"), timeout=10).json()
    users = {u["email"]: u["user_id"] for u in state["users"]}
    roles = {r["name"]: r["id"] for r in state["roles"]}
    return users, roles


def tenant_roles_of(devtenant: DevTenant, email: str) -> set[str]:
    """The roles the devtenant has assigned to the person with this e-mail."""
    state = requests.get(devtenant.url("__admin/state"), timeout=10).json()
    user_id = next(u["user_id"] for u in state["users"] if u["email"] == email)
    names = {r["id"]: r["name"] for r in state["roles"]}
    return {names[a["role_id"]] for a in state.get("assignments", []) if a["user_id"] == user_id}


def seed_members(devtenant: DevTenant, role: str, count: int) -> None:
    """`count` people holding `role` in the devtenant."""
    users = [
        {"email": f"member-{i}@example.com", "password": "atrium-demo", "roles": [role]}
        for i in range(count)
    ]
    devtenant.admin("seed", {"roles": [{"name": role}], "users": users})


def management(devtenant: DevTenant, method: str, path: str, body: Any = None) -> Any:
    """A call to the devtenant's Management API, as someone in Auth0's dashboard would make it."""
    token = devtenant.token(
        grant_type="client_credentials", client_id="atrium-portal",
        client_secret="atrium-portal-dev-secret", audience=devtenant.url("api/v2/"),
    )  # fmt: skip
    response = requests.request(
        method, devtenant.url(f"api/v2/{path}"), json=body,
        headers={"Authorization": f"Bearer {token}"}, timeout=10,
    )  # fmt: skip
    response.raise_for_status()
    return response.json() if response.content else None


def writer_token(devtenant: DevTenant, scopes: list[str]) -> str:
    """A token of a machine client granted these scopes of the portal's API."""
    devtenant.admin(
        "seed",
        {
            "clients": [
                {
                    "client_id": "catalog-writer",
                    "client_secret": "s3cret",
                    "name": "Catalog writer",
                    "app_type": "non_interactive",
                    "grant_types": ["client_credentials"],
                    "client_grants": {PORTAL_AUDIENCE: scopes},
                }
            ]
        },
    )
    return devtenant.token(
        grant_type="client_credentials",
        client_id="catalog-writer",
        client_secret="s3cret",
        audience=PORTAL_AUDIENCE,
    )


def gateway_token(devtenant: DevTenant, email: str, audience: str = PAYMENTS_AUDIENCE) -> str:
    """A person's access token for an API behind a gateway, from the devtenant (the demo's
    command-line client, Auth0's Password grant)."""
    return devtenant.token(
        grant_type="password", username=email, password=DEMO_PASSWORD, audience=audience,
        client_id=CLI_CLIENT_ID, client_secret=CLI_CLIENT_SECRET, scope="openid",
    )  # fmt: skip


# The payments API with routes for the gateways (PAYMENTS's, with two annotations more).
PAYMENTS_ROUTES = "GET,POST payments.internal.example/v1/*, payments.internal.example/admin/*"


def payments_with_routes(folder: Path) -> None:
    """The payments entities and people, payments-api declaring PAYMENTS_ROUTES for
    PAYMENTS_AUDIENCE, from a location allowed people, groups and routes."""
    from catalog.services import location_refresh, location_register

    own_role("payments.viewer", "team-payments")
    own_role("payments.admin", "team-payments")
    routed = PAYMENTS.replace(
        "    atrium.dev/max-access-duration: P30D\n",
        "    atrium.dev/max-access-duration: P30D\n"
        f'    atrium.dev/gateway-routes: "{PAYMENTS_ROUTES}"\n'
        f"    atrium.dev/audience: {PAYMENTS_AUDIENCE}\n",
    )
    (folder / "payments.yaml").write_text(routed + "---\n" + ALAN)
    location = location_register(
        target=str(folder / "payments.yaml"), allow_kinds=["User", "Group"], allow_routes=True
    )
    location_refresh(location=location)


def pkce_pair() -> tuple[str, str]:
    """A PKCE verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode().rstrip("=")


# --- People -----------------------------------------------------------------------------------


def signed_in(email: str, *roles: str, email_verified: bool = True) -> Client:
    """A browser session of a person who holds these roles in the mirror, signed in with an
    e-mail Auth0 verified unless told otherwise."""
    user = UserFactory.create(email=email, email_verified=email_verified)
    for name in roles:
        RoleMembershipFactory.create(user=user, role=RoleFactory.create(name=name))
    client = Client()
    client.force_login(user)
    return client


def person_of_tenant(devtenant: DevTenant, email: str) -> tuple[User, Client]:
    """A person as they are after signing in: their `sub` is the devtenant's id for them."""
    users, _ = tenant_ids(devtenant)
    user = UserFactory.create(sub=users[email], email=email)
    client = Client()
    client.force_login(user)
    return user, client


def ada_of_the_tenant(devtenant: DevTenant) -> tuple[User, Client]:
    """Ada as she is after signing in: her `sub` is the devtenant's id for her."""
    users, _ = tenant_ids(devtenant)
    ada = UserFactory.create(
        sub=users["ada@example.com"], email="ada@example.com", name="Ada Lovelace"
    )
    client = Client()
    client.force_login(ada)
    return ada, client


def own_role(name: str, *owners: str, **entry: object) -> None:
    """Give a role owners in the registry (creating it in the mirror if a test has not synced),
    as a portal admin would: through the registry's own parser and service."""
    from access.audit import SYSTEM
    from access.models import Role
    from access.registry import registry_entry_parse
    from access.services import role_registry_set

    role, _ = Role.objects.get_or_create(name=name)
    role_registry_set(
        role=role, entry=registry_entry_parse({"owners": list(owners), **entry}), actor=SYSTEM
    )


# --- What people see and send -----------------------------------------------------------------


def text(html: bytes) -> str:
    """The page as a person reads it: tags dropped, whitespace folded."""
    return " ".join(re.sub(r"<[^>]+>", " ", html.decode()).split())


def names(items: list[dict[str, Any]]) -> list[str]:
    """The names of entities as the API returns them."""
    return [item["metadata"]["name"] for item in items]


def ask(client: Client, role: str = "payments.viewer", **extra: str) -> Any:
    """Ask for a role of the payments API through the form, as a person would."""
    form = {"entity": ENTITY, "role": role, "reason": "On call for payments", "duration": "P7D"}
    return client.post("/access/requests/new/", {**form, **extra}, follow=True)


def ada_asks_grace(devtenant: DevTenant) -> tuple[AccessRequest, Client, Client]:
    """Ada asks for payments.viewer through the form; Grace, of team-payments, decides it. The
    pending request, and Ada's and Grace's sessions."""
    _, as_ada = person_of_tenant(devtenant, "ada@example.com")
    _, as_grace = person_of_tenant(devtenant, "grace@example.com")
    ask(as_ada)
    return AccessRequest.objects.get(), as_ada, as_grace


def post_location(client: Client, body: dict[str, Any], token: str = "", **query: str) -> Any:
    """POST /api/catalog/locations, with a bearer token when given one."""
    path = "/api/catalog/locations" + ("?" + "&".join(f"{k}={v}" for k, v in query.items()))
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post(path, body, content_type="application/json", headers=headers)


def browser_sign_in(page: Any, base_url: str, email: str) -> None:
    """Sign in in Chromium at the devtenant's login form, landing on the catalog."""
    from playwright.sync_api import expect

    page.goto(f"{base_url}/catalog/")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Catalog", exact=True)).to_be_visible()


# --- The payments catalog ---------------------------------------------------------------------

ENTITY = "component:default/payments-api"
# team-payments with Grace in it, and nothing else.
PEOPLE = """\
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: team-payments}
spec: {type: team, children: []}
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata: {name: grace}
spec: {profile: {email: grace@example.com}, memberOf: [team-payments]}
"""

PAYMENTS = """\
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: team-payments}
spec: {type: team, children: []}
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata: {name: grace}
spec:
  profile: {email: grace@example.com}
  memberOf: [team-payments]
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: payments-api
  title: Payments API
  description: Takes card payments
  tags: [java, payments]
  links: [{url: "https://runbooks.example.com/payments", title: Runbook}]
  annotations:
    atrium.dev/required-roles: payments.viewer, payments.admin
    atrium.dev/max-access-duration: P30D
spec:
  type: service
  lifecycle: production
  owner: team-payments
  providesApis: [payments]
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata: {name: payments, description: The payments API}
spec:
  type: openapi
  lifecycle: production
  owner: team-payments
  definition: "openapi: 3.0.0"
"""
# Another owner of the payments services, so two people can decide at once.
ALAN = """\
apiVersion: backstage.io/v1alpha1
kind: User
metadata: {name: alan}
spec:
  profile: {email: alan@example.com}
  memberOf: [team-payments]
"""


# team-checkout with Ada in it, the payments ledger (payments.admin) and the payments audit
# (payments.auditor): what the registry's policies are tried on, beside PAYMENTS.
CHECKOUT = """\
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: team-checkout}
spec: {type: team, children: []}
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata: {name: ada}
spec: {profile: {email: ada@example.com}, memberOf: [team-checkout]}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: payments-ledger
  annotations: {atrium.dev/required-roles: payments.admin}
spec: {type: service, lifecycle: production, owner: team-payments}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: payments-audit
  annotations: {atrium.dev/required-roles: payments.auditor}
spec: {type: service, lifecycle: production, owner: team-payments}
"""
LEDGER = "component:default/payments-ledger"
AUDIT = "component:default/payments-audit"


def catalog_add(path: Path, text: str) -> None:
    """Register and read a descriptor file that may define people and groups."""
    from catalog.services import location_refresh, location_register

    path.write_text(text)
    location_refresh(location=location_register(target=str(path), allow_kinds=["User", "Group"]))


# --- Settings in a fresh interpreter ----------------------------------------------------------

CONFIG_VARIABLES = {
    "DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "SECRET_KEY",
    "DEBUG",
    "PORTAL_BASE_URL",
    "EMAIL_URL",
    "BEHIND_TLS_PROXY",
    "EXTRA_ALLOWED_HOSTS",
    "AUTH0_DOMAIN",
    "AUTH0_ISSUER_URL",
    "AUTH0_CLIENT_ID",
    "AUTH0_CLIENT_SECRET",
    "AUTH0_AUDIENCE",
    "AUTH0_MGMT_CLIENT_ID",
    "AUTH0_MGMT_CLIENT_SECRET",
    "POSTGRES_HOST",
    "POSTGRES_PORT",
    "POSTGRES_DB",
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
}
# What a production deployment sets besides the variable under test.
PRODUCTION = {
    "SECRET_KEY": "x" * 50,
    "AUTH0_DOMAIN": "acme.eu.auth0.com",
    "AUTH0_CLIENT_ID": "portal-client",
    "AUTH0_CLIENT_SECRET": "portal-secret",
}
PRINT_SETTINGS = """
import json
from django.conf import settings as s
print(json.dumps({
    "DEBUG": s.DEBUG,
    "SECRET_KEY": s.SECRET_KEY,
    "DATABASE": {k: s.DATABASES["default"][k] for k in ("ENGINE", "NAME", "HOST", "PORT", "USER")},
    "CACHE": s.CACHES["default"],
    "BROKER": s.CELERY_BROKER_URL,
    "BROKER_OPTIONS": s.CELERY_BROKER_TRANSPORT_OPTIONS,
    "ALLOWED_HOSTS": s.ALLOWED_HOSTS,
    "CSRF_TRUSTED_ORIGINS": s.CSRF_TRUSTED_ORIGINS,
    "SESSION_COOKIE_SECURE": s.SESSION_COOKIE_SECURE,
    "CSRF_COOKIE_SECURE": s.CSRF_COOKIE_SECURE,
    "SESSION_COOKIE_HTTPONLY": s.SESSION_COOKIE_HTTPONLY,
    "SECURE_SSL_REDIRECT": s.SECURE_SSL_REDIRECT,
    "SECURE_HSTS_SECONDS": s.SECURE_HSTS_SECONDS,
    "SECURE_PROXY_SSL_HEADER": s.SECURE_PROXY_SSL_HEADER,
    "EMAIL_BACKEND": s.EMAIL_BACKEND,
    "EMAIL_HOST": s.EMAIL_HOST,
    "PORTAL_BASE_URL": s.PORTAL_BASE_URL,
    "AUTH0_ISSUER": s.AUTH0_ISSUER,
    "AUTH0_CLIENT_ID": s.AUTH0_CLIENT_ID,
    "AUTH0_MGMT_CLIENT_ID": s.AUTH0_MGMT_CLIENT_ID,
    "AUTH0_MGMT_CLIENT_SECRET": s.AUTH0_MGMT_CLIENT_SECRET,
}))
"""


def load_settings(
    tmp_path: Path, script: str = PRINT_SETTINGS, **variables: str
) -> subprocess.CompletedProcess[str]:
    """Import the settings in a fresh interpreter, as a process started with this env would."""
    environment = {k: v for k, v in os.environ.items() if k not in CONFIG_VARIABLES}
    environment.update(
        DJANGO_SETTINGS_MODULE="portal.settings",
        ATRIUM_VAR_DIR=str(tmp_path / "var"),
        ATRIUM_ENV_FILE=str(tmp_path / "no.env"),
        **variables,
    )
    return subprocess.run(
        [sys.executable, "-c", script],
        env=environment,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
