"""Catalog benchmark: ingest N generated entities, then time the pages and API people use.

Run by hand, on PostgreSQL (a database of its own, created if missing):

    DEBUG=true .venv/bin/python bench/catalog_bench.py --entities 100000

It ingests a catalog of `--small` entities (100) and then one of `--entities`, each right
before it is timed, and prints the ingest rates, the 50th/95th percentile of each request at
the large size, and the number of SQL queries each request makes at both sizes.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/atrium_bench")
os.environ.setdefault("DEBUG", "true")

KINDS_SHARE = {  # of every 100 entities
    "Component": 58,
    "API": 15,
    "Resource": 16,
    "System": 3,
    "User": 6,
    "Group": 1,
    "Domain": 1,
}
WORDS = [
    "payments",
    "ledger",
    "checkout",
    "cart",
    "search",
    "catalog",
    "identity",
    "billing",
    "invoice",
    "shipping",
    "stock",
    "pricing",
    "orders",
    "events",
    "metrics",
    "logs",
    "reports",
    "fraud",
    "risk",
    "notify",
    "email",
    "mobile",
    "web",
    "gateway",
]
LIFECYCLES = ["production", "experimental", "deprecated"]
ROLES = ["payments.viewer", "payments.admin", "checkout.viewer", "data.reader", "ops.admin"]


def generate(target: Path, total: int, seed: int = 7) -> int:
    """Multi-document files of realistic descriptors, with relations and required roles."""
    rng = random.Random(seed)
    counts = {kind: max(1, total * share // 100) for kind, share in KINDS_SHARE.items()}
    counts["Component"] += total - sum(counts.values())
    groups = [f"team-{i}" for i in range(counts["Group"])]
    systems = [f"system-{i}" for i in range(counts["System"])]
    domains = [f"domain-{i}" for i in range(counts["Domain"])]
    apis = [f"api-{i}" for i in range(counts["API"])]
    resources = [f"resource-{i}" for i in range(counts["Resource"])]
    documents: list[str] = []

    def describe() -> str:
        return " ".join(rng.sample(WORDS, 4))

    def annotations() -> str:
        if rng.random() < 0.2:
            roles = ", ".join(rng.sample(ROLES, rng.randint(1, 2)))
            return f"\n  annotations:\n    atrium.dev/required-roles: {roles}"
        return ""

    for i, name in enumerate(domains):
        documents.append(
            f"kind: Domain\nmetadata:\n  name: {name}\n  description: {describe()}\n"
            f"spec:\n  owner: {groups[i % len(groups)]}\n"
        )
    for name in systems:
        documents.append(
            f"kind: System\nmetadata:\n  name: {name}\n  description: {describe()}\n"
            f"spec:\n  owner: {rng.choice(groups)}\n  domain: {rng.choice(domains)}\n"
        )
    for name in groups:
        documents.append(
            f"kind: Group\nmetadata:\n  name: {name}\nspec:\n  type: team\n  children: []\n"
        )
    for i in range(counts["User"]):
        documents.append(
            f"kind: User\nmetadata:\n  name: user-{i}\nspec:\n"
            f"  profile:\n    email: user-{i}@example.com\n  memberOf: [{rng.choice(groups)}]\n"
        )
    for name in apis:
        documents.append(
            f"kind: API\nmetadata:\n  name: {name}\n  description: {describe()}\n"
            f"  tags: [{rng.choice(WORDS)}]{annotations()}\nspec:\n  type: openapi\n"
            f"  lifecycle: {rng.choice(LIFECYCLES)}\n  owner: {rng.choice(groups)}\n"
            f"  system: {rng.choice(systems)}\n  definition: 'openapi: 3.0.0'\n"
        )
    for name in resources:
        documents.append(
            f"kind: Resource\nmetadata:\n  name: {name}\n  description: {describe()}"
            f"{annotations()}\nspec:\n  type: database\n  owner: {rng.choice(groups)}\n"
            f"  system: {rng.choice(systems)}\n"
        )
    for i in range(counts["Component"]):
        documents.append(
            f"kind: Component\nmetadata:\n  name: component-{i}-{rng.choice(WORDS)}\n"
            f"  description: {describe()}\n  tags: [{rng.choice(WORDS)}, {rng.choice(WORDS)}]"
            f"{annotations()}\nspec:\n  type: service\n  lifecycle: {rng.choice(LIFECYCLES)}\n"
            f"  owner: {rng.choice(groups)}\n  system: {rng.choice(systems)}\n"
            f"  providesApis: [{rng.choice(apis)}]\n  consumesApis: [{rng.choice(apis)}]\n"
            f"  dependsOn: [resource:{rng.choice(resources)}]\n"
        )
    per_file = 1000
    for start in range(0, len(documents), per_file):
        chunk = documents[start : start + per_file]
        text = "---\n".join("apiVersion: backstage.io/v1alpha1\n" + doc for doc in chunk)
        (target / f"entities-{start // per_file:04}.yaml").write_text(text)
    return len(documents)


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=60, help="timed requests per case")
    parser.add_argument(
        "--small", type=int, default=100,
        help="the catalog measured first, for its query counts (100)",
    )  # fmt: skip
    args = parser.parse_args()

    from bench.common import fresh_database

    fresh_database(os.environ["DATABASE_URL"])
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    small = measure(args.small, repeat=10)
    large = measure(args.entities, repeat=args.repeat)
    print(
        f"{args.entities:,} entities, timed right after the bulk refresh (its own ANALYZE, no "
        "VACUUM), for a signed-in person with two roles and a team, not an admin"
    )
    print(f"{'request':<22} {'p50 ms':>8} {'p95 ms':>8} {'queries':>8} {f'at {args.small}':>8}")
    for label, (p50, p95, queries) in large.items():
        print(f"{label:<22} {p50:8.1f} {p95:8.1f} {queries:8d} {small[label][2]:8d}")


def measure(entities: int, *, repeat: int) -> dict[str, tuple[float, float, int]]:
    """Ingest a generated catalog of this size as the only location (the last one removed),
    then time each request: {label: (p50 ms, p95 ms, queries)}."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from catalog.models import Entity, Location
    from catalog.services import location_delete, location_import

    for location in Location.objects.all():
        location_delete(location=location)
    folder = Path(tempfile.mkdtemp(prefix="atrium-bench-"))
    written = generate(folder, entities)

    started = time.perf_counter()
    report = location_import(target=str(folder), allow_kinds=["User", "Group"])
    elapsed = time.perf_counter() - started
    print(f"ingest: {written:,} entities in {elapsed:.1f} s = {written / elapsed:,.0f} entities/s")
    if report.problems:
        print(f"  {len(report.problems)} problems, first: {report.problems[0]}")
    # Nothing more: the refresh ran ANALYZE on what it wrote (catalog.bulk), as a deployment's
    # beat-driven refresh would leave the database.

    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(reader())
    first_component = (
        Entity.objects.filter(kind="Component").order_by("pk").values_list("name", flat=True)[0]
    )
    cases = {
        "first page": "/catalog/",  # Components, as the list opens
        "every kind": "/catalog/?kind=all",
        "filtered page": "/catalog/?kind=component&lifecycle=production&tag=payments",
        "broad filter": "/catalog/?kind=component",
        "search": "/catalog/?q=ledger",
        "search as typed": "/catalog/?q=pay",
        "API by-query page": "/api/catalog/entities/by-query?filter=kind=component&limit=20",
        "API facets": "/api/catalog/entity-facets?facet=kind&facet=spec.lifecycle",
        "API relation filter": "/api/catalog/entities?limit=20"
        "&filter=kind=component,relations.dependson=resource:default/resource-3",
        "entity page": f"/catalog/default/component/{first_component}/",
        "group page": "/catalog/default/group/team-0/",
    }
    measured = {}
    for label, path in cases.items():
        for _ in range(5):  # warm up
            client.get(path)
        samples = []
        for _ in range(repeat):
            began = time.perf_counter()
            response = client.get(path)
            samples.append((time.perf_counter() - began) * 1000)
            assert response.status_code == 200, (path, response.status_code)
        with CaptureQueriesContext(connection) as queries:
            client.get(path)
        measured[label] = (
            statistics.median(samples),
            percentile(samples, 0.95),
            len(queries.captured_queries),
        )
    return measured


def reader() -> Any:
    """A person with two roles and a catalog identity (user-1 of the corpus, in a team), not
    an admin: the access checks run as for most people."""
    from access.models import Role, RoleMembership
    from portal.models import User

    user, _ = User.objects.get_or_create(
        sub="bench|reader", defaults={"email": "user-1@example.com", "email_verified": True}
    )
    for name in ("payments.viewer", "data.reader"):
        role, _ = Role.objects.get_or_create(name=name)
        RoleMembership.objects.get_or_create(
            user=user, role=role, defaults={"source": RoleMembership.Source.SIGN_IN}
        )
    return user


if __name__ == "__main__":
    main()
