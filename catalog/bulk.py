"""Bulk writes of catalog rows: PostgreSQL's COPY, batched INSERTs on other databases."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from django.apps import apps
from django.db import connections, models, router, transaction

from catalog.models import Entity, Location

logger = logging.getLogger(__name__)


def insert_rows(
    model: type[models.Model], fields: list[str], rows: Iterable[tuple[Any, ...]]
) -> int:
    """Many rows into one table: PostgreSQL's COPY (tens of times faster than INSERTs for the
    million search rows of a large catalog), batched INSERTs elsewhere. How many it wrote."""
    connection = connections[router.db_for_write(model)]
    if connection.vendor != "postgresql":
        objects = [model(**dict(zip(fields, row, strict=True))) for row in rows]
        model._default_manager.bulk_create(objects, batch_size=2000)
        return len(objects)
    quote = connection.ops.quote_name
    by_attname = {field.attname: field.column for field in model._meta.concrete_fields}
    columns = ", ".join(quote(by_attname[name]) for name in fields)
    sql = f"COPY {quote(model._meta.db_table)} ({columns}) FROM STDIN"
    written = 0
    with connection.cursor() as cursor, cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)
            written += 1
    return written


# A refresh that wrote at least ANALYZE_MIN_ROWS rows of a table, and at least ANALYZE_SHARE of
# the rows PostgreSQL last counted in it, analyses that table once it has committed. Until
# autovacuum comes round (a minute or more, and longer on a busy database) the planner would
# otherwise choose plans for an empty table: after a bulk import of 100,000 entities a page of
# components took 428 ms instead of 68. Below the threshold the statistics are still close
# enough, and the refresh does not pay for the sampling.
ANALYZE_MIN_ROWS = 1_000
ANALYZE_SHARE = 0.1


def analyze_after_commit(written: Mapping[str, int], *, using: str) -> None:
    """Once the transaction commits, ANALYZE each table (by model label) that `written` rows
    changed enough of, each in its own short transaction. Only on PostgreSQL."""
    if connections[using].vendor != "postgresql":
        return
    tables = {
        apps.get_model(label)._meta.db_table: count
        for label, count in written.items()
        if count >= ANALYZE_MIN_ROWS
    }
    if tables:
        transaction.on_commit(lambda: tables_analyze(tables, using=using), using=using, robust=True)


def tables_analyze(written: Mapping[str, int], *, using: str) -> list[str]:
    """ANALYZE the tables of `written` whose rows written are ANALYZE_SHARE or more of the rows
    PostgreSQL last counted in them (any, for a table never analysed); the tables analysed."""
    connection = connections[using]
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, reltuples FROM pg_class WHERE oid = ANY(%s::regclass[])",
            [list(written)],
        )
        counted = dict(cursor.fetchall())
        due = [
            table
            for table, count in written.items()
            # reltuples is -1 for a table never analysed nor vacuumed.
            if count >= ANALYZE_SHARE * max(counted.get(table, -1.0), 0.0)
        ]
        for table in due:
            cursor.execute(f"ANALYZE {quote(table)}")
    if due:
        logger.info("analysed %s after a refresh that wrote %s rows", due, dict(written))
    return due


PLAIN_FIELDS = (models.CharField, models.TextField, models.BooleanField, models.IntegerField)


def insert_entities(entities: list[Entity], *, location: Location) -> int:
    """Insert new entities and give each its primary key; how many."""
    connection = connections[router.db_for_write(Entity)]
    if connection.vendor != "postgresql" or not entities:
        Entity.objects.bulk_create(entities)
        return len(entities)
    # The database computes generated columns (the full-text document) itself.
    fields = [
        field
        for field in Entity._meta.concrete_fields
        if not field.primary_key and not field.generated
    ]
    # Text, numbers and booleans go to COPY as they are; Django prepares the rest (JSON, UUID,
    # timestamps). Preparing every value through Django was a tenth of a large import.
    plain = [isinstance(field, PLAIN_FIELDS) and not field.choices for field in fields]
    insert_rows(
        Entity,
        [field.attname for field in fields],
        (
            tuple(
                getattr(entity, field.attname)
                if is_plain
                else field.get_db_prep_save(field.pre_save(entity, add=True), connection)
                for field, is_plain in zip(fields, plain, strict=True)
            )
            for entity in entities
        ),
    )
    pks = dict(
        Entity.objects.filter(location=location, ref__in=[entity.ref for entity in entities])
        .values_list("ref", "pk")
    )  # fmt: skip
    for entity in entities:
        entity.pk = pks[entity.ref]
        entity._state.adding = False
    return len(entities)
