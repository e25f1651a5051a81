from django.db import migrations, models


def versions_fill(apps, schema_editor):
    """Before this, a product's account cap was not versioned: every subscriber, whatever their version, had the
    product's cap as it is now. Each version written before keeps exactly that, so no answer changes; a draft
    saved before gives it too, so publishing it keeps the cap (a draft left out is the latest version's)."""
    Product = apps.get_model("catalog", "Product")
    ProductVersion = apps.get_model("catalog", "ProductVersion")
    ProductDraft = apps.get_model("catalog", "ProductDraft")
    for product_id, cap in Product.objects.filter(account_cap__isnull=False).values_list("pk", "account_cap"):
        ProductVersion.objects.filter(product_id=product_id).update(account_cap=cap)
        ProductDraft.objects.filter(product_id=product_id).update(account_cap=cap)


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0014_draft_prices"),
    ]

    operations = [
        migrations.AddField(
            model_name="productversion",
            name="account_cap",
            field=models.JSONField(
                blank=True, null=True, verbose_name="spend cap across its metered features"
            ),
        ),
        migrations.AddField(
            model_name="productdraft",
            name="account_cap",
            field=models.JSONField(
                blank=True, null=True, verbose_name="spend cap across its metered features"
            ),
        ),
        migrations.RunPython(versions_fill, migrations.RunPython.noop),
    ]
