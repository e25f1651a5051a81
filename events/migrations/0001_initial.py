"""Tenant events' models, moved from the `webhooks` app with their tables (`webhooks_*`, unchanged).

In migration state only, then the tables where they are missing: a database migrated before the move keeps
the tables it has (`core.migration_tools`)."""

import core.crypto
import core.ids
import django.db.models.deletion
from django.db import migrations, models

from core.migration_tools import tables_create_missing


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('projects', '0005_field_labels'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='EventSequence',
                    fields=[
                        ('project', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='+', serialize=False, to='projects.project')),
                        ('last', models.BigIntegerField(default=0)),
                    ],
                    options={
                        'verbose_name': 'event sequence',
                        'verbose_name_plural': 'event sequences',
                        'db_table': 'webhooks_eventsequence',
                    },
                ),
                migrations.CreateModel(
                    name='Delivery',
                    fields=[
                        ('id', core.ids.PublicIdField(editable=False, max_length=40, prefix='dlv', primary_key=True, serialize=False)),
                        ('status', models.CharField(choices=[('pending', 'Pending'), ('succeeded', 'Succeeded'), ('failed', 'Failed')], default='pending', max_length=20)),
                        ('attempts', models.PositiveIntegerField(default=0)),
                        ('next_attempt_at', models.DateTimeField(blank=True, null=True, verbose_name='next attempt')),
                        ('last_attempt_at', models.DateTimeField(blank=True, null=True, verbose_name='last attempt')),
                        ('created_at', models.DateTimeField(auto_now_add=True, verbose_name='created')),
                        ('project', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='projects.project')),
                    ],
                    options={
                        'verbose_name': 'delivery',
                        'verbose_name_plural': 'deliveries',
                        'db_table': 'webhooks_delivery',
                    },
                ),
                migrations.CreateModel(
                    name='DeliveryAttempt',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('attempted_at', models.DateTimeField(verbose_name='when')),
                        ('status_code', models.PositiveSmallIntegerField(blank=True, null=True, verbose_name='HTTP status')),
                        ('latency_ms', models.PositiveIntegerField(default=0, verbose_name='latency (ms)')),
                        ('response_body', models.TextField(blank=True, help_text='The first 2 KB, never interpreted.', verbose_name='response (first 2 KB)')),
                        ('error', models.CharField(blank=True, max_length=500)),
                        ('delivery', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='attempt_log', to='events.delivery')),
                    ],
                    options={
                        'verbose_name': 'delivery attempt',
                        'verbose_name_plural': 'delivery attempts',
                        'db_table': 'webhooks_deliveryattempt',
                        'ordering': ['-attempted_at'],
                    },
                ),
                migrations.CreateModel(
                    name='Event',
                    fields=[
                        ('id', core.ids.PublicIdField(editable=False, max_length=40, prefix='evt', primary_key=True, serialize=False)),
                        ('type', models.CharField(db_index=True, max_length=100)),
                        ('sequence', models.BigIntegerField()),
                        ('data', models.JSONField(help_text="{'object': <API representation>}")),
                        ('previous_attributes', models.JSONField(blank=True, null=True, verbose_name='previous values of the changed fields')),
                        ('created_at', models.DateTimeField(auto_now_add=True, db_index=True, verbose_name='created')),
                        ('project', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='events', to='projects.project')),
                    ],
                    options={
                        'verbose_name': 'outbound event',
                        'verbose_name_plural': 'outbound events',
                        'db_table': 'webhooks_event',
                        'ordering': ['-created_at'],
                    },
                ),
                migrations.AddField(
                    model_name='delivery',
                    name='event',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='events.event'),
                ),
                migrations.CreateModel(
                    name='WebhookEndpoint',
                    fields=[
                        ('id', core.ids.PublicIdField(editable=False, max_length=40, prefix='whep', primary_key=True, serialize=False)),
                        ('url', models.URLField(max_length=2000, verbose_name='URL')),
                        ('events', models.JSONField(default=list, help_text='["*"] or a list of event types.')),
                        ('description', models.CharField(blank=True, max_length=500)),
                        ('enabled', models.BooleanField(default=True)),
                        ('secret', core.crypto.EncryptedTextField()),
                        ('previous_secret', core.crypto.EncryptedTextField(blank=True, default='')),
                        ('previous_secret_expires_at', models.DateTimeField(blank=True, null=True)),
                        ('failing_since', models.DateTimeField(blank=True, null=True, verbose_name='failing since (first failure after a success)')),
                        ('disabled_reason', models.CharField(blank=True, max_length=200, verbose_name='why disabled')),
                        ('created_at', models.DateTimeField(auto_now_add=True, verbose_name='created')),
                        ('updated_at', models.DateTimeField(auto_now=True, verbose_name='updated')),
                        ('project', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='webhook_endpoints', to='projects.project')),
                    ],
                    options={
                        'verbose_name': 'webhook endpoint',
                        'verbose_name_plural': 'webhook endpoints',
                        'db_table': 'webhooks_webhookendpoint',
                        'ordering': ['-created_at'],
                    },
                ),
                migrations.AddField(
                    model_name='delivery',
                    name='endpoint',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='events.webhookendpoint'),
                ),
                migrations.AddConstraint(
                    model_name='event',
                    constraint=models.UniqueConstraint(fields=('project', 'sequence'), name='event_sequence_unique'),
                ),
                migrations.AddIndex(
                    model_name='delivery',
                    index=models.Index(fields=['status', 'next_attempt_at'], name='webhooks_de_status_c8abe7_idx'),
                ),
                migrations.AddConstraint(
                    model_name='delivery',
                    constraint=models.UniqueConstraint(fields=('event', 'endpoint'), name='delivery_unique_per_endpoint'),
                ),
            ],
        ),
        tables_create_missing('events', ['EventSequence', 'WebhookEndpoint', 'Event', 'Delivery', 'DeliveryAttempt']),
    ]
