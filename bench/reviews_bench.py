"""Access reviews benchmark: a role with 10,000 holders reviewed from opening to completion.

Run by hand, on PostgreSQL (a database of its own, created anew), Redis (the broker and the
cache, as in production) and a devtenant it starts on a free port, with one Celery worker of its
own (`--pool=solo`, a queue of its own that the portal's access tasks are routed to):

    DEBUG=true .venv/bin/python bench/reviews_bench.py [--holders 10000] [--removals 500]

`--holders` people hold `bench.viewer` in the devtenant and in the portal's mirror: most through
a portal grant an owner approved, signed in lately (not flagged); `--outside` (1,500) granted in
Auth0 directly (flagged "granted outside the portal"); `--removals` (500) who have not signed in
for 200 days (flagged "no sign-in lately"). An owner of the role, signed in, then does what the
review page offers, each step timed with its SQL queries:

1. opening the review: beat's `reviews_open_due`, the snapshot of every holder;
2. the first page of the review (50 holders), twice (the second with the viewer kept);
3. "keep all not flagged", one POST;
4. removing every holder not signed in for 90 days, one POST ("every undecided holder matching
   these filters"), then the worker carrying each removal into the devtenant, timed until all
   are gone there and in the mirror, with the Management API calls against the minimum (one
   DELETE per removal and one token: the mirror knows the role's id);
5. keeping the rest (granted outside the portal) by the same filter, and completing the review.

With `--rate N` the devtenant answers the Management API at N requests a second (a bucket of
`--burst`), as Auth0 does, during step 4. The devtenant's share of the removals' time comes from
its request log (it rewrites its state file at every change, 10,000 users' worth); the worker's
and the devtenant's logs stay in the folder printed.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/atrium_reviews_bench")
os.environ.setdefault("DEBUG", "true")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")

ROLE = "bench.viewer"
GROUP = "team-bench"
OWNER_EMAIL = "owner@example.com"
PASSWORD = "atrium-bench"
FORM = "application/x-www-form-urlencoded"
PAGE = 50


def seed_tenant(devtenant: Any, *, holders: int) -> tuple[dict[str, str], str]:
    """The portal's clients, the role, its owner and `holders` people holding it, in a
    devtenant otherwise empty; (e-mail → user_id, the role's id)."""
    from devtenant.demo import demo_tenant

    demo = demo_tenant(portal_base_url="http://127.0.0.1:8000")
    devtenant.admin("reset")
    devtenant.admin("seed", {"apis": demo["apis"], "clients": demo["clients"]})
    created = devtenant.admin("seed", {
        "roles": [{"name": ROLE, "description": "Bench role"}],
        "users": [{"email": OWNER_EMAIL, "name": "Owner", "password": PASSWORD}] + [
            {"email": f"holder-{i:05}@example.com", "name": f"Holder {i}", "password": PASSWORD,
             "roles": [ROLE]}
            for i in range(holders)
        ],
    })  # fmt: skip
    return created["users"], created["roles"][ROLE]


def catalog_load(folder: Path) -> None:
    """The owning team and its owner as a catalog User."""
    from catalog.services import location_import

    (folder / "catalog-info.yaml").write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Group\n"
        f"metadata:\n  name: {GROUP}\nspec:\n  type: team\n  children: []\n"
        "---\napiVersion: backstage.io/v1alpha1\nkind: User\n"
        f"metadata:\n  name: owner\nspec:\n  profile:\n    email: {OWNER_EMAIL}\n"
        f"  memberOf: [{GROUP}]\n"
    )
    report = location_import(target=str(folder), allow_kinds=["User", "Group"])
    if report.problems:
        raise SystemExit(f"the bench catalog did not load: {report.problems}")


