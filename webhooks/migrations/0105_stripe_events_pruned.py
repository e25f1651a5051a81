"""Retention (webhooks.services.retention): the running totals of what it pruned (one row), which `/metrics`'
counter of conflicts adds to those of the events kept."""

from django.db import migrations, models


class Migration(migrations.Migration):

    replaces = [('stripe_inbox', '0005_stripe_events_pruned')]

    dependencies = [
        ('projects', '0006_proration_rules'),
        ('webhooks', '0104_webhook_endpoint_api_version'),
    ]

    operations = [
        migrations.CreateModel(
            name='StripeEventsPruned',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('events', models.BigIntegerField(default=0, verbose_name='events pruned')),
                ('conflicts', models.BigIntegerField(default=0, verbose_name='their conflicts')),
                ('updated_at', models.DateTimeField(auto_now=True, verbose_name='last pruned')),
            ],
            options={
                'verbose_name': 'pruned Stripe events tally',
                'verbose_name_plural': 'pruned Stripe events tallies',
                'db_table': 'webhooks_stripeeventspruned',
            },
        ),
    ]
