"""Atrium against Backstage's own catalog backend: one corpus, the same calls, one run.

Run by hand (never in the test suite), on PostgreSQL at 127.0.0.1:5432 and with the peer from
../shared/peers/backstage/ beside the checkout (Node and npm needed; `npm ci` runs once into
$BACKSTAGE_WORK, by default /tmp/peer-backstage, and is reused):

    .venv/bin/python bench/peer_bench.py --entities 10000

In one run it:

1. generates the corpus with bench/catalog_bench.py's generator, split into files of
   `--per-file` descriptors (Backstage gets one file location per file; Atrium one folder);
2. ingests it into Atrium (its own database, made anew), timing two API calls right after the
   import, before ANALYZE, and again after it, then a refresh that changes nothing;
3. starts the peer over the same files (its own port and databases, dropped at the end) and
   waits until its catalog holds every entity, for its ingest rate;
4. serves Atrium as production does: gunicorn, one sync worker, `portal.wsgi`, DEBUG off,
   collected static files, a signed-in person's session (roles, not an admin), so that the
   access checks run;
5. times the same calls against both over HTTP with one client, interleaved (Atrium, peer,
   Atrium, peer...), after a warm-up, and the same calls in this process through Django's test
   client;
6. prints per call each side's p50/p95, the ratio (peer p50 / Atrium p50: above 1 means Atrium
   is faster), what each side answered (so differing answers show), and both servers' peak
   memory.

Read the ratios, not the milliseconds, on a machine shared with other work.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PEER_DIR = ROOT.parent / "shared" / "peers" / "backstage"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/atrium_peer_bench"
KINDS = ["component", "api", "resource", "system", "user", "group", "domain"]
# Every kind the generator writes: what both catalogs count (Backstage adds Location entities).
GENERATED = "&".join(f"filter=kind={kind}" for kind in KINDS)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- the corpus ----------------------------------------------------------------------------------


def corpus_write(folder: Path, total: int, per_file: int) -> tuple[int, int]:
    """The generator's descriptors, split into files of at most `per_file`; (entities, files)."""
    from bench.catalog_bench import generate

    scratch = folder.parent / "generated"
    scratch.mkdir()
    written = generate(scratch, total)
    documents = [
        document
        for path in sorted(scratch.glob("*.yaml"))
        for document in path.read_text().split("---\n")
    ]
    shutil.rmtree(scratch)
    folder.mkdir()
    files = 0
    for start in range(0, len(documents), per_file):
        (folder / f"entities-{files:05}.yaml").write_text(
            "---\n".join(documents[start : start + per_file])
        )
        files += 1
    return written, files


# --- the calls -----------------------------------------------------------------------------------


@dataclass
class Call:
    label: str
    method: str
    path: str  # under /api/catalog, or a page path when `page`
    body: dict[str, Any] | None = None
    page: bool = False  # an Atrium page, no peer counterpart


def calls_for(*, component_name: str, refs: list[str]) -> list[Call]:
    by_query = "/entities/by-query?filter=kind=component&limit=20"
    return [
        Call("by-name", "GET", f"/entities/by-name/component/default/{component_name}"),
        Call("by-query first page", "GET", by_query),
        Call("by-query fullText ledger", "GET", f"{by_query}&fullTextFilterTerm=ledger"),
        Call(
            "by-query fullText name,desc",
            "GET",
            f"{by_query}&fullTextFilterTerm=ledger"
            "&fullTextFilterFields=metadata.name,metadata.description",
        ),
        Call("entities kind=api limit=50", "GET", "/entities?filter=kind=api&limit=50"),
        Call("facets kind", "GET", "/entity-facets?facet=kind"),
        Call("facets spec.type", "GET", "/entity-facets?facet=spec.type"),
        Call("facets metadata.tags", "GET", "/entity-facets?facet=metadata.tags"),
        Call("by-refs 50", "POST", "/entities/by-refs", body={"entityRefs": refs}),
        Call("catalog page", "GET", "/catalog/", page=True),
    ]


