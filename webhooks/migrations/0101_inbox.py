"""The Stripe inbox's models, moved from the `webhooks` app with their tables (`webhooks_*`, unchanged).

In migration state only, then the tables where they are missing: a database migrated before the move keeps
the tables it has (`core.migration_tools`).

The app was `stripe_inbox` until it became `webhooks` again: this migration and the next five are `stripe_inbox`'s
0001–0006 under names the first `webhooks` app never used (databases that had it keep its rows, `0001_initial`
to `0006_field_labels`), each replacing its `stripe_inbox` twin. Where the twin is applied, Django counts this one
applied and runs nothing; `0107_from_stripe_inbox` then moves the content types."""

import core.crypto
import core.ids
import django.db.models.deletion
from django.db import migrations, models

from core.migration_tools import tables_create_missing


class Migration(migrations.Migration):

    initial = True

    replaces = [('stripe_inbox', '0001_initial')]

    dependencies = [
        ('projects', '0005_field_labels'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='StripeWebhookEndpoint',
                    fields=[
                        ('id', core.ids.PublicIdField(editable=False, max_length=40, prefix='swe', primary_key=True, serialize=False)),
                        ('account', models.CharField(max_length=40, unique=True)),
                        ('stripe_endpoint_id', models.CharField(max_length=255, verbose_name='Stripe endpoint')),
                        ('url', models.URLField(max_length=2000, verbose_name='URL')),
                        ('secret', core.crypto.EncryptedTextField(blank=True, default='')),
                        ('created_at', models.DateTimeField(auto_now_add=True, verbose_name='created')),
                        ('updated_at', models.DateTimeField(auto_now=True, verbose_name='updated')),
                        ('project', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='projects.project')),
                    ],
                    options={
                        'verbose_name': 'Stripe webhook endpoint',
                        'verbose_name_plural': 'Stripe webhook endpoints',
                        'db_table': 'webhooks_stripewebhookendpoint',
                    },
                ),
                migrations.CreateModel(
                    name='StripeEvent',
                    fields=[
                        ('id', core.ids.PublicIdField(editable=False, max_length=40, prefix='sevt', primary_key=True, serialize=False)),
                        ('account', models.CharField(max_length=40)),
                        ('stripe_event_id', models.CharField(max_length=255, verbose_name='Stripe event')),
                        ('type', models.CharField(db_index=True, max_length=100)),
                        ('api_version', models.CharField(blank=True, max_length=50, verbose_name='Stripe API version')),
                        ('stripe_created', models.BigIntegerField(help_text="Stripe's `created` (Unix seconds): orders events of one object.", verbose_name='created at Stripe (Unix time)')),
                        ('payload', models.JSONField()),
                        ('ordering_key', models.CharField(default='', max_length=300, verbose_name='applied in turn with')),
                        ('status', models.CharField(choices=[('received', 'Received'), ('processing', 'Processing'), ('processed', 'Processed'), ('failed', 'Failed'), ('ignored', 'Ignored')], default='received', max_length=20)),
                        ('attempts', models.PositiveIntegerField(default=0)),
                        ('next_attempt_at', models.DateTimeField(blank=True, null=True, verbose_name='next attempt')),
                        ('conflicts', models.PositiveIntegerField(default=0)),
                        ('last_error', models.TextField(blank=True, verbose_name='error of the last attempt')),
                        ('received_at', models.DateTimeField(auto_now_add=True, db_index=True, verbose_name='received')),
                        ('processing_started_at', models.DateTimeField(blank=True, null=True, verbose_name='processing started')),
                        ('processed_at', models.DateTimeField(blank=True, null=True, verbose_name='processed')),
                        ('updated_at', models.DateTimeField(auto_now=True, verbose_name='updated')),
                        ('project', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='stripe_events', to='projects.project')),
                    ],
                    options={
                        'verbose_name': 'Stripe event',
                        'verbose_name_plural': 'Stripe events',
                        'db_table': 'webhooks_stripeevent',
                        'ordering': ['-received_at'],
                        'permissions': [('replay_stripeevent', 'Can replay Stripe events')],
                        'indexes': [models.Index(fields=['status', 'updated_at'], name='webhooks_st_status_6d9834_idx'), models.Index(fields=['ordering_key', 'status', 'stripe_created'], name='stripe_event_by_key')],
                        'constraints': [models.UniqueConstraint(fields=('account', 'stripe_event_id'), name='stripe_event_unique_per_account')],
                    },
                ),
            ],
        ),
        tables_create_missing('webhooks', ['StripeWebhookEndpoint', 'StripeEvent']),
    ]
