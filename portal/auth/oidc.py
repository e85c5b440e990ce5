"""The OIDC client for the configured issuer (Auth0, the devtenant, or any compliant provider)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from authlib.integrations.django_client import DjangoOAuth2App, OAuth
from django.conf import settings

SCOPES = "openid profile email"


class PortalOIDCApp(DjangoOAuth2App):
    """authlib's Django client, held to RS256 whatever algorithms the provider advertises."""

    def load_server_metadata(self) -> dict[str, Any]:
        metadata: dict[str, Any] = super().load_server_metadata()
        metadata["id_token_signing_alg_values_supported"] = ["RS256"]
        return metadata


class PortalOAuth(OAuth):
    oauth2_client_cls = PortalOIDCApp


def discovery_url(issuer: str) -> str:
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


@lru_cache(maxsize=4)
def _client(issuer: str, client_id: str, client_secret: str, timeout: float) -> PortalOIDCApp:
    # One client per configuration: it caches the provider's metadata and keys.
    registry = PortalOAuth()
    client: PortalOIDCApp = registry.register(
        name="auth0",
        client_id=client_id,
        client_secret=client_secret,
        server_metadata_url=discovery_url(issuer),
        client_kwargs={
            "scope": SCOPES,
            "code_challenge_method": "S256",
            "default_timeout": timeout,
        },
    )
    return client


def oidc_client() -> PortalOIDCApp:
    return _client(
        settings.AUTH0_ISSUER,
        settings.AUTH0_CLIENT_ID,
        settings.AUTH0_CLIENT_SECRET,
        settings.AUTH0_HTTP_TIMEOUT,
    )


def id_token_claims_options() -> dict[str, Any]:
    """authlib checks `aud` against the client id only when told to, with `iss` alongside."""
    return {
        "iss": {"essential": True, "value": settings.AUTH0_ISSUER},
        "aud": {"essential": True, "value": settings.AUTH0_CLIENT_ID},
        "exp": {"essential": True},
        "iat": {"essential": True},
    }
