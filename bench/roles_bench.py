"""Roles sync benchmark: Management API calls against the minimum, import and resync times.

Run by hand, on PostgreSQL (a database of its own, created anew) and a devtenant it starts on
a free port:

    DEBUG=true .venv/bin/python bench/roles_bench.py

With a devtenant of 10,000 users, 200 roles and 60,000 memberships (a few roles with
thousands of members, many with a few dozen) it prints:

1. the Management API calls one sync makes, against the minimum: one token, the pages of
   the role list, and one page per 100 members of each role (at least one per role);
2. the time of a first full import into an empty mirror, and of a resync with nothing
   changed in Auth0, with the rows and audit events each wrote (the resync should write none);
3. with the devtenant limited to `--rate` Management API requests a second, the sync's wall
   time against calls / rate, and the 429 answers in the devtenant's request log: waiting
   for the bucket to refill costs time, but retrying refused calls should not. At 2 requests a
   second the full tenant's ~700 calls take about 6 minutes, so this part uses a smaller
   tenant (`--limited-users`, `--limited-roles`, `--limited-memberships`; `--limited-users 0`
   skips it). The bucket holds one second's worth of requests unless `--burst` says more:
   the client waits for it once per refill, so a small bucket shows the most waiting.

The cache is local memory in this process: the sync lock and the Management API token never
meet those of a portal or a test run sharing Redis.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import random
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from devtenant.process import DevTenantProcess

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/atrium_roles_bench")
os.environ.setdefault("DEBUG", "true")
os.environ["REDIS_URL"] = ""  # local-memory cache: see the module docstring

# How lopsided role sizes are: the k-th largest role has about C / k**ZIPF members.
ZIPF = 1.2
PAGE_SIZE = 100  # Auth0's largest page, for roles and for role members
WRITES = re.compile(r'^\s*(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+"?(\w+)"?', re.IGNORECASE)


# --- the tenant ----------------------------------------------------------------------------------


def role_sizes(*, users: int, roles: int, memberships: int) -> list[int]:
    """Member counts, largest first: Zipf-like, at most `users` and at least 1, summing exactly."""
    if not roles <= memberships <= users * roles:
        raise SystemExit(f"{memberships:,} memberships do not fit {users:,} users × {roles} roles")

    def sizes_for(scale: float) -> list[int]:
        return [min(users, max(1, round(scale / k**ZIPF))) for k in range(1, roles + 1)]

    low, high = 0.0, float(memberships) * roles
    for _ in range(200):
        middle = (low + high) / 2
        low, high = (middle, high) if sum(sizes_for(middle)) < memberships else (low, middle)
    sizes = sizes_for(high)
    # Rounding leaves a few memberships over or short: take them from (or give them to) the
    # largest roles that have room.
    for index in range(roles):
        gap = memberships - sum(sizes)
        if gap == 0:
            break
        sizes[index] = min(users, max(1, sizes[index] + gap))
    return sorted(sizes, reverse=True)


@dataclass
class TenantShape:
    users: int
    roles: int
    memberships: int
    sizes: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sizes = role_sizes(users=self.users, roles=self.roles, memberships=self.memberships)

    @property
    def minimum_member_pages(self) -> int:
        return sum(max(1, math.ceil(size / PAGE_SIZE)) for size in self.sizes)

    @property
    def minimum_role_pages(self) -> int:
        return max(1, math.ceil(self.roles / PAGE_SIZE))

    def describe(self) -> str:
        median = self.sizes[len(self.sizes) // 2]
        small = sum(1 for size in self.sizes if size < PAGE_SIZE)
        largest = ", ".join(f"{size:,}" for size in self.sizes[:4])
        return (
            f"{self.users:,} users, {self.roles:,} roles, {self.memberships:,} memberships "
            f"(largest roles {largest}; median {median:,}; {small} under {PAGE_SIZE} members)"
        )

    def seed(self, *, rng: random.Random) -> dict[str, Any]:
        """The devtenant's `/__admin/seed` document: roles, and users with the roles they hold."""
        names = [f"role-{index:03d}" for index in range(self.roles)]
        held: list[list[str]] = [[] for _ in range(self.users)]
        for name, size in zip(names, self.sizes, strict=True):
            for person in rng.sample(range(self.users), size):
                held[person].append(name)
        return {
            "roles": [{"name": name, "description": f"Bench role {name}"} for name in names],
            "users": [
                {"email": f"person-{i:05d}@example.com", "name": f"Person {i}",
                 "password": "atrium-bench", "roles": roles}
                for i, roles in enumerate(held)
            ],
        }  # fmt: skip


