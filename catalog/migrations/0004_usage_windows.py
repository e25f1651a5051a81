from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0003_overage_and_rollover"),
    ]

    operations = [
        migrations.AddField(
            model_name="productfeature",
            name="windows",
            field=models.JSONField(blank=True, null=True, verbose_name="usage windows"),
        ),
    ]
