"""Audit records keep the actor's name and e-mail as they were at the time.

The table is append-only (0004's trigger refuses UPDATE and DELETE). Adding a column with a
constant default is DDL, not an UPDATE of the rows, so the trigger lets it through, and older
records read the new fields as blank; they are not backfilled, as a backfill would be the kind
of UPDATE the log refuses. The pages name such an actor by the person's current name instead.
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('access', '0007_role_registry'),
    ]

    operations = [
        migrations.AddField(
            model_name='auditevent',
            name='actor_name',
            field=models.CharField(blank=True, max_length=255),
        ),
        migrations.AddField(
            model_name='auditevent',
            name='actor_email',
            field=models.EmailField(blank=True, max_length=254),
        ),
    ]
