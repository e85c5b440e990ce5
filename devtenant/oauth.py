"""The OAuth 2.0 / OpenID Connect side of the devtenant, on authlib's authorization server."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, grants
from authlib.oauth2.rfc6749.errors import AccessDeniedError
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from authlib.oidc.core.models import AuthorizationCodeMixin
from flask import Flask

from devtenant import tokens
from devtenant.store import Client, Tenant, User

# Client grants for the Management API are stored under this key, so the port may change.
MANAGEMENT_GRANT = "@management"
ID_TOKEN_LIFETIME = 36_000  # Auth0's default: ten hours
ACCESS_TOKEN_LIFETIME = 86_400
# What a client asks for in `acr_values` to have the person use a second factor (Auth0's name
# for it), and the `acr` the ID token then carries.
MFA_ACR = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"
# The claim the post-login Action of the README puts in access tokens: when the person last
# completed a second factor (Auth0 keeps `amr` and `auth_time` out of access tokens).
MFA_TIME_CLAIM = "https://atrium.dev/mfa_time"


class OAuthClient(ClientMixin):
    def __init__(self, client: Client) -> None:
        self.client = client

    def get_client_id(self) -> str:
        return self.client.client_id

    def get_default_redirect_uri(self) -> str | None:
        return self.client.callbacks[0] if self.client.callbacks else None

    def get_allowed_scope(self, scope: str | None) -> str:
        return scope or ""

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.client.callbacks

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret, self.client.client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in {"client_secret_post", "client_secret_basic"}

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and self.client.app_type == "regular_web"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.client.grant_types


@dataclass
class AuthorizationCode(AuthorizationCodeMixin):
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user_id: str
    sid: str
    auth_time: int
    expires_at: float
    nonce: str | None = None
    audience: str | None = None
    code_challenge: str | None = None
    code_challenge_method: str | None = None
    amr: list[str] = field(default_factory=lambda: ["pwd"])
    acr: str = ""
    mfa_at: int | None = None

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> str:
        return self.acr

    def get_amr(self) -> list[str]:
        return self.amr

    def is_expired(self) -> bool:
        return time.time() > self.expires_at


@dataclass
class SignIn:
    """A browser's session at the tenant (Auth0's SSO session), keyed by `sid`."""

    sid: str
    user_id: str
    auth_time: int
    # How the person signed in; "mfa" is added once they enter the second factor.
    amr: list[str] = field(default_factory=lambda: ["pwd"])
    mfa_at: int | None = None


class DevTenantServer(AuthorizationServer):
    def __init__(self, app: Flask, tenant: Tenant, *, roles_claim: str) -> None:
        self.tenant = tenant
        self.roles_claim = roles_claim
        self.code_lifetime = 60.0
        self.codes: dict[str, AuthorizationCode] = {}
        self.sign_ins: dict[str, SignIn] = {}
        super().__init__(app, query_client=self._query_client, save_token=lambda *_: None)

    def _query_client(self, client_id: str) -> OAuthClient | None:
        client = self.tenant.data.clients.get(client_id)
        return OAuthClient(client) if client else None

    # --- tokens shaped like Auth0's -----------------------------------------------------------

    def user_claims(self, user: User) -> dict[str, Any]:
        """What a post-login Action adds to both tokens: the user's role names."""
        return {self.roles_claim: sorted(role.name for role in self.tenant.roles_of(user.user_id))}

    def user_access_token(
        self,
        *,
        client_id: str,
        user: User,
        scope: str,
        audience: str | None,
        mfa_at: int | None = None,
    ) -> dict[str, Any]:
        now = int(time.time())
        issuer = self.tenant.issuer
        audiences = [issuer + "userinfo"]
        claims: dict[str, Any] = {
            "iss": issuer,
            "sub": user.user_id,
            "iat": now,
            "exp": now + ACCESS_TOKEN_LIFETIME,
            "scope": scope,
            "azp": client_id,
            **self.user_claims(user),
        }
        if mfa_at is not None:
            claims[MFA_TIME_CLAIM] = mfa_at
        api = self.tenant.data.apis.get(audience or "")
        if api is not None:
            audiences.insert(0, api.identifier)
            if api.token_dialect == "access_token_authz":
                claims["permissions"] = self.tenant.permissions_of(user.user_id, api.identifier)
        claims["aud"] = audiences if len(audiences) > 1 else audiences[0]
        return {
            "access_token": tokens.sign(self.tenant, claims),
            "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_LIFETIME,
            "scope": scope,
        }

    def client_access_token(self, *, client: Client, audience: str, scope: str) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "iss": self.tenant.issuer,
            "sub": f"{client.client_id}@clients",
            "aud": audience,
            "iat": now,
            "exp": now + ACCESS_TOKEN_LIFETIME,
            "scope": scope,
            "gty": "client-credentials",
            "azp": client.client_id,
        }
        return {
            "access_token": tokens.sign(self.tenant, claims),
            "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_LIFETIME,
            "scope": scope,
        }


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
    server: DevTenantServer

    def save_authorization_code(self, code: str, request: Any) -> None:
        data = request.payload.data
        sign_in: SignIn = request.user.sign_in
        asked_mfa = MFA_ACR in str(data.get("acr_values") or "").split()
        self.server.codes[code] = AuthorizationCode(
            code=code,
            client_id=request.client.get_client_id(),
            redirect_uri=data.get("redirect_uri") or "",
            scope=request.scope or "",
            user_id=sign_in.user_id,
            sid=sign_in.sid,
            auth_time=sign_in.auth_time,
            expires_at=time.time() + self.server.code_lifetime,
            nonce=data.get("nonce"),
            audience=data.get("audience"),
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
            amr=list(sign_in.amr),
            # As Auth0: the `acr` of a multi-factor sign-in when the client asked for one.
            acr=MFA_ACR if asked_mfa and "mfa" in sign_in.amr else "",
            mfa_at=sign_in.mfa_at,
        )

    def query_authorization_code(self, code: str, client: OAuthClient) -> AuthorizationCode | None:
        found = self.server.codes.get(code)
        if found and found.client_id == client.get_client_id() and not found.is_expired():
            return found
        return None

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        self.server.codes.pop(authorization_code.code, None)

    def authenticate_user(self, authorization_code: AuthorizationCode) -> Any:
        user = self.server.tenant.data.users.get(authorization_code.user_id)
        return SignedInUser(user, None) if user else None

    def generate_token(self, user: Any = None, scope: str | None = None, **_: Any) -> Any:
        code: AuthorizationCode = self.request.authorization_code
        return self.server.user_access_token(
            client_id=code.client_id, user=user.user, scope=scope or "", audience=code.audience,
            mfa_at=code.mfa_at,
        )  # fmt: skip


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
    server: DevTenantServer

    def generate_token(self, user: Any = None, scope: str | None = None, **_: Any) -> Any:
        client: Client = self.request.client.client
        audience = self.request.payload.data.get("audience") or ""
        if audience not in self.server.tenant.data.apis and (
            audience != self.server.tenant.management_audience
        ):
            raise AccessDeniedError(f"Service not enabled within domain: {audience}")
        key = MANAGEMENT_GRANT if audience == self.server.tenant.management_audience else audience
        granted = client.client_grants.get(key)
        if granted is None:
            raise AccessDeniedError(
                f"Client is not authorized to access {audience}. You need to create a "
                "client-grant associated to this API."
            )
        requested = (scope or "").split()
        allowed = [s for s in requested if s in granted] if requested else list(granted)
        return self.server.client_access_token(
            client=client, audience=audience, scope=" ".join(allowed)
        )


