"""The indexes the revenue metrics read a window's part-days from (a few hours of one project's paid payments and
refunds) and the dashboard its churn and failed payments per month, built without locking the tables' writes on
PostgreSQL."""

from django.db import migrations, models
from django.db.models import Q

from core.migration_tools import AddIndexConcurrently


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY runs outside a transaction

    dependencies = [("billing", "0028_revenue_figures_backfill")]

    operations = [
        AddIndexConcurrently(
            model_name="subscription",
            index=models.Index(
                fields=["canceled_at"], condition=Q(canceled_at__isnull=False), name="subscription_churn"
            ),
        ),
        AddIndexConcurrently(
            model_name="payment",
            index=models.Index(fields=["created_at"], condition=Q(status="failed"), name="payment_failed"),
        ),
        AddIndexConcurrently(
            model_name="payment",
            index=models.Index(
                fields=["project", "succeeded_at"],
                condition=Q(succeeded_at__isnull=False),
                name="payment_revenue_hours",
            ),
        ),
        AddIndexConcurrently(
            model_name="refund",
            index=models.Index(fields=["project", "created_at"], name="refund_revenue_hours"),
        ),
    ]
