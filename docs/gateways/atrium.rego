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

# The routes that take the request: the host exactly, the path equal to `path` or starting
# with `prefix`, a method named (GET covers HEAD) or none named.
routes contains route if {
	some route in data.atrium.routes
	route.host == lower(input.host)
	path_taken(route, input.path)
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

machine(payload) if payload.gty == "client-credentials"

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

# An entity that requires no role lets any valid token through.
allow if {
	some route in routes
	count(route.roles) == 0
	claims(route).sub
}

in_force(end) if end == null

in_force(end) if {
	is_string(end)
	time.now_ns() < time.parse_rfc3339_ns(end)
}