# --- the devtenant -------------------------------------------------------------------------------


def load_tenant(devtenant: DevTenantProcess, shape: TenantShape, *, seed: int) -> float:
    """An empty devtenant, then the portal's clients and the generated tenant; seconds taken."""
    from devtenant.demo import demo_tenant

    demo = demo_tenant(portal_base_url="http://127.0.0.1:8000")
    started = time.perf_counter()
    devtenant.admin("reset")
    devtenant.admin("seed", {"apis": demo["apis"], "clients": demo["clients"]})
    devtenant.admin("seed", shape.seed(rng=random.Random(seed)))
    return time.perf_counter() - started


# --- measuring one sync --------------------------------------------------------------------------


@dataclass
class Measured:
    outcome: str
    message: str
    seconds: float  # wall time of roles_sync()
    reading: float  # of which: reading roles and members from the Management API
    reported_calls: int  # what the sync itself reports (SyncReport.api_calls)
    token_calls: int
    waited: float  # time the client slept waiting for the rate limit
    pauses: list[float]  # each of those sleeps
    api_log: list[dict[str, Any]]  # the devtenant's Management API requests of this sync
    rows_written: Counter[str]  # rows inserted, updated or deleted, by table
    write_statements: Counter[str]
    audit_events: int

    @property
    def api_requests(self) -> int:
        return len(self.api_log)

    @property
    def role_pages(self) -> int:
        return sum(1 for entry in self.api_log if entry["path"] == "/api/v2/roles")

    @property
    def member_pages(self) -> int:
        return sum(1 for entry in self.api_log if entry["path"].endswith("/users"))

    @property
    def statuses(self) -> Counter[int]:
        return Counter(int(entry["status"]) for entry in self.api_log)

    def mirror_rows(self) -> int:
        """Rows written besides the run's own record (which every run writes)."""
        return sum(rows for table, rows in self.rows_written.items() if table != RUN_TABLE)


RUN_TABLE = "access_rolesyncrun"


