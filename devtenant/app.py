"""The devtenant's web app: discovery, JWKS, sign-in page, token, userinfo and logout endpoints."""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from authlib.oauth2 import OAuth2Error
from flask import Flask, Response, jsonify, render_template, request
from joserfc.errors import JoseError
from joserfc.jws import extract_compact
from werkzeug.wrappers import Response as BaseResponse

from devtenant import admin, management, tokens
from devtenant.demo import DEMO_MFA_CODE
from devtenant.forgery import forge
from devtenant.oauth import MFA_ACR, SignedInUser, SignIn, auth0_token_error, create_server
from devtenant.store import Tenant

SESSION_COOKIE = "devtenant_session"
DEFAULT_ROLES_CLAIM = "https://atrium.dev/roles"
# The one second-factor code every person's "authenticator" shows on this tenant.
MFA_DEMO_CODE = DEMO_MFA_CODE


def create_app(*, state_path: Path, issuer: str, roles_claim: str = DEFAULT_ROLES_CLAIM) -> Flask:
    if not issuer.endswith("/"):
        raise ValueError("the issuer ends with a slash, as Auth0's does")
    app = Flask(__name__)
    tenant = Tenant(state_path, issuer)
    app.extensions["devtenant"] = tenant
    server = create_server(app, tenant, roles_claim=roles_claim)
    app.extensions["devtenant.server"] = server
    app.extensions["devtenant.forge_next_id_token"] = []
    management.install(app)
    admin.install(app)

    @app.before_request
    def _refresh() -> None:
        # Another process (`python -m devtenant rotate-key`, a test) may have written the file.
        tenant.refresh()

    def signed_in() -> SignedInUser | None:
        sign_in = server.sign_ins.get(request.cookies.get(SESSION_COOKIE, ""))
        user = tenant.data.users.get(sign_in.user_id) if sign_in else None
        if user is None or user.blocked:
            return None
        return SignedInUser(user, sign_in)

    def error_page(status: int, title: str, detail: str) -> tuple[str, int]:
        return render_template("error.html", title=title, detail=detail), status

    def redirect_error(redirect_uri: str, error: str, description: str) -> BaseResponse:
        query = {"error": error, "error_description": description}
        if request.values.get("state"):
            query["state"] = request.values["state"]
        separator = "&" if "?" in redirect_uri else "?"
        return app.redirect(f"{redirect_uri}{separator}{urlencode(query)}")

    @app.get("/.well-known/openid-configuration")
    def discovery() -> Response:
        return jsonify(
            {
                "issuer": issuer,
                "authorization_endpoint": issuer + "authorize",
                "token_endpoint": issuer + "oauth/token",
                "userinfo_endpoint": issuer + "userinfo",
                "jwks_uri": issuer + ".well-known/jwks.json",
                "end_session_endpoint": issuer + "oidc/logout",
                "response_types_supported": ["code"],
                "response_modes_supported": ["query"],
                "grant_types_supported": ["authorization_code", "client_credentials"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                ],
                "code_challenge_methods_supported": ["S256", "plain"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "claims_supported": [
                    "aud", "auth_time", "email", "email_verified", "exp", "iat", "iss",
                    "name", "nickname", "nonce", "picture", "sid", "sub", "amr",
                ],
            }
        )  # fmt: skip

    @app.get("/.well-known/jwks.json")
    def jwks() -> Response:
        return jsonify(tenant.public_jwks())

    @app.route("/authorize", methods=["GET", "POST"])
    def authorize() -> Any:
        client_id = request.values.get("client_id", "")
        client = tenant.data.clients.get(client_id)
        if client is None:
            return error_page(
                400, "Unknown client", f"invalid_request: Unknown client: {client_id}"
            )
        redirect_uri = request.values.get("redirect_uri", "")
        if redirect_uri and redirect_uri not in client.callbacks:
            return error_page(
                400,
                "Callback URL mismatch",
                f"The provided redirect_uri {redirect_uri} is not in the list of allowed "
                f"callback URLs of the application {client.name}.",
            )
        person = signed_in()
        prompt = request.values.get("prompt", "")
        # As Auth0: a session older than `max_age` signs in again; `acr_values` naming a
        # multi-factor sign-in asks for the second factor (what the README's Action does).
        wants_login = "login" in prompt.split() or too_old(person)
        wants_mfa = MFA_ACR in request.values.get("acr_values", "").split()
        try:
            grant = server.get_consent_grant(end_user=None if wants_login else person)
        except OAuth2Error as error:
            if error.redirect_uri:
                return redirect_error(error.redirect_uri, error.error, error.description or "")
            return error_page(400, "Invalid request", f"{error.error}: {error.description}")
        if request.method == "GET":
            if person is not None and not wants_login:
                if wants_mfa and "mfa" not in (person.sign_in.amr if person.sign_in else []):
                    return second_factor_page(person)
                return server.create_authorization_response(grant=grant, grant_user=person)
            return render_template("login.html", client=client, error=None, email="")
        if request.form.get("action") == "cancel":
            return server.create_authorization_response(grant=grant, grant_user=None)
        if request.form.get("action") == "mfa":
            if person is None or person.sign_in is None:
                return render_template("login.html", client=client, error=None, email=""), 401
            if not secrets.compare_digest(request.form.get("code", "").strip(), MFA_DEMO_CODE):
                return second_factor_page(person, error="That code is not right.", status=401)
            now = int(time.time())
            person.sign_in.amr = ["pwd", "mfa"]
            person.sign_in.auth_time = person.sign_in.mfa_at = now
            return server.create_authorization_response(grant=grant, grant_user=person)
        email = request.form.get("email", "")
        user = tenant.user_by_email(email)
        if user is None or not user.check_password(request.form.get("password", "")):
            page = render_template(
                "login.html", client=client, error="Wrong email or password.", email=email
            )
            return page, 401
        if user.blocked:
            return redirect_error(grant.redirect_uri, "unauthorized", "user is blocked")
        sign_in = SignIn(sid=secrets.token_urlsafe(24), user_id=user.user_id,
                         auth_time=int(time.time()))  # fmt: skip
        server.sign_ins[sign_in.sid] = sign_in
        person = SignedInUser(user, sign_in)
        if wants_mfa:
            response = second_factor_page(person)
        else:
            response = server.create_authorization_response(grant=grant, grant_user=person)
        response.set_cookie(SESSION_COOKIE, sign_in.sid, httponly=True, samesite="Lax")
        return response

    def too_old(person: SignedInUser | None) -> bool:
        """The session signed in longer ago than the client's `max_age` allows."""
        raw = request.values.get("max_age", "")
        if person is None or person.sign_in is None or not raw.isdigit():
            return False
        return time.time() - person.sign_in.auth_time > int(raw)

    def second_factor_page(
        person: SignedInUser, *, error: str | None = None, status: int = 200
    ) -> Response:
        page = render_template("mfa.html", email=person.user.email, error=error,
                               code=MFA_DEMO_CODE)  # fmt: skip
        return Response(page, status=status)

    @app.post("/oauth/token")
    def token() -> Response:
        response: Response = server.create_token_response()
        if response.status_code >= 400 and response.is_json:
            status, body = auth0_token_error(response.status_code, response.get_json())
            response = jsonify(body)
            response.status_code = status
        elif app.extensions["devtenant.forge_next_id_token"] and response.is_json:
            # Set through /__admin/forge: the next ID token goes out broken, for tests.
            how = app.extensions["devtenant.forge_next_id_token"].pop(0)
            body = response.get_json()
            body["id_token"] = forge(tenant, body["id_token"], how)
            response = jsonify(body)
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/userinfo")
    def userinfo() -> Any:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return Response("Unauthorized", status=401)
        try:
            claims = tokens.verify(tenant, header[7:], audience=issuer + "userinfo")
        except tokens.TokenError:
            return Response("Unauthorized", status=401)
        user = tenant.data.users.get(claims["sub"])
        if user is None:
            return Response("Unauthorized", status=401)
        return jsonify(
            {
                "sub": user.user_id,
                "name": user.name,
                "nickname": user.email.split("@", 1)[0],
                "picture": "",
                "updated_at": user.updated_at,
                "email": user.email,
                "email_verified": user.email_verified,
            }
        )

    def end_session(return_to: str | None) -> Any:
        sid = request.cookies.get(SESSION_COOKIE, "")
        server.sign_ins.pop(sid, None)
        response = (
            app.redirect(return_to) if return_to else Response(render_template("logged_out.html"))
        )
        response.delete_cookie(SESSION_COOKIE)
        return response

    @app.get("/v2/logout")
    def logout() -> Any:
        return_to = request.args.get("returnTo")
        client = tenant.data.clients.get(request.args.get("client_id", ""))
        if return_to and (client is None or return_to not in client.allowed_logout_urls):
            return error_page(
                400,
                "Logout URL not allowed",
                f'The "returnTo" querystring parameter "{return_to}" is not defined as a valid '
                'URL in "Allowed Logout URLs".',
            )
        return end_session(return_to)

    @app.get("/oidc/logout")
    def oidc_logout() -> Any:
        hint = request.args.get("id_token_hint")
        target = request.args.get("post_logout_redirect_uri")
        client_id = request.args.get("client_id")
        if hint:
            try:
                claims = tokens.verify(
                    tenant, hint, audience=client_id or _aud(hint), check_expiry=False
                )
            except tokens.TokenError:
                return error_page(400, "Invalid logout request", "invalid id_token_hint")
            client_id = client_id or claims["aud"]
        client = tenant.data.clients.get(client_id or "")
        if target:
            if client is None:
                return error_page(
                    400,
                    "Invalid logout request",
                    "post_logout_redirect_uri needs an id_token_hint or a client_id",
                )
            if target not in client.allowed_logout_urls:
                return error_page(
                    400,
                    "Invalid logout request",
                    f'"post_logout_redirect_uri" {target} is not in "Allowed Logout URLs".',
                )
            if request.args.get("state"):
                separator = "&" if "?" in target else "?"
                target += separator + urlencode({"state": request.args["state"]})
        return end_session(target)

    return app


def _aud(token: str) -> str:
    """The audience an ID token names, read before its signature is checked against it."""
    try:
        audience = json.loads(extract_compact(token.encode()).payload).get("aud")
    except (JoseError, ValueError):
        return ""
    return audience if isinstance(audience, str) else ""
