"""The gateways' decision endpoint under load: `/authz/` against a bare Django view, with wrk.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/atrium_authz_bench \\
    REDIS_URL=redis://127.0.0.1:6379/9 .venv/bin/python bench/authz_bench.py

1. makes its own database (dropped and created anew) and a catalog of `--entities` entities
   (catalog_bench's generator), `--routes` of them APIs declaring one gateway route each, with
   a required role of their own, from a location allowed routes;
2. starts the devtenant and gets two people's access tokens for the routes' audience (Auth0's
   Password grant): one holding every route's role in the mirror, one holding none;
3. serves the portal as production does (gunicorn, `--workers` sync workers, DEBUG off, Redis)
   with one URL more, a bare view answering 200 (the framework's floor, through the same
   middleware);
4. runs wrk (`apt-get install wrk`) against the floor and three mixes of `/authz/` asked as
   NGINX asks it: allowed (the holder, routes picked at random), denied (the other person) and
   unknown routes, each target asked first (so the workers hold their tables, and each denial
   has its audit record of the minute); the cases take turns, `--rounds` rounds of `--seconds`
   each, and it prints the rounds' medians of requests a second and p50/p99 latency;
5. times, `--revocations` times, from a revocation's commit to the first 403 a client polling
   `/authz/` with the same token sees.

Run it by hand, never in the test suite.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AUDIENCE = "https://bench.example/api"
HOLDER, OTHER = "holder@bench.example", "other@bench.example"

FLOOR_SETTINGS = """\
from portal.settings import *  # noqa: F403
ROOT_URLCONF = "bench.authz_floor_urls"
"""
FLOOR_URLS = """\
from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse
from django.urls import path

from portal.urls import urlpatterns as portal_urlpatterns


@login_not_required
def floor(request):
    return HttpResponse("ok")


