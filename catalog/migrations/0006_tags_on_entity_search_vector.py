"""Tags move onto the entity row, and the full-text document becomes a stored column.

Both spare the catalog page work per matching entity: filtering on a tag and counting tags no
longer join a table of tags, and a search's recheck reads a stored document instead of
parsing `search_text` again. The index on the kind gains the ref, the list's order.
"""

import django.contrib.postgres.search
from django.db import migrations, models
from django.db.models.functions import Upper

import catalog.models

# Indexes only PostgreSQL has (as in 0003): kept out of the models' state so SQLite never sees
# them. `jsonb_path_ops` answers `tags @> '["x"]'` and is smaller than the default operators.
POSTGRES_INDEXES = [
    "CREATE INDEX entity_tags ON catalog_entity USING gin (tags jsonb_path_ops)",
    "CREATE INDEX entity_search_vector ON catalog_entity USING gin (search_vector)",
]
# Migration 0003's index on the expression, which the stored column replaces.
OLD_FULLTEXT = (
    "CREATE INDEX entity_fulltext ON catalog_entity USING gin "
    "(to_tsvector('simple'::regconfig, COALESCE(search_text, '')))"
)


def copy_tags(apps, schema_editor):
    Entity = apps.get_model("catalog", "Entity")
    EntityTag = apps.get_model("catalog", "EntityTag")
    tags: dict[int, list[str]] = {}
    for entity_id, tag in EntityTag.objects.order_by("pk").values_list("entity_id", "tag"):
        tags.setdefault(entity_id, []).append(tag)
    entities = list(Entity.objects.filter(pk__in=tags).only("pk"))
    for entity in entities:
        entity.tags = tags[entity.pk]
    Entity.objects.bulk_update(entities, ["tags"], batch_size=1000)


def restricted_search_text_without_tags(apps, schema_editor):
    """A restricted entity's tags are a detail: searching them would reveal them."""
    Entity = apps.get_model("catalog", "Entity")
    entities = list(Entity.objects.filter(restricted=True).only("name", "title", "description"))
    for entity in entities:
        entity.search_text = " ".join([entity.name, entity.title, entity.description])
    Entity.objects.bulk_update(entities, ["search_text"], batch_size=1000)


def copy_tags_back(apps, schema_editor):
    Entity = apps.get_model("catalog", "Entity")
    EntityTag = apps.get_model("catalog", "EntityTag")
    EntityTag.objects.bulk_create(
        [
            EntityTag(entity_id=pk, tag=tag)
            for pk, tags in Entity.objects.values_list("pk", "tags")
            for tag in tags
        ],
        batch_size=2000,
    )


def add_postgres_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP INDEX IF EXISTS entity_fulltext")
    for sql in POSTGRES_INDEXES:
        schema_editor.execute(sql)


def remove_postgres_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP INDEX IF EXISTS entity_tags")
    schema_editor.execute("DROP INDEX IF EXISTS entity_search_vector")
    schema_editor.execute(OLD_FULLTEXT)


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0005_name_order_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="entity",
            name="tags",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.RunPython(copy_tags, copy_tags_back),
        migrations.RunPython(restricted_search_text_without_tags, migrations.RunPython.noop),
        migrations.DeleteModel(
            name="EntityTag",
        ),
        migrations.AddField(
            model_name="entity",
            name="search_vector",
            field=models.GeneratedField(
                db_persist=True,
                expression=catalog.models.SearchDocument(),
                output_field=django.contrib.postgres.search.SearchVectorField(),
            ),
        ),
        migrations.RemoveIndex(
            model_name="entity",
            name="entity_kind_ci",
        ),
        migrations.AddIndex(
            model_name="entity",
            index=models.Index(Upper("kind"), models.F("ref"), name="entity_kind_ref"),
        ),
        migrations.RunPython(add_postgres_indexes, remove_postgres_indexes),
    ]
