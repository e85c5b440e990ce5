"""Search rows rebuilt by Backstage's rules: each string of a list is also a key of its own
(`metadata.tags.java` = true), a value too long to index keeps its key with a null value, and
the etag is not searched. Rows are derived, so every entity's are written again."""

from django.db import migrations

from catalog.search import search_rows

BATCH = 1000


def rebuild_search_rows(apps, schema_editor):
    Entity = apps.get_model("catalog", "Entity")
    Relation = apps.get_model("catalog", "Relation")
    SearchRow = apps.get_model("catalog", "SearchRow")
    pks = list(Entity.objects.order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(pks), BATCH):
        batch = pks[start : start + BATCH]
        outgoing: dict[int, list[tuple[str, str]]] = {}
        relations = Relation.objects.filter(origin_id__in=batch).values_list(
            "origin_id", "source_ref", "type", "target_ref"
        )
        refs = dict(Entity.objects.filter(pk__in=batch).values_list("pk", "ref"))
        for origin, source, kind, target in relations:
            if source == refs[origin]:
                outgoing.setdefault(origin, []).append((kind, target))
        SearchRow.objects.filter(entity_id__in=batch).delete()
        SearchRow.objects.bulk_create(
            [
                SearchRow(entity_id=pk, key=key, value=value, original_value=original)
                for pk, descriptor in Entity.objects.filter(pk__in=batch).values_list(
                    "pk", "descriptor"
                )
                for key, value, original in search_rows(descriptor, outgoing.get(pk, []))
            ],
            batch_size=5000,
        )


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0006_tags_on_entity_search_vector"),
    ]

    operations = [
        migrations.RunPython(rebuild_search_rows, migrations.RunPython.noop, elidable=True),
    ]
