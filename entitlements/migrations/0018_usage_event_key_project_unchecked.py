"""Usage event keys stop checking their project by constraint (Django's cascade still deletes them with it): every
key is written with its event, whose row holds the project's constraint, and the second check per key cost a sixth of
a usage batch's commit (issue #30)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('entitlements', '0017_usage_event_partitions'),
        ('projects', '0006_proration_rules'),
    ]

    operations = [
        migrations.AlterField(
            model_name='usageeventkey',
            name='project',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='projects.project'),
        ),
    ]