def answer_of(call: Call, status: int, body: bytes) -> tuple[str, Any]:
    """What a side answered, shortly (shown) and whole enough to compare (the key)."""
    if status != 200:
        return f"HTTP {status}", status
    if call.page:
        return f"{len(body):,} bytes", None
    data = json.loads(body)
    if call.path.startswith("/entities/by-name"):
        return "1 entity", data["metadata"]["name"]
    if "by-query" in call.path:
        return f"{data['totalItems']:,} hits", data["totalItems"]
    if call.path.startswith("/entity-facets"):
        facets = {
            name: {value["value"]: value["count"] for value in values}
            for name, values in data["facets"].items()
        }
        shown = ", ".join(f"{len(values)} values" for values in facets.values())
        return shown, facets
    if call.path.startswith("/entities/by-refs"):
        found = sorted(item["metadata"]["name"] for item in data["items"] if item)
        return f"{len(found)} found", found
    names = sorted(entity["metadata"]["name"] for entity in data)
    return f"{len(names)} entities", len(names)


# --- HTTP ----------------------------------------------------------------------------------------


class Side:
    """One server, one keep-alive connection (opened again when the server closes it, as
    gunicorn's sync workers do after every response)."""

    def __init__(self, name: str, port: int, prefix: str, headers: dict[str, str]) -> None:
        self.name, self.prefix, self.headers = name, prefix, headers
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def request(self, call: Call) -> tuple[float, int, bytes]:
        path = call.path if call.page else self.prefix + call.path
        body = None if call.body is None else json.dumps(call.body).encode()
        headers = dict(self.headers)
        if body is not None:
            headers["Content-Type"] = "application/json"
        began = time.perf_counter()
        try:
            self.connection.request(call.method, path, body=body, headers=headers)
            response = self.connection.getresponse()
            content = response.read()
        except (http.client.HTTPException, ConnectionError):
            self.connection.close()  # a keep-alive the server had dropped: once more, afresh
            self.connection.request(call.method, path, body=body, headers=headers)
            response = self.connection.getresponse()
            content = response.read()
        elapsed = (time.perf_counter() - began) * 1000
        if response.will_close:
            self.connection.close()
        return elapsed, response.status, content

    def get_json(self, path: str) -> Any:
        elapsed, status, content = self.request(Call("", "GET", path))
        if status != 200:
            raise RuntimeError(f"{self.name} answered {status} to {path}: {content[:300]!r}")
        return json.loads(content)


def wait_for(check: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, http.client.HTTPException, RuntimeError):
            if check():
                return
        time.sleep(0.5)
    raise SystemExit(f"gave up after {timeout:.0f} s waiting for {what}")


# --- processes -----------------------------------------------------------------------------------