class PasswordGrant(grants.ResourceOwnerPasswordCredentialsGrant):
    """Auth0's Password grant (`grant_type=password`), for a client allowed it: a person's
    access token from their e-mail and password, with no browser (the demo's command line)."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
    server: DevTenantServer

    def authenticate_user(self, username: str, password: str) -> Any:
        user = self.server.tenant.user_by_email(username)
        if user is None or user.blocked or not user.check_password(password):
            return None
        return SignedInUser(user, None)

    def generate_token(self, user: Any = None, scope: str | None = None, **_: Any) -> Any:
        client: Client = self.request.client.client
        audience = self.request.payload.data.get("audience") or None
        if audience is not None and audience not in self.server.tenant.data.apis:
            raise AccessDeniedError(f"Service not enabled within domain: {audience}")
        return self.server.user_access_token(
            client_id=client.client_id, user=user.user, scope=scope or "", audience=audience
        )


class SignedInUser:
    """The resource owner as authlib sees it: the tenant's user and their SSO session."""

    def __init__(self, user: User, sign_in: SignIn | None) -> None:
        self.user = user
        self.sign_in = sign_in

    def get_user_id(self) -> str:
        return self.user.user_id


class DevTenantOpenIDCode(OpenIDCode):
    def __init__(self, server: DevTenantServer) -> None:
        super().__init__(require_nonce=False)
        self.server = server

    def exists_nonce(self, nonce: str, request: Any) -> bool:
        # A nonce is bound to one code; re-using it while that code is outstanding is refused.
        return any(code.nonce == nonce for code in self.server.codes.values())

    def resolve_client_private_key(self, client: OAuthClient) -> Any:
        return self.server.tenant.signing_key()

    def get_client_algorithm(self, client: OAuthClient) -> str:
        return "RS256"

    def get_encode_header(self, client: OAuthClient) -> dict[str, str]:
        return {"alg": "RS256", "typ": "JWT", "kid": self.server.tenant.signing_key().kid or ""}

    def get_client_claims(self, client: OAuthClient) -> dict[str, Any]:
        now = int(time.time())
        return {
            "iss": self.server.tenant.issuer,
            "aud": client.get_client_id(),
            "iat": now,
            "exp": now + ID_TOKEN_LIFETIME,
        }

    def get_authorization_code_claims(self, authorization_code: AuthorizationCode) -> Any:
        claims = super().get_authorization_code_claims(authorization_code)
        claims["sid"] = authorization_code.sid
        return claims

    def generate_user_info(self, user: SignedInUser, scope: str) -> UserInfo:
        person = user.user
        info = UserInfo(sub=person.user_id)
        scopes = scope.split()
        if "profile" in scopes:
            info.update(
                name=person.name,
                nickname=person.email.split("@", 1)[0],
                picture="",
                updated_at=person.updated_at,
            )
        if "email" in scopes:
            info.update(email=person.email, email_verified=person.email_verified)
        info.update(self.server.user_claims(person))
        return info


