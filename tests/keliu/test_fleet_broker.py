"""Router users against the real RabbitMQ: router A publishes its sightings to its own queue through the sensor's
Celery sink, and cannot publish as store B, into the workers' queues, or read any other queue."""
from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from kombu import Connection

from keliu.fleet import rabbit
from sensor.records import Sighting
from sensor.sinks import CelerySink
from tests.conftest import require


def tsighting(store: str) -> Sighting:
    return Sighting(sid=f"{store}-1", ts=1.7e9, store=store, sensor="s1", device="d" * 32, rssi=-50, freq=2412,
                    seq=1, randomized=False)


def test_a_router_user_may_touch_its_own_queue_only() -> None:
    g = rabbit.grant("mall-1_s2")
    assert g.user == g.queue == "keliu_router_mall-1_s2"
    assert g.configure == g.write == g.read == r"^keliu_router_mall\-1_s2$"


@pytest.fixture
def routers(rabbitmq_url: str) -> Iterator[dict[str, str]]:
    require(shutil.which("rabbitmqctl") is not None or os.path.exists("/usr/sbin/rabbitmqctl"),
            "rabbitmqctl on this host")
    tag = uuid.uuid4().hex[:8]
    stores = {"a": f"a{tag}", "b": f"b{tag}"}
    urls = {}
    try:
        for key, store in stores.items():
            user, password = rabbit.add_user(store)
            urls[key] = f"amqp://{quote(user)}:{quote(password)}@127.0.0.1:5672//"
        yield {**urls, "store_a": stores["a"], "store_b": stores["b"]}
    finally:
        for store in stores.values():
            rabbit.delete_user(store)
        with Connection(rabbitmq_url) as admin:
            channel = admin.channel()
            for store in stores.values():
                channel.queue_delete(rabbit.queue_name(store))
                channel.exchange_delete(rabbit.queue_name(store))


@pytest.mark.integration
def test_router_a_publishes_its_own_and_nothing_else(routers: dict[str, str], rabbitmq_url: str) -> None:
    a, b = routers["store_a"], routers["store_b"]
    # its own queue: delivered
    CelerySink(routers["a"], rabbit.queue_name(a)).deliver([tsighting(a)])
    with Connection(rabbitmq_url) as admin:
        _, messages, _ = admin.channel().queue_declare(rabbit.queue_name(a), passive=True)
    assert messages == 1
    # B's queue, the workers' queues, Celery's default queue: refused (the sink reports a failed delivery or
    # the broker's refusal; nothing arrives)
    for queue in (rabbit.queue_name(b), "analytics", None):
        with pytest.raises(Exception, match="ACCESS_REFUSED|access to"):
            CelerySink(routers["a"], queue).deliver([tsighting(a)])
    # raw publishes past any declaration (with publisher confirms, so that the refusal is seen): the default
    # exchange would route into any queue, the workers' exchanges into theirs
    for exchange, key in (("", "analytics"), ("", "celery"), ("analytics", "analytics"),
                          (rabbit.queue_name(b), rabbit.queue_name(b)), ("amq.topic", "anything")):
        with (Connection(routers["a"], transport_options={"confirm_publish": True}) as conn,
              pytest.raises(Exception, match="ACCESS_REFUSED|access to")):
            conn.Producer(serializer="json").publish({"forged": True}, exchange=exchange, routing_key=key)
    # reading: its own queue only
    with Connection(routers["a"]) as conn:
        message = conn.SimpleQueue(rabbit.queue_name(a)).get(timeout=5)
        args = message.payload[0]  # Celery's protocol 2: (args, kwargs, embed)
        assert args[0][0]["store"] == a
        message.ack()
    for queue in ("analytics", "celery", rabbit.queue_name(b)):
        with Connection(routers["a"]) as conn, pytest.raises(Exception, match="ACCESS_REFUSED|access to"):
            conn.default_channel.basic_get(queue)
    with Connection(rabbitmq_url) as admin:
        channel = admin.channel()
        assert channel.queue_declare(rabbit.queue_name(a), passive=True)[1] == 0
        # nothing of A's reached B's queue (declared by B's own router, empty)
    with Connection(routers["b"]) as conn:
        conn.default_channel.queue_declare(rabbit.queue_name(b), durable=True)
    with Connection(rabbitmq_url) as admin:
        assert admin.channel().queue_declare(rabbit.queue_name(b), passive=True)[1] == 0
