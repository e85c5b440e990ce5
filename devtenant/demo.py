"""The demo tenant of SPEC's "Demo data": three people, the portal's applications and its roles."""

from __future__ import annotations

from typing import Any

from portal.scopes import API_SCOPES

DEMO_PASSWORD = "atrium-demo"
# What every demo person's authenticator shows, when a sign-in asks for a second factor.
DEMO_MFA_CODE = "246810"
PORTAL_CLIENT_ID = "atrium-portal"
PORTAL_CLIENT_SECRET = "atrium-portal-dev-secret"
AUTOMATION_CLIENT_ID = "atrium-automation"
AUTOMATION_CLIENT_SECRET = "atrium-automation-dev-secret"
PORTAL_AUDIENCE = "https://atrium.dev/api"
# The demo's payments API, behind a gateway that asks the portal (`atrium.dev/audience` of
# demo/catalog's payments-api); and a command-line client that gets people's tokens for it with
# Auth0's Password grant.
PAYMENTS_AUDIENCE = "https://payments.internal.example/api"
CLI_CLIENT_ID = "atrium-demo-cli"
CLI_CLIENT_SECRET = "atrium-demo-cli-secret"
PORTAL_API_SCOPES = list(API_SCOPES)
MANAGEMENT_SCOPES = [
    "read:users",
    "update:users",
    "read:roles",
    "read:role_members",
    "create:role_members",
    "delete:role_members",
]

DEMO_PEOPLE = [
    ("ada@example.com", "Ada Lovelace", "an engineer in team-checkout"),
    ("grace@example.com", "Grace Hopper", "an owner in team-payments"),
    ("linus@example.com", "Linus Torvalds", "a portal admin"),
]


def demo_tenant(*, portal_base_url: str) -> dict[str, Any]:
    base = portal_base_url.rstrip("/")
    everyone = [[PORTAL_AUDIENCE, s] for s in ("read:catalog", "read:access", "request:access")]
    return {
        "apis": [
            {"identifier": PORTAL_AUDIENCE, "name": "Atrium API", "scopes": PORTAL_API_SCOPES},
            {"identifier": PAYMENTS_AUDIENCE, "name": "Payments API", "scopes": []},
        ],
        "clients": [
            {
                "client_id": PORTAL_CLIENT_ID,
                "client_secret": PORTAL_CLIENT_SECRET,
                "name": "Atrium",
                "app_type": "regular_web",
                "callbacks": [f"{base}/auth/callback/"],
                "allowed_logout_urls": [f"{base}/"],
                # The portal calls the Management API with its own credentials in dev.
                "management": MANAGEMENT_SCOPES,
            },
            {
                "client_id": AUTOMATION_CLIENT_ID,
                "client_secret": AUTOMATION_CLIENT_SECRET,
                "name": "Atrium automation",
                "app_type": "non_interactive",
                "grant_types": ["client_credentials"],
                "client_grants": {PORTAL_AUDIENCE: ["read:catalog", "read:access", "read:audit"]},
            },
            {
                "client_id": CLI_CLIENT_ID,
                "client_secret": CLI_CLIENT_SECRET,
                "name": "Atrium demo command line",
                "app_type": "non_interactive",
                "grant_types": ["password"],
            },
        ],
        "roles": [
            {
                "name": "portal-admin",
                "description": "Administers Atrium",
                "permissions": [[PORTAL_AUDIENCE, s] for s in PORTAL_API_SCOPES],
            },
            {
                "name": "engineer",
                "description": "Every engineer",
                "permissions": everyone,
            },
            {"name": "payments.viewer", "description": "Read access to the payments services"},
            {"name": "payments.admin", "description": "Operate the payments services"},
            {"name": "checkout.viewer", "description": "Read access to the checkout services"},
            {"name": "platform.operator", "description": "Operate the platform services"},
        ],
        "users": [
            {
                "email": "ada@example.com",
                "name": "Ada Lovelace",
                "password": DEMO_PASSWORD,
                "roles": ["engineer", "checkout.viewer"],
            },
            {
                "email": "grace@example.com",
                "name": "Grace Hopper",
                "password": DEMO_PASSWORD,
                "roles": ["engineer", "payments.admin"],
            },
            {
                "email": "linus@example.com",
                "name": "Linus Torvalds",
                "password": DEMO_PASSWORD,
                "roles": ["engineer", "portal-admin"],
            },
        ],
    }
