"""Approvals benchmark: pending requests approved in one bulk action, until all are active.

Run by hand, on PostgreSQL (a database of its own, created anew), Redis (the broker and the
cache, as in production) and a devtenant it starts on a free port, with one Celery worker of its
own (`--pool=solo`, a queue of its own that the portal's access tasks are routed to):

    DEBUG=true .venv/bin/python bench/approvals_bench.py [--requests 1000]

`--requests` people (user-N@example.com, in the devtenant and in the portal) each have a
pending request for a role a catalog Component requires; an approver of the owning team
approves them all with one POST to /access/approvals/bulk/, as the "Approve selected" button
does. Twice, each with a role of its own:

1. with no rate limit in the devtenant: what the portal, the worker and the devtenant cost;
2. with the devtenant's default Management API limit, Auth0's kind: a bucket of `--burst`
   (150) requests refilled at `--rate` (2.5) a second, so over 60 s; `--rate 0` skips this run.
   It takes at least (requests + 1 - burst) / rate seconds: about 6 minutes for 1,000.

For each it prints the time of the bulk POST and its SQL queries, the time from the POST until
every grant is `active` in the portal (and the worker's queue is empty, notifications sent),
the Management API calls against one assign per grant (+ one token, + one role lookup while
the roles mirror lacks the role's id), the 429 answers, and whether the devtenant's
assignments hold every grant. The devtenant's share of the time comes from its request log
(`seconds` per request); the worker's and the devtenant's logs stay in the folder printed.

The page's form sends one `selected` field per request: if Django refuses a POST that large
(DATA_UPLOAD_MAX_NUMBER_FIELDS), the bench says so and posts again with the limit lifted in
this process only, to measure the rest.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/atrium_approvals_bench")
os.environ.setdefault("DEBUG", "true")
REDIS_URL = "redis://127.0.0.1:6379/0"  # the broker and the cache, as in production

GROUP = "team-bench"
APPROVER_EMAIL = "approver@example.com"
COMPONENT = "bench-service"
PASSWORD = "atrium-bench"
ASSIGN = re.compile(r"^/api/v2/users/[^/]+/roles$")
WORKER_TASK = re.compile(r"Task (access\.tasks\.\w+)\[[^\]]+\] (received|succeeded|retry|raised)")
SUCCEEDED_IN = re.compile(r"Task (access\.tasks\.\w+)\[[^\]]+\] succeeded in ([0-9.]+)s")
DONE_STATES = ("active", "failed")
FORM = "application/x-www-form-urlencoded"


# --- the worker ----------------------------------------------------------------------------------


class WorkerLog:
    """The worker's log, read on from where it was last read: task lines counted by name."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.events: Counter[tuple[str, str]] = Counter()  # (task, received/succeeded/…)
        self.seconds: dict[str, list[float]] = {}  # task: run time of each success

    def read(self) -> None:
        with self.path.open("rb") as log:
            log.seek(self.offset)
            chunk = log.read()
        complete = chunk.rfind(b"\n") + 1  # a line still being written waits for the next read
        self.offset += complete
        for line in chunk[:complete].decode(errors="replace").splitlines():
            if matched := WORKER_TASK.search(line):
                self.events[matched.group(1), matched.group(2)] += 1
            if matched := SUCCEEDED_IN.search(line):
                self.seconds.setdefault(matched.group(1), []).append(float(matched.group(2)))

    def in_flight(self) -> int:
        """Tasks received and not yet finished (a retry is received again)."""
        received = sum(n for (_, what), n in self.events.items() if what == "received")
        return received - sum(n for (_, what), n in self.events.items() if what != "received")


# `celery -A portal worker`, with the portal's access tasks routed to the worker's own queue in
# the worker too: the tasks it queues itself (the "active" mail after a grant) would otherwise
# go to the default queue, for any other worker on the same Redis to take.
WORKER_MAIN = """
import sys
from portal.celery import app
queue, name = sys.argv[1:3]
app.conf.task_routes = {"access.tasks.*": {"queue": queue}}
app.worker_main(["worker", "--pool=solo", "--without-mingle", "--without-gossip",
                 "--loglevel=INFO", "-n", name, "-Q", queue])
"""