def portal_holders(
    user_ids: dict[str, str], *, role_id: str, outside: int, removals: int
) -> tuple[Any, int]:
    """Everyone as a portal User, the role in the mirror with its Auth0 id, owned by the team
    and reviewed every three months, and each holder's membership: the first `removals` idle,
    the next `outside` granted in Auth0, the rest through an approved portal grant. (The owner,
    how many portal grants.)"""
    from django.utils import timezone

    from access.audit import SYSTEM
    from access.models import AccessRequest, Decision, Role, RoleMembership
    from access.registry import RegistryEntry
    from access.services import role_registry_set
    from portal.models import User

    now = timezone.now()
    idle = now - timedelta(days=200)
    holder_emails = sorted(email for email in user_ids if email != OWNER_EMAIL)
    User.objects.bulk_create(
        [User(sub=user_ids[OWNER_EMAIL], email=OWNER_EMAIL, name="Owner", email_verified=True,
              last_login=now)]
        + [User(sub=user_ids[email], email=email, name=email.split("@")[0], email_verified=True,
                last_login=idle if i < removals else now)
           for i, email in enumerate(holder_emails)],
        batch_size=2000,
    )  # fmt: skip
    role = Role.objects.create(name=ROLE, auth0_id=role_id, description="Bench role")
    role_registry_set(role=role, actor=SYSTEM, entry=RegistryEntry(
        owners=(f"group:default/{GROUP}",), review_every=3,
    ))  # fmt: skip
    people = {user.email: user for user in User.objects.all()}
    owner = people[OWNER_EMAIL]
    memberships, grants = [], []
    for i, email in enumerate(holder_emails):
        through_auth0 = removals <= i < removals + outside
        source = "auth0" if through_auth0 else "portal_grant"
        memberships.append(RoleMembership(user=people[email], role=role, source=source,
                                          expires_at=None if through_auth0
                                          else now + timedelta(days=30)))  # fmt: skip
        if not through_auth0:
            grants.append(AccessRequest(
                requester=people[email], entity_ref="component:default/bench-service",
                role_name=ROLE, reason="bench", duration=timedelta(days=30),
                state=AccessRequest.State.ACTIVE, starts_at=now, decided_at=now,
                expires_at=now + timedelta(days=30),
            ))  # fmt: skip
    RoleMembership.objects.bulk_create(memberships, batch_size=2000)
    made = AccessRequest.objects.bulk_create(grants, batch_size=2000)
    Decision.objects.bulk_create(
        [Decision(request=grant, approver=owner, outcome="approved") for grant in made],
        batch_size=2000,
    )
    return owner, len(made)


def timed(label: str, results: list[tuple[str, float, int, str]], run: Any, note: str = "") -> Any:
    """Run, counting this process's SQL queries; its time and queries go in the table."""
    from bench.approvals_bench import counting_queries

    queries: Counter[str] = Counter()
    started = time.perf_counter()
    with counting_queries(queries):
        outcome = run()
    results.append((label, time.perf_counter() - started, sum(queries.values()), note))
    return outcome