urlpatterns = [path("bench/floor", floor), *portal_urlpatterns]
"""

WRK_SCRIPT = """\
local targets = {{{targets}}}
local token = "{token}"
math.randomseed(7)
request = function()
  local target = targets[math.random(#targets)]
  return wrk.format("GET", "{path}", {{
    ["Authorization"] = "Bearer " .. token,
    ["X-Forwarded-Method"] = "GET",
    ["X-Forwarded-Host"] = target[1],
    ["X-Forwarded-Uri"] = target[2],
  }})
end
"""


def routed_entities(folder: Path, count: int) -> None:
    documents = [
        f"apiVersion: backstage.io/v1alpha1\nkind: API\nmetadata:\n  name: routed-{i}\n"
        f"  annotations:\n    atrium.dev/required-roles: bench.role-{i}\n"
        f'    atrium.dev/gateway-routes: "GET,POST svc-{i}.bench.example/v1/*"\n'
        f"    atrium.dev/audience: {AUDIENCE}\n"
        f"spec:\n  type: openapi\n  lifecycle: production\n  owner: team-0\n"
        f"  definition: 'openapi: 3.0.0'\n"
        for i in range(count)
    ]
    (folder / "routed.yaml").write_text("---\n".join(documents))


def wrk(url: str, script: Path | None, *, seconds: int, connections: int) -> dict[str, float]:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if script is not None:
        command[1:1] = ["-s", str(script)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
    figures = {"rate": rate}
    for share in ("50", "99"):
        value, unit = re.search(rf"\s{share}%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        figures[f"p{share}"] = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    codes = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    total = re.search(r"(\d+) requests in", out)
    figures["non_2xx"] = float(codes[1]) if codes else 0.0
    figures["requests"] = float(total[1]) if total else 0.0
    return figures


def warm(port: int, targets: list[tuple[str, str]], token: str) -> None:
    for _ in range(4):  # a few rounds, so that every gunicorn worker sees each target
        client = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for host, uri in targets:
            client.request("GET", "/authz/", headers={
                "Authorization": f"Bearer {token}", "X-Forwarded-Method": "GET",
                "X-Forwarded-Host": host, "X-Forwarded-Uri": uri,
            })  # fmt: skip
            client.getresponse().read()
        client.close()


def main() -> None:  # noqa: PLR0915 - one run, its steps in order
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--routes", type=int, default=1_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--seconds", type=int, default=5, help="of each case, each round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--revocations", type=int, default=5)
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    from bench.catalog_bench import generate
    from bench.common import fresh_database

    if not os.environ.get("REDIS_URL"):
        sys.exit("the decision keeps its routes and holdings only with Redis: set REDIS_URL")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    os.environ["DEBUG"] = "false"
    os.environ.setdefault("SECRET_KEY", "bench-" + "x" * 50)
    work = Path(tempfile.mkdtemp(prefix="atrium-authz-bench-"))
    os.environ["ATRIUM_VAR_DIR"] = str(work / "var")

    from devtenant.process import DevTenantProcess, free_port

    (work / "devtenant").mkdir(parents=True)
    tenant = DevTenantProcess(work / "devtenant")
    os.environ.update({
        "AUTH0_ISSUER_URL": tenant.issuer, "AUTH0_CLIENT_ID": "atrium-portal",
        "AUTH0_CLIENT_SECRET": "atrium-portal-dev-secret",
    })  # fmt: skip
    port = free_port()
    os.environ["PORTAL_BASE_URL"] = f"http://127.0.0.1:{port}"
    fresh_database(os.environ["DATABASE_URL"])

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    from access.models import Role, RoleMembership
    from catalog.services import location_import
    from devtenant.demo import CLI_CLIENT_ID, CLI_CLIENT_SECRET, demo_tenant
    from portal.models import User

    call_command("migrate", verbosity=0)
    folder = work / "catalog"
    folder.mkdir()
    generate(folder, args.entities - args.routes)
    routed_entities(folder, args.routes)
    started = time.perf_counter()
    report = location_import(target=str(folder), allow_kinds=["User", "Group"], allow_routes=True)
    took = time.perf_counter() - started
    print(f"catalog: {report.total:,} entities, {args.routes:,} of them declaring a route, "
          f"ingested in {took:.1f} s ({len(report.problems)} problems)")  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")

    seeded = demo_tenant(portal_base_url=os.environ["PORTAL_BASE_URL"])
    seeded["apis"].append({"identifier": AUDIENCE, "name": "Bench API", "scopes": []})
    seeded["users"] += [{"email": email, "name": email, "password": "bench-pw", "roles": []}
                        for email in (HOLDER, OTHER)]  # fmt: skip
    tenant.admin("seed", seeded)
    ids = {user["email"]: user["user_id"] for user in tenant.state()["users"]}
    tokens = {
        email: tenant.token(grant_type="password", username=email, password="bench-pw",
                            audience=AUDIENCE, client_id=CLI_CLIENT_ID,
                            client_secret=CLI_CLIENT_SECRET, scope="openid")
        for email in (HOLDER, OTHER)
    }  # fmt: skip
    holder = User.objects.create(sub=ids[HOLDER], email=HOLDER)
    User.objects.create(sub=ids[OTHER], email=OTHER)
    roles = Role.objects.bulk_create(Role(name=f"bench.role-{i}") for i in range(args.routes))
    RoleMembership.objects.bulk_create(
        RoleMembership(user=holder, role=role, source=RoleMembership.Source.AUTH0) for role in roles
    )
    from access.viewers import viewers_forget_all

    viewers_forget_all()

    (ROOT / "bench" / "authz_floor_settings.py").write_text(FLOOR_SETTINGS)
    (ROOT / "bench" / "authz_floor_urls.py").write_text(FLOOR_URLS)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.authz_floor_settings"}
    log = (work / "gunicorn.log").open("wb")
    gunicorn = subprocess.Popen(
        [str(Path(sys.executable).with_name("gunicorn")), "portal.wsgi", f"--bind=127.0.0.1:{port}",
         f"--workers={args.workers}", "--chdir", str(ROOT)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                connection_ = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                connection_.request("GET", "/bench/floor")
                if connection_.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or gunicorn.poll() is not None:
                sys.exit(f"gunicorn did not answer: see {work / 'gunicorn.log'}")
            time.sleep(0.3)
        print(f"gunicorn: {args.workers} sync workers, DEBUG off, Redis; wrk: 2 threads, "
              f"{args.connections} connections, {args.seconds} s a case, {args.rounds} rounds "
              "taking turns (medians)")  # fmt: skip

        rng = random.Random(7)
        routed = [(f"svc-{i}.bench.example", f"/v1/orders/{i}") for i in range(args.routes)]
        unknown = [(f"nothing-{rng.randrange(10**6)}.bench.example", "/v1/x") for _ in range(1000)]
        cases = {
            "allowed (holder, 1,000 routes)": (routed, tokens[HOLDER]),
            "denied (no role, 1,000 routes)": (routed, tokens[OTHER]),
            "unknown routes": (unknown, tokens[HOLDER]),
        }
        base = f"http://127.0.0.1:{port}"
        wrk(f"{base}/bench/floor", None, seconds=2, connections=args.connections)  # warm
        scripts: dict[str, Path | None] = {"floor (bare Django view, 200)": None}
        for name, (targets, token) in cases.items():
            script = work / f"{len(scripts)}.lua"
            listed = ",".join(f'{{"{host}","{uri}"}}' for host, uri in targets)
            script.write_text(WRK_SCRIPT.format(targets=listed, token=token, path="/authz/"))
            # Every target first, so that each worker has its tables and each denial its
            # audit record (one per subject and route a minute) before the clock starts.
            warm(port, targets, token)
            scripts[name] = script
        # The cases take turns, `--rounds` times, so that whatever else the machine does
        # weighs on each alike; the figures are the rounds' medians.
        rounds: dict[str, list[dict[str, float]]] = {name: [] for name in scripts}
        for _ in range(args.rounds):
            for name, script in scripts.items():
                url = f"{base}/bench/floor" if script is None else f"{base}/authz/"
                rounds[name].append(wrk(url, script, seconds=args.seconds,
                                        connections=args.connections))  # fmt: skip
        results = {
            name: {key: statistics.median(r[key] for r in runs) for key in runs[0]}
            for name, runs in rounds.items()
        }
        floor = results["floor (bare Django view, 200)"]["rate"]
        header = f"{'req/s':>10}{'of floor':>10}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>10}"
        print(f"{'case':<34}{header}")
        for name, figures in results.items():
            print(f"{name:<34}{figures['rate']:>10,.0f}{figures['rate'] / floor:>10.0%}"
                  f"{figures['p50']:>9.2f}{figures['p99']:>9.2f}"
                  f"{figures['non_2xx'] / max(figures['requests'], 1):>10.0%}")  # fmt: skip

        # From a revocation's commit to the first 403 seen with the same token.
        delays = []
        membership = RoleMembership.objects.get(user=holder, role__name="bench.role-0")
        for _ in range(args.revocations):
            seen_403: list[float] = []
            stop = threading.Event()

            def poll(stop: threading.Event = stop, seen_403: list[float] = seen_403) -> None:
                client = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                headers = {"Authorization": f"Bearer {tokens[HOLDER]}",
                           "X-Forwarded-Method": "GET", "X-Forwarded-Host": routed[0][0],
                           "X-Forwarded-Uri": routed[0][1]}  # fmt: skip
                while not stop.is_set():
                    client.request("GET", "/authz/", headers=headers)
                    response = client.getresponse()
                    response.read()
                    if response.status == 403:
                        seen_403.append(time.monotonic())
                        return

            poller = threading.Thread(target=poll)
            poller.start()
            time.sleep(0.5)  # allowed meanwhile
            with transaction.atomic():
                RoleMembership.objects.filter(pk=membership.pk).delete()
            committed = time.monotonic()
            poller.join(timeout=10)
            stop.set()
            if seen_403:
                delays.append((seen_403[0] - committed) * 1000)
            membership = RoleMembership.objects.create(
                user=holder, role=Role.objects.get(name="bench.role-0"),
                source=RoleMembership.Source.AUTH0,
            )  # fmt: skip
            time.sleep(0.3)
        shown = ", ".join(f"{delay:.1f}" for delay in delays)
        print(
            f"revocation's commit to the first 403 (same token), ms: {shown}; "
            f"worst {max(delays):.1f}"
            if delays
            else "revocation: no 403 seen within 10 s"
        )
    finally:
        os.killpg(gunicorn.pid, signal.SIGTERM)
        gunicorn.wait(timeout=30)
        tenant.stop()
        for name in ("authz_floor_settings.py", "authz_floor_urls.py"):
            (ROOT / "bench" / name).unlink(missing_ok=True)


if __name__ == "__main__":
    main()