class Worker:
    """One Celery worker, `--pool=solo`, on a queue of its own, as the worker tests start it."""

    def __init__(self, *, env: dict[str, str], state_dir: Path) -> None:
        self.name = f"approvals-bench-{uuid.uuid4().hex[:8]}@localhost"
        # A queue of its own, so no other worker on the same Redis takes the bench's messages.
        self.queue = f"approvals-bench-{uuid.uuid4().hex}"
        self.log_path = state_dir / "worker.log"
        self.process = subprocess.Popen(
            [sys.executable, "-c", WORKER_MAIN, self.queue, self.name],
            cwd=ROOT, env={**os.environ, **env},
            stdout=self.log_path.open("w"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.log = WorkerLog(self.log_path)

    def wait_until_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            if " ready." in self.log_path.read_text(errors="replace"):
                return
            time.sleep(0.2)
        raise SystemExit(f"the worker was not ready within {timeout:.0f} s:\n{self.tail()}")

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise SystemExit(f"the worker exited with {self.process.returncode}:\n{self.tail()}")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def worker_start(*, portal_env: dict[str, str], state_dir: Path) -> Worker:
    """A worker with the portal's settings and the client the devtenant seeded, ready, with the
    portal's access tasks routed to its queue."""
    from django.conf import settings

    worker = Worker(
        env={**portal_env, "AUTH0_CLIENT_ID": settings.AUTH0_CLIENT_ID,
             "AUTH0_CLIENT_SECRET": settings.AUTH0_CLIENT_SECRET,
             "AUTH0_AUDIENCE": settings.AUTH0_AUDIENCE, "ATRIUM_VAR_DIR": str(state_dir)},
        state_dir=state_dir,
    )  # fmt: skip
    worker.wait_until_ready()
    route_access_tasks(worker.queue)
    return worker


def route_access_tasks(queue: str | None) -> None:
    """The portal's access tasks go to the bench worker's queue (None: back to the default)."""
    from portal.celery import app as celery_app

    celery_app.conf.task_routes = {"access.tasks.*": {"queue": queue}} if queue else None
    celery_app.amqp.flush_routes()
    celery_app.amqp.__dict__.pop("router", None)


def queue_length(queue: str) -> int:
    from portal.celery import app as celery_app

    # Not passive: Redis has no key for an empty queue, and a passive declare would refuse it.
    with celery_app.connection_for_write() as connection:
        _, messages, _ = connection.default_channel.queue_declare(queue=queue)
        return int(messages)


def queue_delete(queue: str) -> None:
    """Nothing of the bench's left on the shared Redis, even after a failed run."""
    from portal.celery import app as celery_app

    with celery_app.connection_for_write() as connection:
        channel = connection.default_channel
        channel.queue_delete(queue=queue)
        # Its binding to the exchange of the same name, which queue_delete leaves behind when
        # this connection did not declare the queue itself.
        channel.client.delete(f"_kombu.binding.{queue}")


# --- the tenant and the portal -------------------------------------------------------------------


def seed_tenant(devtenant: Any, *, people: int, roles: list[str]) -> dict[str, str]:
    """The portal's clients, the bench's roles, the approver and `people` requesters, in a
    devtenant otherwise empty; their e-mail → user_id."""
    from devtenant.demo import demo_tenant

    demo = demo_tenant(portal_base_url="http://127.0.0.1:8000")
    devtenant.admin("reset")
    devtenant.admin("seed", {"apis": demo["apis"], "clients": demo["clients"]})
    created = devtenant.admin("seed", {
        "roles": [{"name": role, "description": f"Bench role {role}"} for role in roles],
        "users": [{"email": APPROVER_EMAIL, "name": "Approver", "password": PASSWORD}] + [
            {"email": f"user-{i}@example.com", "name": f"User {i}", "password": PASSWORD}
            for i in range(people)
        ],
    })  # fmt: skip
    users: dict[str, str] = created["users"]
    return users


def catalog_load(folder: Path, *, roles: list[str]) -> str:
    """The team, its approver as a catalog User, and a Component requiring the roles; its ref."""
    from catalog.models import Entity
    from catalog.services import location_import

    (folder / "catalog-info.yaml").write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Group\n"
        f"metadata:\n  name: {GROUP}\nspec:\n  type: team\n  children: []\n"
        "---\napiVersion: backstage.io/v1alpha1\nkind: User\n"
        f"metadata:\n  name: approver\nspec:\n  profile:\n    email: {APPROVER_EMAIL}\n"
        f"  memberOf: [{GROUP}]\n"
        "---\napiVersion: backstage.io/v1alpha1\nkind: Component\n"
        f"metadata:\n  name: {COMPONENT}\n  annotations:\n"
        f"    atrium.dev/required-roles: {', '.join(roles)}\n"
        f"spec:\n  type: service\n  lifecycle: production\n  owner: {GROUP}\n"
    )
    report = location_import(target=str(folder), allow_kinds=["User", "Group"])
    if report.problems:
        raise SystemExit(f"the bench catalog did not load: {report.problems}")
    # The team owns the roles in the registry, so its approver decides their requests.
    from access.audit import SYSTEM
    from access.models import Role
    from access.registry import RegistryEntry
    from access.services import role_registry_set

    for name in roles:
        role, _ = Role.objects.get_or_create(name=name)
        role_registry_set(role=role, entry=RegistryEntry(owners=(f"group:default/{GROUP}",)),
                          actor=SYSTEM)  # fmt: skip
    return Entity.objects.get(kind__iexact="component", name=COMPONENT).ref


def portal_people(user_ids: dict[str, str]) -> tuple[Any, list[Any]]:
    """Everyone as a portal User, keyed by their devtenant user_id: (approver, requesters)."""
    from portal.models import User

    User.objects.bulk_create(
        [
            User(sub=sub, email=email, name=email.split("@")[0], email_verified=True)
            for email, sub in user_ids.items()
        ]
    )
    people = {user.email: user for user in User.objects.all()}
    requesters = [person for email, person in people.items() if email != APPROVER_EMAIL]
    return people[APPROVER_EMAIL], sorted(requesters, key=lambda user: user.pk)


def pending_requests(requesters: list[Any], *, entity_ref: str, role: str) -> list[int]:
    """One pending request per requester for the role, as `access_request_create` leaves it."""
    from access.models import AccessRequest

    made = AccessRequest.objects.bulk_create(
        [AccessRequest(requester=person, entity_ref=entity_ref, role_name=role,
                       reason="bench: approved in bulk", duration=timedelta(days=7))
         for person in requesters]
    )  # fmt: skip
    return [request.pk for request in made]


# --- measuring one bulk approval -----------------------------------------------------------------


@dataclass
class Measured:
    label: str
    role: str
    requests: int
    refused_post: int | None = None  # the status of a POST Django refused as too large
    post_status: int = 0
    post_seconds: float = 0.0
    post_queries: int = 0
    active_during_post: int = 0
    first_active: float | None = None  # seconds from the start of the POST
    all_active: float | None = None
    drained: float | None = None  # …until the worker's queue is empty and it is idle
    states: Counter[str] = field(default_factory=Counter)
    attempts: int = 0
    api_log: list[dict[str, Any]] = field(default_factory=list)
    token_calls: int = 0
    worker_events: Counter[tuple[str, str]] = field(default_factory=Counter)
    task_seconds: dict[str, list[float]] = field(default_factory=dict)
    assigned_in_tenant: int = 0
    audit: Counter[str] = field(default_factory=Counter)

    @property
    def assigns(self) -> list[dict[str, Any]]:
        return [e for e in self.api_log if e["method"] == "POST" and ASSIGN.match(e["path"])]

    @property
    def role_reads(self) -> int:
        return sum(1 for e in self.api_log if e["method"] == "GET" and e["path"] == "/api/v2/roles")

    @property
    def other_calls(self) -> Counter[str]:
        counted = {id(e) for e in self.assigns} | {
            id(e) for e in self.api_log if e["method"] == "GET" and e["path"] == "/api/v2/roles"
        }
        return Counter(f"{e['method']} {e['path']}" for e in self.api_log if id(e) not in counted)

    def devtenant_seconds(self, entries: list[dict[str, Any]]) -> float:
        """Time the devtenant spent answering these calls (its log says, per request)."""
        return sum(float(e.get("seconds") or 0) for e in entries)

    @property
    def statuses(self) -> Counter[int]:
        return Counter(int(e["status"]) for e in self.api_log)


@contextmanager
def counting_queries(counter: Counter[str]) -> Iterator[None]:
    """Every SQL statement this process runs, by its first word."""
    from django.db import connection

    def count(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        counter[sql.lstrip().split(None, 1)[0].upper()] += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        yield


@contextmanager
def quiet(*names: str) -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def token_requests(devtenant: Any) -> int:
    """Token requests so far, from the devtenant's access log (its request log is the
    Management API's only)."""
    return devtenant.log.read_text(errors="replace").count('"POST /oauth/token HTTP')


def bulk_post(
    client: Any, ids: list[int], measured: Measured, queries: Counter[str]
) -> tuple[float, datetime]:
    """The "Approve selected" form, as the approvals page sends it; when the (last) POST began,
    by the clock and by the date (grants record when they started)."""
    from django.test import override_settings
    from django.utils import timezone

    form = urlencode(
        {"csrfmiddlewaretoken": "-", "selected": [str(pk) for pk in ids], "comment": "",
         "outcome": "approved"},
        doseq=True,
    )  # fmt: skip

    def post() -> Any:
        return client.post("/access/approvals/bulk/", form, content_type=FORM)

    started, began = time.perf_counter(), timezone.now()
    with counting_queries(queries), quiet("django.request", "django.security"):
        response = post()  # Django logs a refusal with its traceback: the table says it
    if response.status_code == 400:
        measured.refused_post = response.status_code
        with override_settings(DATA_UPLOAD_MAX_NUMBER_FIELDS=None):
            queries.clear()
            started, began = time.perf_counter(), timezone.now()
            with counting_queries(queries):
                response = post()
    measured.post_seconds = time.perf_counter() - started
    measured.post_status = response.status_code
    return started, began


def state_counts(ids: list[int]) -> Counter[str]:
    from django.db.models import Count

    from access.models import AccessRequest

    rows = AccessRequest.objects.filter(pk__in=ids).values_list("state").annotate(n=Count("pk"))
    return Counter(dict(rows))


def measure_bulk_approval(
    *,
    label: str,
    role: str,
    ids: list[int],
    client: Any,
    requesters: list[Any],
    devtenant: Any,
    worker: Worker,
    timeout: float,
) -> Measured:
    from django.db.models import Max, Min, Sum

    from access.models import AccessRequest, AuditEvent

    measured = Measured(label=label, role=role, requests=len(ids))
    logged_before = len(devtenant.requests_log())
    tokens_before = token_requests(devtenant)
    audit_before = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    worker.log.read()
    events_before = Counter(worker.log.events)
    seconds_before = {task: len(runs) for task, runs in worker.log.seconds.items()}

    queries: Counter[str] = Counter()
    started, began = bulk_post(client, ids, measured, queries)
    measured.post_queries = sum(queries.values())
    if measured.post_status != 302:
        raise SystemExit(f"{label}: the bulk POST answered {measured.post_status}")
    measured.active_during_post = state_counts(ids)["active"]

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = state_counts(ids)
        if sum(states[state] for state in DONE_STATES) == len(ids):
            break
        worker.check_alive()
        time.sleep(0.2)
    else:
        print(f"  {label}: not all done within {timeout:.0f} s: {dict(state_counts(ids))}")
    while time.monotonic() < deadline:
        worker.log.read()
        if queue_length(worker.queue) == 0 and worker.log.in_flight() == 0:
            measured.drained = time.perf_counter() - started
            break
        worker.check_alive()
        time.sleep(0.2)

    measured.states = state_counts(ids)
    grants = AccessRequest.objects.filter(pk__in=ids).aggregate(
        attempts=Sum("provision_attempts"), first=Min("starts_at"), last=Max("starts_at")
    )
    measured.attempts = grants["attempts"] or 0
    if grants["first"] is not None:
        measured.first_active = (grants["first"] - began).total_seconds()
    if measured.states["active"] == len(ids):
        measured.all_active = (grants["last"] - began).total_seconds()
    measured.api_log = devtenant.requests_log()[logged_before:]
    measured.token_calls = token_requests(devtenant) - tokens_before
    worker.log.read()
    measured.worker_events = worker.log.events - events_before
    measured.task_seconds = {
        task: runs[seconds_before.get(task, 0) :] for task, runs in worker.log.seconds.items()
    }
    measured.audit = Counter(
        AuditEvent.objects.filter(id__gt=audit_before).values_list("action", flat=True)
    )
    state = devtenant.state()
    role_id = next(r["id"] for r in state["roles"] if r["name"] == role)
    holders = {a["user_id"] for a in state["assignments"] if a["role_id"] == role_id}
    measured.assigned_in_tenant = len(holders & {person.sub for person in requesters})
    return measured


# --- printing ------------------------------------------------------------------------------------


def seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} s"


def print_measured(measured: Measured, *, limit: str) -> None:
    n = measured.requests
    assigns = measured.assigns
    refused = measured.statuses.get(429, 0)
    ideal = n + 1  # one assign per grant, one token
    total = len(measured.api_log) + measured.token_calls
    granted = measured.all_active
    span = (granted - measured.first_active) if granted and measured.first_active else None
    print(f"\n{measured.label}: {n:,} requests for {measured.role}; {limit}")
    if measured.refused_post:
        print(
            f"  !! the bulk POST of {n:,} `selected` fields was refused with "
            f"{measured.refused_post} (DATA_UPLOAD_MAX_NUMBER_FIELDS); posted again with the "
            "limit lifted in this process"
        )
    rows = [
        ("bulk POST", f"{measured.post_seconds:.2f} s, {measured.post_queries:,} SQL queries "
                      f"({measured.post_queries / n:.1f} a request), answered "
                      f"{measured.post_status}"),
        ("active when the POST answered", f"{measured.active_during_post:,}"),
        ("first active", f"{seconds(measured.first_active)} after the POST began"),
        ("all active", f"{seconds(granted)} after the POST began"
                       + (f" ({n / granted:.1f} grants/s)" if granted else "")),
        ("first to last active", seconds(span)),
        ("worker idle, queue empty", f"{seconds(measured.drained)} (notifications sent too)"),
        ("states at the end", ", ".join(f"{s} {c:,}" for s, c in sorted(measured.states.items()))),
        ("provision attempts", f"{measured.attempts:,} (one per grant: {n:,})"),
        ("assigned in the devtenant", f"{measured.assigned_in_tenant:,} of {n:,}"),
    ]  # fmt: skip
    for label, value in rows:
        print(f"  {label:<30} {value}")

    print(f"  {'Auth0 calls':<30} {'made':>8} {'ideal':>8}")
    granted_by = Counter(e["correlationId"] for e in assigns if e["status"] < 300)
    calls = [
        ("assign (POST users/*/roles)", len(assigns), n),
        ("  answered 2xx", sum(granted_by.values()), n),
        ("  answered 429, sent again", sum(1 for e in assigns if e["status"] == 429), 0),
        ("  grants assigned twice", sum(1 for c in granted_by.values() if c > 1), 0),
        ("role lookup (GET roles)", measured.role_reads, 1),
        ("token (POST oauth/token)", measured.token_calls, 1),
    ]
    calls += [(f"other: {call}", count, 0) for call, count in measured.other_calls.items()]
    for label, made, wanted in calls:
        print(f"  {label:<30} {made:>8,} {wanted:>8,}")
    print(f"  {'total':<30} {total:>8,} {ideal:>8,}  (ideal: one assign per grant + token)")
    print(f"  {'429 answers':<30} {refused:>8,}")
    answering = measured.devtenant_seconds(measured.api_log)
    per_assign = measured.devtenant_seconds(assigns) / max(1, len(assigns)) * 1000
    print(
        f"  {'devtenant answering':<30} {answering:.1f} s in all, {per_assign:.0f} ms an assign "
        "(the emulator's share of the times)"
    )
    unexpected = Counter(
        f"{e['method']} {e['path']} {e['status']}"
        for e in measured.api_log
        if e["status"] >= 300 and e["status"] != 429
    )
    if unexpected:
        print(f"  {'other failed answers':<30} {dict(unexpected)}")

    events = measured.worker_events
    tasks = sorted({task for task, _ in events})
    print(f"  {'worker tasks':<30} {'received':>8} {'done':>8} {'retried':>8} {'mean ms':>8}")
    for task in tasks:
        runs = measured.task_seconds.get(task, [])
        mean = f"{sum(runs) / len(runs) * 1000:8.1f}" if runs else f"{'—':>8}"
        print(
            f"  {task.removeprefix('access.tasks.'):<30} {events[task, 'received']:>8,} "
            f"{events[task, 'succeeded']:>8,} {events[task, 'retry']:>8,} {mean}"
        )
    audit = ", ".join(f"{action} {c:,}" for action, c in sorted(measured.audit.items()))
    print(f"  {'audit events':<30} {audit}")


# --- the bench -----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=1_000)
    parser.add_argument("--rate", type=float, default=2.5,
                        help="Management API requests a second for the limited run "
                             "(the devtenant's default: 150 a minute); 0 skips it")  # fmt: skip
    parser.add_argument("--burst", type=int, default=150,
                        help="the limited run's bucket (the devtenant's default: 150)")  # fmt: skip
    args = parser.parse_args()

    from bench.common import fresh_database
    from devtenant.process import DevTenantProcess, free_port

    port = free_port()
    issuer = f"http://127.0.0.1:{port}/"
    portal_env = {
        "DEBUG": "true",
        "DATABASE_URL": os.environ["DATABASE_URL"],
        "REDIS_URL": REDIS_URL,
        "CELERY_BROKER_URL": REDIS_URL,
        "DEVTENANT_PORT": str(port),
        "AUTH0_ISSUER_URL": issuer,
        "PORTAL_BASE_URL": "http://127.0.0.1:8000",
    }
    os.environ.update(portal_env)
    for name in ("AUTH0_MGMT_CLIENT_ID", "AUTH0_MGMT_CLIENT_SECRET",
                 "AUTH0_CLIENT_ID", "AUTH0_CLIENT_SECRET", "AUTH0_AUDIENCE"):  # fmt: skip
        os.environ.pop(name, None)
    fresh_database(os.environ["DATABASE_URL"])
    import django

    django.setup()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    from django.conf import settings
    from django.core.cache import cache
    from django.core.management import call_command
    from django.test import Client

    call_command("migrate", verbosity=0)
    roles = ["bench.viewer", "bench.editor"]
    state_dir = Path(tempfile.mkdtemp(prefix="atrium-approvals-bench-"))
    devtenant = DevTenantProcess(state_dir, port=port, timeout=600)
    worker: Worker | None = None
    try:
        started = time.perf_counter()
        user_ids = seed_tenant(devtenant, people=args.requests, roles=roles)
        entity_ref = catalog_load(state_dir, roles=roles)
        approver, requesters = portal_people(user_ids)
        print(f"devtenant and portal: {len(requesters):,} people, an approver, roles "
              f"{', '.join(roles)} on {entity_ref}; set up in "
              f"{time.perf_counter() - started:.1f} s")  # fmt: skip
        # A token another run left in Redis for an issuer on this port would be refused.
        cache.delete(f"atrium:auth0-management-token:{issuer}:{settings.AUTH0_MGMT_CLIENT_ID}")

        worker = worker_start(portal_env=portal_env, state_dir=state_dir)
        print(f"worker {worker.name}: --pool=solo, queue {worker.queue}")
        print(f"logs: {state_dir}")

        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(approver)
        queries: Counter[str] = Counter()
        pending_ids = pending_requests(requesters, entity_ref=entity_ref, role=roles[0])
        # What the approver sees before clicking "Approve selected".
        page_started = time.perf_counter()
        with counting_queries(queries):
            page = client.get("/access/approvals/")
        page_seconds = time.perf_counter() - page_started
        shown = page.content.decode().count('name="selected"')
        print(f"approvals page with {len(pending_ids):,} pending: {page.status_code} in "
              f"{page_seconds:.2f} s, {sum(queries.values()):,} SQL queries, "
              f"{shown:,} rows to select")  # fmt: skip

        devtenant.admin("ratelimit", {"limit": 1_000_000, "per_seconds": 1})
        unlimited = measure_bulk_approval(
            label="(1) no rate limit", role=roles[0], ids=pending_ids, client=client,
            requesters=requesters, devtenant=devtenant, worker=worker,
            timeout=120 + args.requests * 0.5,
        )  # fmt: skip
        print_measured(unlimited, limit="the devtenant allows 1,000,000 requests a second")

        if args.rate > 0:
            per_seconds = args.burst / args.rate
            devtenant.admin("ratelimit", {"limit": args.burst, "per_seconds": per_seconds})
            least = max(0, args.requests + 1 - args.burst) / args.rate
            print(f"\nrate-limited run, at least {least:.0f} s …", flush=True)
            limited = measure_bulk_approval(
                label="(2) rate-limited", role=roles[1],
                ids=pending_requests(requesters, entity_ref=entity_ref, role=roles[1]),
                client=client, requesters=requesters, devtenant=devtenant, worker=worker,
                timeout=300 + 3 * least,
            )  # fmt: skip
            print_measured(
                limited,
                limit=f"the devtenant allows {args.rate:g} requests a second "
                f"(a bucket of {args.burst}, refilled over {per_seconds:g} s); "
                f"all in {least:.0f} s at best",
            )
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
