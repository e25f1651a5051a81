from django.db import migrations


def drop_usage_event_id_pattern_index(apps, schema_editor):
    """PostgreSQL: usage event ids are never searched by prefix; the `varchar_pattern_ops` index Django adds to
    a text primary key only slows down the busiest insert. (A migration of its own: Django creates that index
    at the end of the migration that creates the table.)"""
    if schema_editor.connection.vendor != "postgresql":
        return
    table = apps.get_model("entitlements", "UsageEvent")._meta.db_table
    name = schema_editor._create_index_name(table, ["id"], suffix="_like")
    schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}")


class Migration(migrations.Migration):
    dependencies = [("entitlements", "0002_grants_usage_credits")]

    operations = [migrations.RunPython(drop_usage_event_id_pattern_index, migrations.RunPython.noop)]
