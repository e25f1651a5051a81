"""Celery's Redis transport (core.redis_broker): a message still goes round — put, delivered, held as unacked,
acked — while every synchronous command of a channel uses one redis-py client per pool instead of a new one."""

import uuid

import pytest
from kombu import Connection

from config.settings.base import broker_settings
from core.redis_broker import Channel, Transport
from tests.e2e.convergence import broker_url


def broker_transport(url):
    return broker_settings(url)["CELERY_BROKER_TRANSPORT"]


def test_a_redis_broker_takes_the_transport_and_any_other_broker_its_own():
    assert broker_transport("redis://127.0.0.1:6379/0") == "core.redis_broker:Transport"
    assert broker_transport("rediss://broker.internal:6380/1") == "core.redis_broker:Transport"
    assert broker_transport("amqp://guest:guest@127.0.0.1:5672//") is None
    assert broker_transport("memory://") is None


def test_rabbitmq_gets_quorum_queues_publisher_confirms_and_a_topic_exchange():
    rabbitmq = broker_settings("amqp://guest:guest@127.0.0.1:5672//")
    assert (rabbitmq["CELERY_TASK_DEFAULT_QUEUE_TYPE"], rabbitmq["CELERY_TASK_DEFAULT_EXCHANGE_TYPE"]) == (
        "quorum",
        "topic",
    )
    assert rabbitmq["CELERY_BROKER_TRANSPORT_OPTIONS"]["confirm_publish"] is True
    redis = broker_settings("redis://127.0.0.1:6379/0")
    assert (redis["CELERY_TASK_DEFAULT_QUEUE_TYPE"], redis["CELERY_TASK_DEFAULT_EXCHANGE_TYPE"]) == (
        "classic",
        "direct",
    )


@pytest.mark.skipif(
    not broker_url(),
    reason="a real Redis broker: set REDIS_URL and TOLLGATE_TEST_BROKER_URL=redis://… to run it",
)
def test_a_message_goes_round_on_one_client_per_pool():
    queue = f"test-redis-broker-{uuid.uuid4().hex}"
    with Connection(broker_url(), transport=broker_transport(str(broker_url()))) as connection:
        assert type(connection.transport) is Transport
        simple = connection.SimpleQueue(queue)
        channel = simple.channel
        assert type(channel) is Channel
        client = channel._create_client()
        try:
            simple.put({"event": "evt_1", "amount": 4900})
            message = simple.get(timeout=5)
            assert message.payload == {"event": "evt_1", "amount": 4900}
            # Delivered, not yet acked: the unacked entry is in Redis (written through the shared client).
            assert client.hexists(channel.unacked_key, message.delivery_tag)
            message.ack()
            assert not client.hexists(channel.unacked_key, message.delivery_tag)
            assert client.llen(queue) == 0
            assert channel._create_client() is client  # the same client for every command
            assert client.connection_pool is channel.pool

            channel._disconnect_pools()  # what a fork or a lost connection does: a new pool, and a new client on it
            fresh = channel._create_client()
            assert fresh is not client
            assert fresh.connection_pool is channel.pool
            simple.put({"event": "evt_2"})
            again = simple.get(timeout=5)
            assert again.payload == {"event": "evt_2"}
            again.ack()
            assert not fresh.hexists(channel.unacked_key, again.delivery_tag)
        finally:
            channel._create_client().delete(queue)
            simple.close()
