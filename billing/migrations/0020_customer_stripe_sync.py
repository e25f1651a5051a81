from django.db import migrations, models


class Migration(migrations.Migration):
    """A customer's email or name change that Stripe has not heard of yet (`Customer.stripe_sync_pending`), and
    the partial index beat's sweep reads it through."""

    dependencies = [
        ("billing", "0019_field_labels"),
    ]

    operations = [
        migrations.AddField(
            model_name="customer",
            name="stripe_sync_pending",
            field=models.BooleanField(default=False),
        ),
        migrations.AddIndex(
            model_name="customer",
            index=models.Index(
                condition=models.Q(("stripe_sync_pending", True)),
                fields=["updated_at"],
                name="customer_stripe_sync_pending",
            ),
        ),
    ]
