"""Trigram indexes on the entity's own name and description, lower-cased.

`fullTextFilterFields=metadata.name,metadata.description` is answered from the entity's columns
(catalog.search.text_fields_q): through the search rows (0014) PostgreSQL found each match's
row there and then the entity's, to check its kind, for 17,000 matches at 100,000 entities;
from the columns the kind is on the row it already reads.
"""

from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import migrations
from django.db.models.functions import Lower

# PostgreSQL's alone (as 0014's): kept out of the models' state so SQLite never sees them.
# Lower-cased as the search rows' values (0003's index on the name is upper-cased, for the
# catalog page's search).
POSTGRES_INDEXES = [
    GinIndex(OpClass(Lower(column), name="gin_trgm_ops"), name=f"entity_{column}_lower_trigram")
    for column in ("name", "description")
]


def add_postgres_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for index in POSTGRES_INDEXES:
        schema_editor.add_index(apps.get_model("catalog", "Entity"), index)


def remove_postgres_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for index in POSTGRES_INDEXES:
        schema_editor.remove_index(apps.get_model("catalog", "Entity"), index)


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0016_location_file_digests"),
    ]

    operations = [
        migrations.RunPython(add_postgres_indexes, remove_postgres_indexes),
    ]