def create_server(app: Flask, tenant: Tenant, *, roles_claim: str) -> DevTenantServer:
    server = DevTenantServer(app, tenant, roles_claim=roles_claim)
    server.register_grant(
        AuthorizationCodeGrant, [CodeChallenge(required=False), DevTenantOpenIDCode(server)]
    )
    server.register_grant(ClientCredentialsGrant)
    server.register_grant(PasswordGrant)
    return server


# Auth0 answers token errors in its own words and statuses; authlib speaks RFC 6749's.
AUTH0_TOKEN_ERRORS = {
    "invalid_client": (401, "access_denied", "Unauthorized"),
}
AUTH0_GRANT_DESCRIPTIONS = {
    "Invalid 'code' in request.": "Invalid authorization code",
    "Invalid 'redirect_uri' in request.": (
        "Invalid redirect_uri: the redirect_uri does not match the one used at authorization"
    ),
    "Code challenge failed.": "Failed to verify code verifier",
}


def auth0_token_error(status: int, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    error = body.get("error", "")
    if error in AUTH0_TOKEN_ERRORS:
        status, name, description = AUTH0_TOKEN_ERRORS[error]
        return status, {"error": name, "error_description": description}
    if error == "invalid_grant":
        described = body.get("error_description", "")
        return 403, {
            "error": "invalid_grant",
            "error_description": AUTH0_GRANT_DESCRIPTIONS.get(described, described),
        }
    if error in {"access_denied", "unauthorized_client"}:
        return 403, body
    return status, body
