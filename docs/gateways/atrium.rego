# A sample policy for OPA with Atrium's bundle (GET /api/authz/bundle.tar.gz): the same decision
# as /authz/, made by the gateway's own OPA from the data the bundle carries.
#
# input: {"method": "GET", "host": "payments.internal.example", "path": "/v1/orders",
#         "token": "<the caller's access token>"}
# The bundle owns data.atrium (roots ["atrium"]), so this policy lives in another package.
package gateway.authz

import rego.v1

issuer := "https://acme.eu.auth0.com/" # AUTH0_ISSUER, with its trailing slash

# The issuer's keys, fetched and kept ten minutes.
jwks := http.send({
	"method": "GET",
	"url": concat("", [issuer, ".well-known/jwks.json"]),
	"force_cache": true,
	"force_cache_duration_seconds": 600,
}).raw_body

default allow := false

# The request's path without its query, when it is one every upstream reads alike; else no
# route takes it, and it is refused. Stricter than /authz/, which decodes percent-escapes:
# this policy takes none, so `/docs/%2e%2e/admin` is never matched to `/docs/*` and then read
# as `/admin` by the upstream. No empty, `.` or `..` segment either, judged before a segment's
# `;parameters` (Tomcat and Spring read `/docs/..;/admin` as `/admin`).
path := p if {
	p := split(input.path, "?")[0]
	regex.match(`^/[A-Za-z0-9._~!$&'()*+,;=:@/-]*$`, p)
	every segment in inner_segments(split(p, "/")) {
		not split(segment, ";")[0] in {"", ".", ".."}
	}
}

# A path's segments after its leading `/`, less an empty last one (a trailing `/` is fine).
inner_segments(parts) := array.slice(parts, 1, count(parts) - 1) if {
	parts[count(parts) - 1] == ""
} else := array.slice(parts, 1, count(parts))

# The routes that take the request: the host exactly, the path equal to `path` or starting
# with `prefix`, a method named (GET covers HEAD) or none named.
routes contains route if {
	some route in data.atrium.routes
	route.host == lower(input.host)
	path_taken(route, path)
	method_taken(route, upper(input.method))
}

path_taken(route, path) if {
	route.prefix == null
	route.path == path
}

path_taken(route, path) if {
	route.prefix != null
	startswith(path, route.prefix)
}

method_taken(route, _) if count(route.methods) == 0

method_taken(route, method) if method in route.methods

method_taken(route, "HEAD") if "GET" in route.methods

# The token's claims, verified for the route's audience (RS256 by the issuer's keys, iss, aud,
# exp and nbf against the clock).
claims(route) := payload if {
	[valid, _, payload] := io.jwt.decode_verify(input.token, {
		"cert": jwks, "iss": issuer, "aud": route.audience, "time": time.now_ns(),
	})
	valid
}

# Auth0's client-credentials grant: both, as the portal asks (a person's id may end in @clients).
machine(payload) if {
	payload.gty == "client-credentials"
	endswith(payload.sub, "@clients")
}

# A person passes holding, now, one of the roles the route's entity requires.
allow if {
	some route in routes
	payload := claims(route)
	not machine(payload)
	some role in route.roles
	in_force(data.atrium.holders[payload.sub][role])
}

# A machine client passes with a scope named after one of them.
allow if {
	some route in routes
	payload := claims(route)
	machine(payload)
	some role in route.roles
	role in split(payload.scope, " ")
}

# An entity that requires no role lets any valid token through; a restricted one whose
# annotation names no valid role lets nobody through.
allow if {
	some route in routes
	count(route.roles) == 0
	not route.restricted
	claims(route).sub
}

in_force(end) if end == null

in_force(end) if {
	is_string(end)
	time.now_ns() < time.parse_rfc3339_ns(end)
}
