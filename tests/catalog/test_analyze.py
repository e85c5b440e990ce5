"""After a refresh that wrote much of the catalog, PostgreSQL's statistics describe the new rows."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from catalog import bulk
from catalog.models import Entity, Relation, SearchRow
from catalog.services import location_import, location_refresh

# The refresh must commit for real: the ANALYZE runs after the commit, in its own transaction.
pytestmark = pytest.mark.django_db(transaction=True)

TABLES = [Entity._meta.db_table, SearchRow._meta.db_table, Relation._meta.db_table]


def components(count: int, *, start: int = 0) -> str:
    return "---\n".join(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\n"
        f"metadata: {{name: service-{i}, description: ledger {i}, tags: [payments]}}\n"
        "spec: {type: service, lifecycle: production, owner: team-x, dependsOn: [resource:db]}\n"
        for i in range(start, start + count)
    )


def last_analysed() -> dict[str, datetime | None]:
    """When each catalog table was last analysed by a command (not by autovacuum)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, last_analyze FROM pg_stat_user_tables WHERE relname = ANY(%s)",
            [TABLES],
        )
        return dict(cursor.fetchall())


def planner_rows(table: str) -> float:
    """How many rows the planner believes the table holds."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [table])
        return float(cursor.fetchone()[0])


@pytest.fixture
def thresholds(monkeypatch: Any) -> None:
    """A large refresh at a test's size: 300 rows of a table, a tenth of what it held."""
    monkeypatch.setattr(bulk, "ANALYZE_MIN_ROWS", 300)
    monkeypatch.setattr(bulk, "ANALYZE_SHARE", 0.1)


def test_a_large_refresh_leaves_the_tables_analysed(tmp_path: Path, thresholds: None) -> None:
    before = last_analysed()
    (tmp_path / "services.yaml").write_text(components(400))

    location_import(target=str(tmp_path))

    after = last_analysed()
    for table in TABLES:
        assert after[table] is not None and after[table] != before.get(table), table
    # The planner now counts the rows the import wrote, not an empty table.
    assert planner_rows(Entity._meta.db_table) == Entity.objects.count() == 400
    assert planner_rows(SearchRow._meta.db_table) == SearchRow.objects.count()
    assert planner_rows(Relation._meta.db_table) == Relation.objects.count()


def test_a_small_refresh_does_not_analyse(tmp_path: Path, thresholds: None) -> None:
    services = tmp_path / "services.yaml"
    services.write_text(components(400))
    report = location_import(target=str(tmp_path))
    analysed = last_analysed()

    # Twenty more entities: fewer rows than the threshold in every table.
    services.write_text(components(420))
    assert len(location_refresh(location=report.location).added) == 20

    assert last_analysed() == analysed
    assert planner_rows(Entity._meta.db_table) == 400


def test_a_dry_run_analyses_nothing(tmp_path: Path, thresholds: None) -> None:
    before = last_analysed()
    (tmp_path / "services.yaml").write_text(components(400))

    location_import(target=str(tmp_path), dry_run=True)

    assert Entity.objects.count() == 0
    assert last_analysed() == before