@contextmanager
def counting_writes(rows: Counter[str], statements: Counter[str]) -> Iterator[None]:
    """Count INSERT/UPDATE/DELETE statements and the rows they touched, by table."""
    from django.db import connection

    def count(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        result = execute(sql, params, many, context)
        matched = WRITES.match(sql)
        if matched:
            table = matched.group(2)
            statements[table] += 1
            rows[table] += max(context["cursor"].rowcount, 0)
        return result

    with connection.execute_wrapper(count):
        yield


def measure_sync(devtenant: DevTenantProcess) -> Measured:
    from django.core.cache import cache

    from access.auth0 import Directory, DirectoryRole, DirectoryUser
    from access.models import AuditEvent
    from access.sync import roles_sync

    class TimedDirectory(Directory):
        """The sync's own client, timing the reads so that the database's share shows."""

        reading = 0.0

        def roles(self) -> list[DirectoryRole]:
            started = time.perf_counter()
            try:
                return super().roles()
            finally:
                self.reading += time.perf_counter() - started

        def role_members(self, role_id: str) -> list[DirectoryUser]:
            started = time.perf_counter()
            try:
                return super().role_members(role_id)
            finally:
                self.reading += time.perf_counter() - started

    cache.clear()  # local memory: no token left over, so each sync asks for its own
    logged_before = len(devtenant.requests_log())
    audit_before = AuditEvent.objects.count()
    rows: Counter[str] = Counter()
    statements: Counter[str] = Counter()
    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        time.sleep(seconds)

    directory = TimedDirectory(sleep=sleep)
    try:
        with counting_writes(rows, statements):
            started = time.perf_counter()
            report = roles_sync(directory=directory)
            seconds = time.perf_counter() - started
    finally:
        directory.close()
    return Measured(
        outcome=str(report.outcome),
        message=report.run.message,
        seconds=seconds,
        reading=directory.reading,
        reported_calls=report.api_calls,
        token_calls=directory.token_calls,
        waited=directory.waited,
        pauses=pauses,
        api_log=devtenant.requests_log()[logged_before:],
        rows_written=rows,
        write_statements=statements,
        audit_events=AuditEvent.objects.count() - audit_before,
    )


def check_ok(label: str, measured: Measured) -> None:
    if measured.outcome != "ok":
        raise SystemExit(f"{label}: the sync ended {measured.outcome}: {measured.message}")


# --- the bench -----------------------------------------------------------------------------------


def empty_mirror() -> None:
    """Every table of the bench database emptied: the limited run starts from nothing too."""
    from django.core.management import call_command

    call_command("flush", interactive=False, verbosity=0)


def print_calls(shape: TenantShape, first: Measured, resync: Measured) -> None:
    minimum = {"token": 1, "role list pages": shape.minimum_role_pages,
               "role member pages": shape.minimum_member_pages}  # fmt: skip
    print("\n(1) Management API calls per sync, against the minimum")
    print(f"  {'':<24} {'import':>8} {'resync':>8} {'minimum':>8}")
    rows = [
        ("token", first.token_calls, resync.token_calls),
        ("role list pages", first.role_pages, resync.role_pages),
        ("role member pages", first.member_pages, resync.member_pages),
    ]
    for label, made_first, made_resync in rows:
        print(f"  {label:<24} {made_first:>8,} {made_resync:>8,} {minimum[label]:>8,}")
    total_first = first.token_calls + first.api_requests
    total_resync = resync.token_calls + resync.api_requests
    print(f"  {'total':<24} {total_first:>8,} {total_resync:>8,} {sum(minimum.values()):>8,}")
    reported = f"{first.reported_calls:>8,} {resync.reported_calls:>8,}"
    print(f"  {'as the sync reports it':<24} {reported}")
    over = total_first - sum(minimum.values())
    print(f"  => {'the minimum' if over == 0 else f'{over:,} calls over the minimum'}")
    for measured, label in ((first, "import"), (resync, "resync")):
        refused = {status: n for status, n in measured.statuses.items() if status != 200}
        if refused:
            print(f"  {label}: answers other than 200: {refused}")


def print_times(first: Measured, resync: Measured) -> None:
    print("\n(2) Applying: a first full import into an empty mirror, then a resync, no change")
    print(f"  {'':<18} {'total s':>8} {'reading':>8} {'DB+plan':>8} {'rows':>8} "
          f"{'audit':>7} {'writes':>7}")  # fmt: skip
    for label, measured in (("first full import", first), ("no-change resync", resync)):
        statements = sum(n for table, n in measured.write_statements.items() if table != RUN_TABLE)
        print(
            f"  {label:<18} {measured.seconds:>8.2f} {measured.reading:>8.2f} "
            f"{measured.seconds - measured.reading:>8.2f} {measured.mirror_rows():>8,} "
            f"{measured.audit_events:>7,} {statements:>7,}"
        )
    print(
        "  reading: the roles and members read from the devtenant over HTTP; DB+plan: the\n"
        "  rest (diff against the mirror, one transaction of bulk writes). rows/writes: rows\n"
        "  and INSERT/UPDATE/DELETE statements, besides the run's own record in "
        f"{RUN_TABLE}."
    )
    for label, measured in (("import", first), ("resync", resync)):
        per_call = measured.reading / max(1, measured.api_requests + measured.token_calls) * 1000
        print(f"  {label} reading: {per_call:.0f} ms per call to the devtenant")
    for label, measured in (("import", first), ("resync", resync)):
        tables = ", ".join(f"{t} {n:,}" for t, n in sorted(measured.rows_written.items()))
        print(f"  {label} rows by table: {tables or 'none'}")
    verdict = "writes nothing" if resync.mirror_rows() == resync.audit_events == 0 else "WRITES"
    print(f"  => the no-change resync {verdict} (besides recording the run)")


def print_limited(shape: TenantShape, rate: float, bucket: int, measured: Measured) -> None:
    calls = measured.api_requests
    ideal = calls / rate
    refused = measured.statuses.get(429, 0)
    minimum = shape.minimum_role_pages + shape.minimum_member_pages
    print(
        f"\n(3) Rate-limited: the devtenant allowing {rate:g} Management API requests a second"
        f"\n    (a bucket of {bucket}, refilled in {bucket / rate:g} s; --burst changes it),"
        "\n    on a SMALLER tenant so that the bench ends in reasonable time"
        "\n    (--limited-users, --limited-roles, --limited-memberships change it):"
        f"\n    {shape.describe()}"
    )
    rows = [
        ("Management API calls", f"{calls:,} (minimum {minimum:,}; token +{measured.token_calls})"),
        ("429 answers", f"{refused:,}"),
        ("other answers", str(dict(measured.statuses))),
        ("wall time of the sync", f"{measured.seconds:.1f} s"),
        (f"calls ÷ {rate:g}", f"{ideal:.1f} s"),
        (f"wall / (calls ÷ {rate:g})", f"{measured.seconds / ideal:.2f}"),
        (
            "client waited for the limit",
            f"{measured.waited:.1f} s in {len(measured.pauses)} "
            f"pauses of {statistics.mean(measured.pauses or [0]):.2f} s on average",
        ),
        ("of the wall: DB+plan", f"{measured.seconds - measured.reading:.2f} s"),
        (f"wall beyond calls ÷ {rate:g}", f"{measured.seconds - ideal:.1f} s"),
    ]
    for label, value in rows:
        print(f"  {label:<30} {value}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--roles", type=int, default=200)
    parser.add_argument("--memberships", type=int, default=60_000)
    parser.add_argument("--rate", type=float, default=2.0,
                        help="Management API requests a second for the limited run")  # fmt: skip
    parser.add_argument("--burst", type=int, default=None,
                        help="the limited run's bucket (default: a second's worth)")  # fmt: skip
    parser.add_argument("--limited-users", type=int, default=1_000, help="0: skip that run")
    parser.add_argument("--limited-roles", type=int, default=20)
    parser.add_argument("--limited-memberships", type=int, default=None,
                        help="default: 6 per limited user, as in the full tenant")  # fmt: skip
    parser.add_argument("--seed", type=int, default=7, help="of the random tenant")
    args = parser.parse_args()

    from bench.common import fresh_database
    from devtenant.process import DevTenantProcess, free_port

    # The portal reaches the bench's devtenant as it would its default one in dev.
    port = free_port()
    os.environ["DEVTENANT_PORT"] = str(port)
    os.environ["AUTH0_ISSUER_URL"] = f"http://127.0.0.1:{port}/"
    for name in ("AUTH0_MGMT_CLIENT_ID", "AUTH0_MGMT_CLIENT_SECRET",
                 "AUTH0_CLIENT_ID", "AUTH0_CLIENT_SECRET"):  # fmt: skip
        os.environ.pop(name, None)
    fresh_database(os.environ["DATABASE_URL"])
    import django

    django.setup()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    shape = TenantShape(users=args.users, roles=args.roles, memberships=args.memberships)
    limited = None
    if args.limited_users:
        per_user = args.memberships / args.users
        limited = TenantShape(
            users=args.limited_users,
            roles=args.limited_roles,
            memberships=args.limited_memberships or round(args.limited_users * per_user),
        )

    state_dir = Path(tempfile.mkdtemp(prefix="atrium-roles-bench-"))
    devtenant = DevTenantProcess(state_dir, port=port, timeout=600)
    try:
        print(f"devtenant: {shape.describe()}")
        print(f"  seeded in {load_tenant(devtenant, shape, seed=args.seed):.1f} s")
        # No rate limit for these two: they measure calls and the database, not waiting.
        devtenant.admin("ratelimit", {"limit": 1_000_000, "per_seconds": 1})
        first = measure_sync(devtenant)
        check_ok("first full import", first)
        resync = measure_sync(devtenant)
        check_ok("no-change resync", resync)
        print_calls(shape, first, resync)
        print_times(first, resync)

        if limited is not None:
            load_tenant(devtenant, limited, seed=args.seed)
            empty_mirror()
            bucket = args.burst or max(1, round(args.rate))
            devtenant.admin("ratelimit", {"limit": bucket, "per_seconds": bucket / args.rate})
            expected = (limited.minimum_role_pages + limited.minimum_member_pages) / args.rate
            print(f"\nrate-limited sync running, at least {expected:.0f} s …", flush=True)
            measured = measure_sync(devtenant)
            check_ok("rate-limited sync", measured)
            print_limited(limited, args.rate, bucket, measured)
    finally:
        devtenant.stop()


if __name__ == "__main__":
    main()
