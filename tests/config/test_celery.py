"""Celery is configured from Django settings, with the beat schedule and safe acknowledgement."""

from config.celery import app


def test_tasks_are_acknowledged_late_and_serialised_as_json():
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.task_serializer == "json"


def test_beat_purges_idempotency_keys():
    schedule = app.conf.beat_schedule
    assert schedule["purge-idempotency-keys"]["task"] == "core.tasks.idempotency_keys_purge"
    app.loader.import_default_modules()
    assert "core.tasks.idempotency_keys_purge" in app.tasks


def test_each_kind_of_work_is_routed_to_its_own_queue_and_a_worker_without_q_takes_them_all():
    """Stripe's events, deliveries to tenants and Tollgate's own calls to Stripe each have a queue (docs/
    operations.md, "Queues and workers"); everything else stays on `celery`. A worker started without `-Q`
    consumes the queues Celery knows: all four."""
    app.loader.import_default_modules()
    routed = {
        name: app.amqp.router.route({}, name)["queue"].name
        for name in (
            "webhooks.tasks.process_stripe_event",
            "webhooks.tasks.deliver_event",
            "billing.tasks.customer_sync_to_stripe",
            "entitlements.tasks.usage_report_to_stripe",
            "billing.tasks.auto_recharge_charge",
            "billing.tasks.adoption_run",
            "billing.tasks.reconcile_all",
            "webhooks.tasks.requeue_stuck_stripe_events",
            "webhooks.tasks.deliveries_sweep",
            "core.tasks.idempotency_keys_purge",
        )
    }
    assert routed == {
        "webhooks.tasks.process_stripe_event": "stripe-events",
        "webhooks.tasks.deliver_event": "deliveries",
        "billing.tasks.customer_sync_to_stripe": "stripe-calls",
        "entitlements.tasks.usage_report_to_stripe": "stripe-calls",
        "billing.tasks.auto_recharge_charge": "stripe-calls",
        "billing.tasks.adoption_run": "stripe-calls",
        "billing.tasks.reconcile_all": "stripe-calls",
        "webhooks.tasks.requeue_stuck_stripe_events": "celery",
        "webhooks.tasks.deliveries_sweep": "celery",
        "core.tasks.idempotency_keys_purge": "celery",
    }
    assert all(name in app.tasks for name in routed)  # no route names a task that does not exist
    assert sorted(app.amqp.queues) == ["celery", "deliveries", "stripe-calls", "stripe-events"]


def test_on_rabbitmq_every_queue_is_a_quorum_queue_on_the_topic_exchange():
    from config.settings.base import broker_settings

    queues = broker_settings("amqp://guest:guest@127.0.0.1:5672/tollgate")["CELERY_TASK_QUEUES"]
    assert [(q.name, q.routing_key, q.exchange.name, q.exchange.type, q.queue_arguments) for q in queues] == [
        (name, name, "celery", "topic", {"x-queue-type": "quorum"})
        for name in ("celery", "stripe-events", "deliveries", "stripe-calls")
    ]