def post(client: Any, path: str, form: dict[str, Any]) -> Any:
    body = urlencode({"csrfmiddlewaretoken": "-", **form}, doseq=True)
    response = client.post(path, body, content_type=FORM)
    if response.status_code != 302:
        raise SystemExit(f"POST {path} answered {response.status_code}")
    return response


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--holders", type=int, default=10_000)
    parser.add_argument("--outside", type=int, default=1_500)
    parser.add_argument("--removals", type=int, default=500)
    parser.add_argument(
        "--rate", type=float, default=0, help="Management API calls a second (0: no limit)"
    )
    parser.add_argument("--burst", type=int, default=150)
    args = parser.parse_args()

    from bench.common import fresh_database
    from devtenant.process import DevTenantProcess, free_port

    port = free_port()
    issuer = f"http://127.0.0.1:{port}/"
    portal_env = {
        "DEBUG": "true", "DATABASE_URL": os.environ["DATABASE_URL"], "REDIS_URL": REDIS_URL,
        "CELERY_BROKER_URL": REDIS_URL, "DEVTENANT_PORT": str(port), "AUTH0_ISSUER_URL": issuer,
        "PORTAL_BASE_URL": "http://127.0.0.1:8000",
    }  # fmt: skip
    os.environ.update(portal_env)
    for name in ("AUTH0_MGMT_CLIENT_ID", "AUTH0_MGMT_CLIENT_SECRET",
                 "AUTH0_CLIENT_ID", "AUTH0_CLIENT_SECRET", "AUTH0_AUDIENCE"):  # fmt: skip
        os.environ.pop(name, None)
    fresh_database(os.environ["DATABASE_URL"])
    import django

    django.setup()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("access.reviews").setLevel(logging.WARNING)
    from django.conf import settings
    from django.core.cache import cache
    from django.core.management import call_command
    from django.test import Client

    from access.models import AccessReview, AccessReviewItem, AuditEvent, RoleMembership
    from access.reviews import reviews_open_due
    from bench.approvals_bench import (
        queue_delete,
        queue_length,
        quiet,
        route_access_tasks,
        token_requests,
        worker_start,
    )

    call_command("migrate", verbosity=0)
    state_dir = Path(tempfile.mkdtemp(prefix="atrium-reviews-bench-"))
    devtenant = DevTenantProcess(state_dir, port=port, timeout=900)
    worker: Any = None
    try:
        started = time.perf_counter()
        user_ids, role_id = seed_tenant(devtenant, holders=args.holders)
        catalog_load(state_dir)
        owner, granted = portal_holders(user_ids, role_id=role_id, outside=args.outside,
                                        removals=args.removals)  # fmt: skip
        print(f"devtenant and portal: {args.holders:,} people hold {ROLE} ({granted:,} through "
              f"portal grants, {args.outside:,} granted in Auth0, {args.removals:,} idle for 200 "
              f"days); set up in {time.perf_counter() - started:.1f} s")  # fmt: skip
        cache.delete(f"atrium:auth0-management-token:{issuer}:{settings.AUTH0_MGMT_CLIENT_ID}")
        worker = worker_start(portal_env=portal_env, state_dir=state_dir)
        print(f"worker {worker.name}: --pool=solo, queue {worker.queue}; logs: {state_dir}")
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(owner)
        results: list[tuple[str, float, int, str]] = []

        # 1. Opening: beat's service, the snapshot of every holder.
        opened = timed("1. open the review (snapshot)", results,
                       lambda: reviews_open_due(force=True))  # fmt: skip
        review = AccessReview.objects.get(pk=opened[0])
        results[-1] = (*results[-1][:3], f"{review.items.count():,} holders in the snapshot")
        url = f"/access/reviews/{review.pk}/"

        # 2. The first page, twice: the second as the owner's next page load (viewer kept).
        for label in ("2. first page of 50", "   again, viewer kept"):
            response = timed(label, results, lambda: client.get(url))
            rows = response.content.decode().count('class="holder-row')
            results[-1] = (*results[-1][:3], f"{response.status_code}, {rows} rows, "
                                             f"{len(response.content) / 1024:.0f} KiB")  # fmt: skip

        # 3. Keep all not flagged.
        timed("3. keep all not flagged", results,
              lambda: post(client, f"{url}bulk/", {"action": "keep_unflagged"}))  # fmt: skip
        kept = review.items.filter(decision="keep").count()
        results[-1] = (*results[-1][:3], f"{kept:,} kept in one statement")

        # 4. Remove every holder idle for 90 days; the worker carries them into the devtenant.
        if args.rate > 0:
            bucket = {"limit": args.burst, "per_seconds": args.burst / args.rate}
            devtenant.admin("ratelimit", bucket)
        else:
            devtenant.admin("ratelimit", {"limit": 1_000_000, "per_seconds": 1})
        logged_before = len(devtenant.requests_log())
        tokens_before = token_requests(devtenant)
        removal_began = time.perf_counter()
        timed("4. remove the idle (one POST)", results, lambda: post(client, f"{url}bulk/", {
            "action": "remove", "scope": "matching", "query": "idle_days=90",
        }))  # fmt: skip
        removing = review.items.filter(decision="remove")
        results[-1] = (*results[-1][:3], f"{removing.count():,} removals queued")
        deadline = time.monotonic() + 600 + (args.removals / args.rate if args.rate else 0) * 3
        while removing.exclude(removal="done").exists():
            if time.monotonic() > deadline:
                states = Counter(removing.values_list("removal", flat=True))
                print(f"  !! not all removals done: {dict(states)}")
                break
            worker.check_alive()
            time.sleep(0.2)
        removed_in = time.perf_counter() - removal_began
        while queue_length(worker.queue) and time.monotonic() < deadline:
            time.sleep(0.2)
        results.append(("   all removed by the worker", removed_in, 0,
                        f"{removing.filter(removal='done').count():,} done, "
                        f"{removing.count() / removed_in:.0f} a second"))  # fmt: skip
        log = devtenant.requests_log()[logged_before:]
        tokens = token_requests(devtenant) - tokens_before

        # 5. Keep the rest (granted outside the portal) and complete.
        timed("5. keep the rest (matching)", results, lambda: post(client, f"{url}bulk/", {
            "action": "keep", "scope": "matching", "query": "outside=true",
        }))  # fmt: skip
        with quiet("django.request"):
            timed("   complete the review", results,
                  lambda: post(client, f"{url}complete/", {}))  # fmt: skip
        review.refresh_from_db()
        results[-1] = (*results[-1][:3], f"state {review.state}")
        evidence = timed("   evidence CSV", results, lambda: b"".join(
            client.get(f"{url}evidence/?format=csv").streaming_content))  # fmt: skip
        results[-1] = (*results[-1][:3], f"{len(evidence) / 1024 / 1024:.1f} MiB")
        page = timed("   evidence page (printable)", results,
                     lambda: client.get(f"{url}evidence/"))  # fmt: skip
        results[-1] = (*results[-1][:3], f"{page.status_code}, "
                                         f"{len(page.content) / 1024 / 1024:.1f} MiB")  # fmt: skip

        print(f"\n{'step':<34} {'time':>9} {'SQL':>6}  notes")
        for label, seconds, queries, note in results:
            print(f"{label:<34} {seconds:>8.2f}s {queries:>6,}  {note}")

        deletes = [e for e in log if e["method"] == "DELETE"]
        state = devtenant.state()
        still = {a["user_id"] for a in state["assignments"] if a["role_id"] == role_id}
        idle_subs = set(removing.values_list("sub", flat=True))
        others = Counter(f"{e['method']} {e['path']}" for e in log if e["method"] != "DELETE")
        limited = f" (at {args.rate:g}/s)" if args.rate else ""
        print(f"\nManagement API during the removals{limited}:")
        print(f"  {'call':<34} {'made':>7} {'minimum':>8}")
        print(f"  {'DELETE users/*/roles':<34} {len(deletes):>7,} {len(idle_subs):>8,}")
        print(f"  {'  answered 429, sent again':<34} "
              f"{sum(1 for e in deletes if e['status'] == 429):>7,} {0:>8}")  # fmt: skip
        print(f"  {'token (POST oauth/token)':<34} {tokens:>7,} {1:>8}")
        for call, count in others.items():
            print(f"  {'other: ' + call:<34} {count:>7,} {0:>8}")
        print(f"  {'total':<34} {len(log) + tokens:>7,} {len(idle_subs) + 1:>8,}")
        answering = sum(float(e.get("seconds") or 0) for e in deletes)
        print(
            f"  devtenant answering the DELETEs: {answering:.1f} s in all, "
            f"{answering / max(1, len(deletes)) * 1000:.0f} ms each (the emulator's share)"
        )
        portal_share = removed_in - answering
        print(
            f"  the rest (the worker, the portal, the network): {portal_share:.1f} s, "
            f"{portal_share / max(1, len(deletes)) * 1000:.0f} ms a removal"
        )
        print(f"\nin the devtenant: {len(idle_subs & still):,} of the {len(idle_subs):,} removed "
              f"still hold {ROLE}; {len(still):,} holders remain "
              f"(of {args.holders:,} − {len(idle_subs):,})")  # fmt: skip
        mirror = RoleMembership.objects.filter(role__name=ROLE).count()
        print(f"in the mirror: {mirror:,} memberships of {ROLE}")
        audit = Counter(AuditEvent.objects.filter(correlation_id=review.correlation_id)
                        .values_list("action", flat=True))  # fmt: skip
        print(
            "audit records of the review: "
            + ", ".join(f"{action} {n:,}" for action, n in sorted(audit.items()))
        )
        assert not AccessReviewItem.objects.filter(review=review, decision="").exists()
    finally:
        if worker is not None:
            worker.stop()
            try:
                queue_delete(worker.queue)
            finally:
                route_access_tasks(None)
        devtenant.stop()


if __name__ == "__main__":
    main()
