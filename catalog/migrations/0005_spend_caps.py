from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0004_usage_windows"),
    ]

    operations = [
        migrations.AddField(
            model_name="productfeature",
            name="cap",
            field=models.JSONField(blank=True, null=True, verbose_name="spend cap"),
        ),
    ]
