"""The stored facet counts are kept per kind, and restricted entities are counted apart.

The catalog page opens on one kind (Components), and a facet's count must agree with what
the table lists for whoever looks: the restricted entities' details are counted too, apart,
for the policy to add those the viewer may see. The counts are made again here from the
entities, as `catalog.services.facet_counts_rebuild` makes them.
"""

from collections import Counter

from django.db import migrations, models

FACET_COLUMNS = {
    "kind": "kind",
    "type": "spec_type",
    "lifecycle": "lifecycle",
    "owner": "owner_ref",
    "namespace": "namespace",
}


def forget_counts(apps, schema_editor):
    apps.get_model("catalog", "FacetCount").objects.all().delete()


def count_again(apps, schema_editor):
    Entity = apps.get_model("catalog", "Entity")
    FacetCount = apps.get_model("catalog", "FacetCount")
    counted: Counter[tuple[str, str, str, bool]] = Counter()
    fields = ["kind", "restricted", "tags", *FACET_COLUMNS.values()]
    for row in Entity.objects.values(*fields).iterator(chunk_size=2000):
        kind, restricted = row["kind"], row["restricted"]
        for facet, column in FACET_COLUMNS.items():
            if row[column]:
                counted[(kind, facet, row[column], restricted)] += 1
        for tag in row["tags"] or []:
            counted[(kind, "tag", tag, restricted)] += 1
    FacetCount.objects.bulk_create(
        (
            FacetCount(kind=kind, facet=facet, value=value, restricted=restricted, count=count)
            for (kind, facet, value, restricted), count in counted.items()
        ),
        batch_size=2000,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0011_location_last_refresh_seconds"),
    ]

    operations = [
        migrations.RunPython(forget_counts, migrations.RunPython.noop),
        migrations.RemoveConstraint(model_name="facetcount", name="facet_value_once"),
        migrations.AddField(
            model_name="facetcount",
            name="kind",
            field=models.CharField(default="", max_length=63),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="facetcount",
            name="restricted",
            field=models.BooleanField(default=False),
        ),
        migrations.AddConstraint(
            model_name="facetcount",
            constraint=models.UniqueConstraint(
                fields=("kind", "facet", "value", "restricted"), name="facet_value_once"
            ),
        ),
        migrations.RunPython(count_again, forget_counts),
    ]
