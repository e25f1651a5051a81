"""Customer tasks: thin wrappers that take ids and call one service (names kept from when they were billing's)."""

from celery import shared_task

from customers.services import customers as services


@shared_task(
    name="billing.tasks.customer_sync_to_stripe",
    acks_late=True,
    autoretry_for=(Exception,),
    retry_backoff=True,
    max_retries=5,
)
def customer_sync_to_stripe(customer_id: str) -> None:
    services.customer_sync_to_stripe(customer_id=customer_id)


@shared_task(name="billing.tasks.customers_sync_to_stripe_sweep", acks_late=True)
def customers_sync_to_stripe_sweep() -> int:
    """Beat: sends to Stripe the customer changes still pending (a task lost to a broker outage, or out of
    retries)."""
    return services.customers_stripe_sync_due()
