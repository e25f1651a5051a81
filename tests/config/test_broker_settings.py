"""The broker's settings (config.settings.base.broker_settings): a Redis broker goes through kombu's own Redis
transport (Tollgate names none of its own) with short socket timeouts, and a message still goes round on it —
put, delivered, held as unacked, acked; RabbitMQ gets quorum queues, publisher confirms and a topic exchange."""

import uuid

import pytest
from kombu import Connection
from kombu.transport import redis as kombu_redis

from config.celery import app as celery_app
from config.settings.base import BROKER_TIMEOUT_SECONDS, broker_settings
from tests.e2e.convergence import broker_url


def test_a_redis_broker_takes_kombus_own_transport_with_short_socket_timeouts():
    expected = {
        "CELERY_TASK_DEFAULT_QUEUE_TYPE": "classic",
        "CELERY_TASK_DEFAULT_EXCHANGE_TYPE": "direct",
        "CELERY_BROKER_TRANSPORT_OPTIONS": {
            "socket_timeout": BROKER_TIMEOUT_SECONDS,
            "socket_connect_timeout": BROKER_TIMEOUT_SECONDS,
        },
    }
    for url in ("redis://127.0.0.1:6379/0", "rediss://broker.internal:6380/1"):
        implied = broker_settings(url)
        queues = implied.pop("CELERY_TASK_QUEUES")  # one per kind of work (tests/config/test_celery.py)
        assert implied == expected
        assert [(q.name, q.exchange.type, q.queue_arguments) for q in queues] == [
            (name, "direct", None) for name in ("celery", "stripe-events", "deliveries", "stripe-calls")
        ]
    assert celery_app.conf.broker_transport is None  # the URL's scheme picks kombu's transport


def test_rabbitmq_gets_quorum_queues_publisher_confirms_and_a_topic_exchange():
    rabbitmq = broker_settings("amqp://guest:guest@127.0.0.1:5672//")
    assert (rabbitmq["CELERY_TASK_DEFAULT_QUEUE_TYPE"], rabbitmq["CELERY_TASK_DEFAULT_EXCHANGE_TYPE"]) == (
        "quorum",
        "topic",
    )
    assert rabbitmq["CELERY_BROKER_TRANSPORT_OPTIONS"]["confirm_publish"] is True


@pytest.mark.skipif(
    not broker_url(),
    reason="a real Redis broker: set REDIS_URL and TOLLGATE_TEST_BROKER_URL=redis://… to run it",
)
def test_a_message_goes_round_on_kombus_redis_transport():
    queue = f"test-redis-broker-{uuid.uuid4().hex}"
    url = str(broker_url())
    options = broker_settings(url)["CELERY_BROKER_TRANSPORT_OPTIONS"]
    with Connection(url, transport_options=options) as connection:
        assert type(connection.transport) is kombu_redis.Transport
        simple = connection.SimpleQueue(queue)
        channel = simple.channel
        client = channel.client
        try:
            simple.put({"event": "evt_1", "amount": 4900})
            message = simple.get(timeout=5)
            assert message.payload == {"event": "evt_1", "amount": 4900}
            # Delivered, not yet acked: the unacked entry is in Redis.
            assert client.hexists(channel.unacked_key, message.delivery_tag)
            message.ack()
            assert not client.hexists(channel.unacked_key, message.delivery_tag)
            assert client.llen(queue) == 0
        finally:
            client.delete(queue)
            simple.close()
