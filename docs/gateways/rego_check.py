"""Evaluate docs/gateways/atrium.rego with regorus, on a bundle's data and real devtenant tokens.

By hand, not in the suite: regorus (PyPI `opa-eval`) in a virtualenv of its own, then

    python3 -m venv /tmp/opa-venv && /tmp/opa-venv/bin/pip install opa-eval
    DEBUG=true .venv/bin/python docs/gateways/rego_check.py [bundle.tar.gz]

regorus lacks `http.send` (the JWKS is given as data instead) and every JWT verification
builtin: `io.jwt.decode_verify` is replaced by a decode that checks iss, aud and exp, so the
signature is not checked here (the tampered token passes). No OPA binary installs here.
"""

import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from devtenant.demo import CLI_CLIENT_ID, CLI_CLIENT_SECRET, PAYMENTS_AUDIENCE, demo_tenant
from devtenant.process import DevTenantProcess

work = Path(tempfile.mkdtemp())
t = DevTenantProcess(work)
t.admin("seed", demo_tenant(portal_base_url="http://127.0.0.1:8000"))
ids = {u["email"]: u["user_id"] for u in t.state()["users"]}


def tok(email):
    return t.token(
        grant_type="password",
        username=email,
        password="atrium-demo",
        audience=PAYMENTS_AUDIENCE,
        client_id=CLI_CLIENT_ID,
        client_secret=CLI_CLIENT_SECRET,
        scope="openid",
    )


jwks = t.http.get(t.url(".well-known/jwks.json")).text
policy = (Path(__file__).parent / "atrium.rego").read_text()
policy = policy.replace('issuer := "https://acme.eu.auth0.com/"', f'issuer := "{t.issuer}"')
start = policy.index("jwks := http.send(")
end = policy.index("}).raw_body") + len("}).raw_body")
policy = policy[:start] + "jwks := data.jwks" + policy[end:]
# regorus has io.jwt.decode but no verification builtin: the signature is not checked here
# (the tampered token passes this stand-in), iss, aud and exp are.
c0 = policy.index("claims(route) := payload if {")
c1 = policy.index("\n}\n", c0) + 3
policy = (
    policy[:c0]
    + """claims(route) := payload if {
	[_, payload, _] := io.jwt.decode(input.token)
	payload.iss == issuer
	route.audience in payload.aud
	time.now_ns() < payload.exp * 1000000000
}
"""
    + policy[c1:]
)
(work / "p.rego").write_text(policy)
routes = [
    {
        "host": "payments.internal.example",
        "path": "/v1/*",
        "prefix": "/v1/",
        "methods": ["GET", "POST"],
        "entity": "component:default/payments-api",
        "audience": PAYMENTS_AUDIENCE,
        "roles": ["payments.admin", "payments.viewer"],
    }
]
if len(sys.argv) > 1:  # a bundle downloaded from the portal
    with tarfile.open(sys.argv[1]) as a:
        routes = json.load(a.extractfile("atrium/routes/data.json"))
        holders = json.load(a.extractfile("atrium/holders/data.json"))
else:
    holders = {
        ids["ada@example.com"]: {"payments.viewer": None},
        ids["grace@example.com"]: {"payments.admin": "2000-01-01T00:00:00Z"},
    }
data = {"atrium": {"routes": routes, "holders": holders}, "jwks": jwks}
code = f"""
import json, opa_eval, os
QUERY = os.environ.get("Q", "data.gateway.authz.allow")
e = opa_eval.OpaEval({str(work / "p.rego")!r}, data_json={
    json.dumps(json.dumps(data))
}, query=QUERY)
for name, inp in json.loads({
    json.dumps(
        json.dumps(
            {
                "ada GET /v1/orders (holds payments.viewer)": {
                    "method": "GET",
                    "host": "payments.internal.example",
                    "path": "/v1/orders",
                    "token": tok("ada@example.com"),
                },
                "ada HEAD /v1/orders": {
                    "method": "HEAD",
                    "host": "Payments.Internal.Example",
                    "path": "/v1/orders",
                    "token": tok("ada@example.com"),
                },
                "ada DELETE /v1/orders (method not declared)": {
                    "method": "DELETE",
                    "host": "payments.internal.example",
                    "path": "/v1/orders",
                    "token": tok("ada@example.com"),
                },
                "ada GET /v2/x (no route)": {
                    "method": "GET",
                    "host": "payments.internal.example",
                    "path": "/v2/x",
                    "token": tok("ada@example.com"),
                },
                "grace GET /v1/orders (her grant ended in 2000)": {
                    "method": "GET",
                    "host": "payments.internal.example",
                    "path": "/v1/orders",
                    "token": tok("grace@example.com"),
                },
                "linus GET /v1/orders (holds nothing)": {
                    "method": "GET",
                    "host": "payments.internal.example",
                    "path": "/v1/orders",
                    "token": tok("linus@example.com"),
                },
                "ada with a tampered token": {
                    "method": "GET",
                    "host": "payments.internal.example",
                    "path": "/v1/orders",
                    "token": tok("ada@example.com")[:-4] + "AAAA",
                },
            }
        )
    )
}).items():
    print(f"{{name:<50}} allow = {{e.evaluate(json.dumps(inp))}}")
"""
r = subprocess.run(["/tmp/opa-venv/bin/python", "-c", code], capture_output=True, text=True)
print(r.stdout or r.stderr[-2000:])
t.stop()