@contextlib.contextmanager
def process(
    command: list[str], *, env: dict[str, str], log_file: Path, cwd: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A server started in its own process group, ended (its group, by the id we started) on
    the way out, whatever happened."""
    with log_file.open("wb") as output:
        started = subprocess.Popen(
            command, env=env, cwd=cwd, stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        yield started
    finally:
        if started.poll() is None:
            os.killpg(started.pid, signal.SIGTERM)
            try:
                started.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(started.pid, signal.SIGKILL)
                started.wait(timeout=10)


def alive(started: subprocess.Popen[bytes], log_file: Path) -> None:
    if started.poll() is not None:
        tail = log_file.read_text(errors="replace")[-2000:]
        raise SystemExit(f"{log_file.name}: the server exited ({started.returncode}):\n{tail}")


def answering(side: Side, started: subprocess.Popen[bytes], log_file: Path) -> bool:
    """Whether the server answers its catalog API yet (SystemExit if it exited instead)."""
    alive(started, log_file)
    side.get_json("/entities?limit=1")
    return True


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- Atrium in this process ----------------------------------------------------------------------


def environment(args: argparse.Namespace, work: Path, atrium_port: int) -> None:
    """Settings as production reads them, for this process and gunicorn alike. No sign-in
    happens (the session is made in the database), so Auth0's settings are placeholders that
    satisfy the start-up check and are never called."""
    env_file = work / "empty.env"
    env_file.write_text("")
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DATABASE_URL": args.database_url,
            "REDIS_URL": args.redis_url,
            "DEBUG": "false",
            "ATRIUM_ENV_FILE": str(env_file),
            "ATRIUM_VAR_DIR": str(work / "var"),
            "SECRET_KEY": secrets.token_urlsafe(50),
            "PORTAL_BASE_URL": f"http://127.0.0.1:{atrium_port}",
            "AUTH0_DOMAIN": "bench.invalid",
            "AUTH0_CLIENT_ID": "peer-bench",
            "AUTH0_CLIENT_SECRET": "peer-bench-unused",
            # The limit is counted as in production, but set past what the bench sends.
            "RATE_LIMIT_API": "1000000/m",
        }
    )


@dataclass
class AtriumIngest:
    folder: Path
    written: int
    seconds: float = 0.0
    analyze_seconds: float = 0.0
    analysed: list[str] = field(default_factory=list)
    unchanged_seconds: float = 0.0
    unchanged_written: int = 0
    before_after: list[tuple[str, float, float]] = field(default_factory=list)


def in_process_p50(client: Any, path: str, repeat: int, **extra: Any) -> float:
    samples = []
    for index in range(repeat + 3):
        began = time.perf_counter()
        response = (
            client.post(path, data=json.dumps(extra["body"]), content_type="application/json")
            if "body" in extra
            else client.get(path)
        )
        if index >= 3:  # the first three warm up
            samples.append((time.perf_counter() - began) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"in process: {path} answered {response.status_code}")
    return statistics.median(samples)


def atrium_ingest(folder: Path, written: int, repeat: int) -> AtriumIngest:
    """Import the folder as one location, the refresh's own ANALYZE held back, so that two
    calls can be timed first on the statistics autovacuum would leave; then that ANALYZE."""
    from django.db import connection
    from django.test import Client

    from catalog import bulk
    from catalog.models import Entity, EntityRequiredRole, Relation, SearchRow
    from catalog.services import location_import, location_refresh

    result = AtriumIngest(folder=folder, written=written)
    threshold = bulk.ANALYZE_MIN_ROWS
    bulk.ANALYZE_MIN_ROWS = sys.maxsize  # as before the fix: no ANALYZE after the commit
    try:
        began = time.perf_counter()
        report = location_import(target=str(folder), allow_kinds=["User", "Group"])
        result.seconds = time.perf_counter() - began
    finally:
        bulk.ANALYZE_MIN_ROWS = threshold
    if report.problems:
        log(f"  Atrium: {len(report.problems)} problems, first: {report.problems[0]}")
    # The import wrote every row of these tables, as the refresh counts them.
    written_rows = {
        model._meta.db_table: model.objects.count()
        for model in (Entity, SearchRow, Relation, EntityRequiredRole)
    }
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(bench_person())
    timed = {
        "by-query kind=component limit=20": (
            "/api/catalog/entities/by-query?filter=kind=component&limit=20"
        ),
        "entities kind=api limit=50": "/api/catalog/entities?filter=kind=api&limit=50",
    }
    before = {label: in_process_p50(client, path, repeat) for label, path in timed.items()}
    began = time.perf_counter()
    result.analysed = bulk.tables_analyze(written_rows, using=connection.alias)
    result.analyze_seconds = time.perf_counter() - began
    after = {label: in_process_p50(client, path, repeat) for label, path in timed.items()}
    result.before_after = [(label, before[label], after[label]) for label in timed]

    began = time.perf_counter()
    again = location_refresh(location=report.location)
    result.unchanged_seconds = time.perf_counter() - began
    result.unchanged_written = len(again.added) + len(again.updated) + len(again.removed)
    return result


def bench_person() -> Any:
    """A person with two roles and a catalog identity, not an admin (catalog_bench's reader)."""
    from bench.catalog_bench import reader

    return reader()


def session_headers() -> dict[str, str]:
    """The cookies of the person's signed-in session, stored where the server reads sessions,
    and a CSRF token for the POST the API asks one of."""
    from django.conf import settings
    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(bench_person())
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    csrf = secrets.token_hex(16)  # 32 characters: a CSRF secret as Django's cookie holds one
    return {
        "Cookie": f"{settings.SESSION_COOKIE_NAME}={session}; {settings.CSRF_COOKIE_NAME}={csrf}",
        "X-CSRFToken": csrf,
    }


# --- the peer ------------------------------------------------------------------------------------


def peer_settle(
    peer: Side, expected: int, *, timeout: float, began: float, check: Callable[[], None]
) -> float:
    """Poll the peer's count of generated entities until it holds all of them; the seconds
    since `began`. A count that stops growing short of them is said, and waited on until
    `timeout`."""
    deadline = time.monotonic() + timeout
    last, last_change, said = -1, time.monotonic(), 0.0
    while True:
        check()
        try:
            total = peer.get_json(f"/entities/by-query?limit=1&{GENERATED}")["totalItems"]
        except (OSError, http.client.HTTPException, RuntimeError):
            total = -1  # still starting
        now = time.monotonic()
        if total != last:
            last, last_change = total, now
        if total >= expected:
            return time.perf_counter() - began
        if now - said >= 10:
            stalled = f", unchanged for {now - last_change:.0f} s" if now - last_change > 30 else ""
            log(f"  peer: {max(total, 0):,} of {expected:,} entities{stalled}")
            said = now
        if now > deadline:
            raise SystemExit(
                f"the peer holds {max(total, 0):,} of {expected:,} entities after {timeout:.0f} s "
                f"(unchanged for {now - last_change:.0f} s): its processing did not settle; "
                "raise --settle-timeout, or keep its log with --keep and read peer.log"
            )
        time.sleep(2)


def cpu_seconds(pid: int) -> float:
    """CPU time the process has used so far (user and system), from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peer_quiet(pid: int, *, timeout: float, share: float = 0.35) -> tuple[float, float]:
    """Wait until the peer uses less than `share` of a core over five seconds, so that its
    processing loop (which reads every entity again when it starts over kept databases) does
    not take the CPU from either side while they are timed, or `timeout` seconds: at 100,000
    entities its refresh loop never rests. The seconds waited and the share last seen."""
    began = deadline = time.monotonic()
    deadline += timeout
    busy = 0.0
    while time.monotonic() < deadline:
        used = cpu_seconds(pid)
        time.sleep(5)
        busy = (cpu_seconds(pid) - used) / 5
        if busy < share:
            break
        log(f"  peer: still busy ({busy:.0%} of a core)")
    return time.monotonic() - began, busy


# --- timing --------------------------------------------------------------------------------------


@dataclass
class Timing:
    samples: dict[str, list[float]] = field(default_factory=dict)
    answers: dict[str, tuple[str, Any]] = field(default_factory=dict)


def time_calls(
    sides: list[Side], calls: list[Call], *, rounds: int, warmup: int
) -> dict[str, Timing]:
    timings = {side.name: Timing() for side in sides}
    for index in range(warmup + rounds):
        for call in calls:
            for side in sides:  # interleaved: Atrium, peer, Atrium, peer...
                if call.page and side.name != "atrium":
                    continue
                elapsed, status, body = side.request(call)
                timing = timings[side.name]
                if index == 0:
                    timing.answers[call.label] = answer_of(call, status, body)
                if index >= warmup:
                    timing.samples.setdefault(call.label, []).append(elapsed)
        if index == warmup - 1:
            log("  warmed up")
        elif index >= warmup and (index - warmup + 1) % 10 == 0:
            log(f"  round {index - warmup + 1} of {rounds}")
    return timings


def in_process_calls(calls: list[Call], repeat: int) -> dict[str, float]:
    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(bench_person())
    figures = {}
    for call in calls:
        path = call.path if call.page else "/api/catalog" + call.path
        extra = {} if call.body is None else {"body": call.body}
        figures[call.label] = in_process_p50(client, path, repeat, **extra)
    return figures


def table_print(
    calls: list[Call], timings: dict[str, Timing], in_process: dict[str, float]
) -> list[str]:
    from bench.common import percentile

    header = (
        f"{'call':<28} {'peer p50':>9} {'p95':>7} {'Atrium p50':>10} {'p95':>7} {'ratio':>6} "
        f"{'in-proc':>8}  {'peer answered':<24} {'Atrium answered':<24}"
    )
    print(header)
    print("-" * len(header))
    differ = []
    atrium, peer = timings["atrium"], timings["peer"]
    for call in calls:
        ours = atrium.samples[call.label]
        a50, a95 = statistics.median(ours), percentile(ours, 0.95)
        if call.page:
            p50_text = p95_text = ratio = "-"
            peer_shown = "(no counterpart)"
        else:
            theirs = peer.samples[call.label]
            p50, p95 = statistics.median(theirs), percentile(theirs, 0.95)
            p50_text, p95_text, ratio = f"{p50:.1f}", f"{p95:.1f}", f"{p50 / a50:.2f}"
            peer_shown, peer_key = peer.answers[call.label]
            if peer_key != atrium.answers[call.label][1]:
                differ.append(call.label)
                peer_shown += " *"
        print(
            f"{call.label:<28} {p50_text:>9} {p95_text:>7} {a50:>10.1f} {a95:>7.1f} {ratio:>6} "
            f"{in_process[call.label]:>8.1f}  {peer_shown:<24} {atrium.answers[call.label][0]:<24}"
        )
    return differ


def difference(peer: Any, atrium: Any) -> str:
    """Where two answers part: for facets the values counted differently (peer, Atrium)."""
    if not (isinstance(peer, dict) and isinstance(atrium, dict)):
        return f"peer {peer!r}, Atrium {atrium!r}"[:300]
    parts = []
    for facet in sorted(set(peer) | set(atrium)):
        theirs, ours = peer.get(facet, {}), atrium.get(facet, {})
        apart = {
            value: (theirs.get(value, 0), ours.get(value, 0))
            for value in sorted(set(theirs) | set(ours), key=str)
            if theirs.get(value, 0) != ours.get(value, 0)
        }
        shown = ", ".join(f"{value} {a}/{b}" for value, (a, b) in list(apart.items())[:6])
        more = f" and {len(apart) - 6} more" if len(apart) > 6 else ""
        parts.append(f"{facet} (peer/Atrium): {shown}{more}")
    return "; ".join(parts)


# --- the run -------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__,
        epilog="The issue's sizes are 10,000 and 100,000 entities; develop at 1,000-2,000.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--entities", type=int, default=10_000, help="corpus size (10000)")
    parser.add_argument(
        "--per-file", type=int, default=500,
        help="descriptors per file; the peer gets one file location per file (500)",
    )  # fmt: skip
    parser.add_argument("--rounds", type=int, default=30, help="timed rounds of every call (30)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds first (3)")
    parser.add_argument(
        "--in-process-repeat", type=int, default=15,
        help="timed requests per call through Django's test client (15)",
    )  # fmt: skip
    parser.add_argument(
        "--settle-timeout", type=float, default=None,
        help="seconds to wait for the peer to hold every entity (120 + entities/10)",
    )  # fmt: skip
    parser.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL),
        help="Atrium's database, dropped and made anew ($DATABASE_URL or atrium_peer_bench)",
    )  # fmt: skip
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/12"),
        help="Atrium's cache and sessions' Redis ($REDIS_URL or db 12)",
    )  # fmt: skip
    parser.add_argument(
        "--peer-prefix", default="peer_bench_",
        help="prefix of the peer's databases, all dropped before and after (peer_bench_)",
    )  # fmt: skip
    parser.add_argument(
        "--quiet-timeout", type=float, default=600,
        help="seconds to wait for the peer's processing to rest before timing anyway (600)",
    )  # fmt: skip
    parser.add_argument("--peer-dir", type=Path, default=PEER_DIR, help="where run.sh is")
    parser.add_argument("--keep", action="store_true", help="keep the corpus and the servers' logs")
    parser.add_argument(
        "--reuse-peer", type=Path, metavar="DIR", default=None,
        help="work in DIR and keep the corpus and the peer's databases there for the next run "
        "with the same DIR, --entities and --per-file, which then skips the peer's slow ingest "
        "(Atrium's database is still made anew)",
    )  # fmt: skip
    args = parser.parse_args()
    settle_timeout = args.settle_timeout or 120 + args.entities / 10

    if args.reuse_peer:
        work = args.reuse_peer.resolve()
        work.mkdir(parents=True, exist_ok=True)
    else:
        work = Path(tempfile.mkdtemp(prefix="atrium-peer-bench-"))
    atrium_port, peer_port = free_port(), free_port()
    environment(args, work, atrium_port)
    from bench.common import databases_drop

    try:
        run(args, work, atrium_port, peer_port, settle_timeout)
    finally:
        if args.reuse_peer:
            log(f"kept {work} and the peer's databases ({args.peer_prefix}*) for --reuse-peer")
        else:
            dropped = databases_drop(args.database_url, args.peer_prefix)
            log(f"dropped the peer's databases {dropped}")
        if args.keep or args.reuse_peer:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def run(
    args: argparse.Namespace, work: Path, atrium_port: int, peer_port: int, settle_timeout: float
) -> None:
    from bench.common import child_pids, databases_drop, fresh_database, peak_rss_mib

    folder = work / "corpus"
    # What the kept corpus and the peer's databases were made from: reused only when the same.
    made_from = work / "corpus.made-from"
    recipe = f"entities={args.entities} per-file={args.per_file}"
    reused = bool(args.reuse_peer) and made_from.exists() and made_from.read_text() == recipe
    if not reused:
        databases_drop(args.database_url, args.peer_prefix)
        made_from.unlink(missing_ok=True)
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(work / "generated", ignore_errors=True)
    fresh_database(args.database_url)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    log("collecting static files, as production serves them")
    call_command("collectstatic", interactive=False, verbosity=0)

    if reused:
        files = len(list(folder.glob("*.yaml")))
        written = sum(path.read_text().count("\nmetadata:\n") for path in folder.glob("*.yaml"))
        log(f"corpus: reusing {written:,} entities in {files} files under {folder}")
    else:
        written, files = corpus_write(folder, args.entities, args.per_file)
        log(f"corpus: {written:,} entities in {files} files under {folder}")

    log("Atrium: ingesting the folder as one location")
    ingest = atrium_ingest(folder, written, args.in_process_repeat)
    rate = written / (ingest.seconds + ingest.analyze_seconds)
    log(
        f"Atrium ingest: {ingest.seconds:.1f} s + ANALYZE {ingest.analyze_seconds:.2f} s "
        f"= {rate:,.0f} entities/s"
    )

    from catalog.models import Entity

    components = Entity.objects.filter(kind="Component").order_by("name")
    names = list(components.values_list("name", flat=True)[:50])
    calls = calls_for(component_name=names[0], refs=[f"component:default/{name}" for name in names])

    env = dict(os.environ)
    env.setdefault("BACKSTAGE_WORK", "/tmp/peer-backstage")
    peer_log, atrium_log = work / "peer.log", work / "gunicorn.log"
    log(f"peer: starting Backstage's catalog backend on port {peer_port} over {files} files")
    began = time.perf_counter()
    with process(
        ["bash", str(args.peer_dir / "run.sh"), str(folder), str(peer_port), args.peer_prefix],
        env=env, log_file=peer_log, cwd=work,
    ) as peer_process:  # fmt: skip
        peer = Side("peer", peer_port, "/api/catalog", {})
        wait_for(
            lambda: answering(peer, peer_process, peer_log),
            timeout=600, what=f"the peer to answer (see {peer_log})",
        )  # fmt: skip
        log(f"peer: answering after {time.perf_counter() - began:.1f} s; waiting for ingest")
        peer_seconds = peer_settle(
            peer, written, timeout=settle_timeout, began=began,
            check=lambda: alive(peer_process, peer_log),
        )  # fmt: skip
        log(
            f"peer ingest: {peer_seconds:.1f} s from its start = "
            f"{written / peer_seconds:,.1f} entities/s"
            + (" (its databases reused: not an ingest rate)" if reused else "")
        )
        if args.reuse_peer:
            made_from.write_text(recipe)
        waited, peer_busy = peer_quiet(peer_process.pid, timeout=args.quiet_timeout)
        log(f"peer: using {peer_busy:.0%} of a core after {waited:.0f} s more; timing now")

        log(f"Atrium: gunicorn, one sync worker, on port {atrium_port}")
        gunicorn = [
            str(Path(sys.executable).with_name("gunicorn")), "portal.wsgi",
            f"--bind=127.0.0.1:{atrium_port}", "--workers=1", "--worker-class=sync",
            "--timeout=120", f"--access-logfile={work / 'access.log'}",
        ]  # fmt: skip
        with process(gunicorn, env=env, log_file=atrium_log, cwd=ROOT) as atrium_process:
            atrium = Side("atrium", atrium_port, "/api/catalog", session_headers())
            wait_for(
                lambda: answering(atrium, atrium_process, atrium_log),
                timeout=120, what=f"gunicorn to answer (see {atrium_log})",
            )  # fmt: skip
            log(f"timing {len(calls)} calls: {args.warmup} warm-up rounds, {args.rounds} timed")
            timings = time_calls([atrium, peer], calls, rounds=args.rounds, warmup=args.warmup)
            workers = child_pids(atrium_process.pid)
            atrium_rss = [peak_rss_mib(pid) for pid in workers]
            peer_rss = peak_rss_mib(peer_process.pid)
        log("the same calls in this process, through Django's test client")
        in_process = in_process_calls(calls, args.in_process_repeat)

    print()
    print(
        f"{written:,} entities, {files} files; p50/p95 in ms over {args.rounds} rounds; ratio = "
        "peer p50 / Atrium p50 (above 1: Atrium faster); in-proc = Atrium p50 without HTTP"
    )
    differ = table_print(calls, timings, in_process)
    print()
    if differ:
        print(f"* the answers differ: {', '.join(differ)}")
        for label in differ:
            theirs, ours = timings["peer"].answers[label][1], timings["atrium"].answers[label][1]
            print(f"  {label}: {difference(theirs, ours)}")
        if "by-query fullText ledger" in differ:
            print(
                "  (with the default fields Backstage's full text looks in metadata.uid, so "
                "'ledger' finds nothing there)"
            )
        if any(label.startswith("facets") for label in differ):
            print(
                "  (the peer's catalog also holds a Location entity per registered file, "
                "which Atrium keeps as locations, not entities; and Atrium's facets count no "
                "restricted entity's details, spec.type and tags, catalog.selectors.entity_facets)"
            )
    else:
        print("both sides answered every call alike")
    print(
        f"the peer used {peer_busy:.0%} of a core when timing began (its refresh loop; at most "
        f"{args.quiet_timeout:.0f} s were waited for it to rest)"
    )
    peer_rate = (
        "its databases reused (the run that made them printed its rate)"
        if reused
        else f"{written / peer_seconds:,.1f} entities/s ({peer_seconds:.0f} s from its start)"
    )
    print(
        f"ingest: peer {peer_rate}, Atrium {rate:,.0f} entities/s ({ingest.seconds:.1f} s "
        f"+ ANALYZE {ingest.analyze_seconds:.2f} s of {', '.join(ingest.analysed) or 'no table'})"
    )
    print(
        f"refresh with nothing changed: {ingest.unchanged_seconds:.2f} s "
        f"({ingest.unchanged_seconds / ingest.seconds:.0%} of the first ingest), "
        f"{ingest.unchanged_written} entities written"
    )
    shown_rss = ", ".join(f"{value:.0f}" for value in atrium_rss if value is not None)
    print(
        f"peak RSS: peer (node) {peer_rss or 0:.0f} MiB; Atrium's gunicorn worker {shown_rss} MiB "
        "(Atrium's ingest ran in the bench process, the peer's in its server)"
    )
    print("right after the import, before ANALYZE, and after it (in process, p50 ms):")
    for label, before, after in ingest.before_after:
        print(f"  {label:<36} {before:8.1f} -> {after:8.1f}")
    print(
        "  (a refresh that writes that much now runs this ANALYZE itself once it commits: "
        "catalog.bulk.analyze_after_commit)"
    )


if __name__ == "__main__":
    main()
