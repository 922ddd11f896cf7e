"""Helpers for the unsubscribe service tests: the real app under uvicorn on a loopback port,
publishing to a real broker, and a reader that returns exactly what a request
published (the service answers only after the acknowledgement, so the topic's end offsets
taken after a response already include its record: no waiting, no sleeps)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bouncewire.kafka_client import KafkaProducer, KafkaSettings
from bouncewire.producers.acks import AcknowledgedPublisher
from bouncewire.producers.unsubscribe import Claims, Keyring, sign
from bouncewire.producers.unsubscribe.app import ServiceConfig, UnsubscribeService, create_app
from bouncewire.producers.unsubscribe.server import server_for
from bouncewire.schemas import Codec, SchemaStore
from reliability.harness import end_offsets
from reliability.support import free_port as free_port
from tests.kafka_cluster import messages_between

NEW_SECRET = "n3w-s3cret-" + "a" * 32
OLD_SECRET = "0ld-s3cret-" + "b" * 32
SERVER_KEYS = Keyring.parse(f"k2:{NEW_SECRET},k1:{OLD_SECRET}")
OLD_KEYS = Keyring.parse(f"k1:{OLD_SECRET}")
PARTITIONS = 3



@dataclass
class LiveService:
    """A running service: its base URL, topic, and what landed on the topic."""

    base_url: str
    topic: str
    bootstrap: str
    codec: Codec

    def url(self, token: str) -> str:
        return f"{self.base_url}/u/{token}"

    def link(self, email: str, campaign: str | None = None, meta: str | None = None,
             keys: Keyring = SERVER_KEYS) -> str:
        return self.url(sign(keys, Claims(email, campaign, meta)))

    def end_offsets(self) -> list[int]:
        return end_offsets(self.bootstrap, self.topic, PARTITIONS)

    def published_since(self, start: list[int]) -> list[Any]:
        """Every record between `start` and the current end offsets, as Kafka messages."""
        end = self.end_offsets()
        ranges = {p: (start[p], end[p]) for p in range(PARTITIONS)}
        return messages_between(self.bootstrap, self.topic, ranges)

    def decode(self, message: Any) -> dict[str, Any]:
        return self.codec.decode(message.value()).record


@contextmanager
def running_service(bootstrap: str, topic: str, *, ack_timeout_s: float = 10.0,
                    retry_after_s: int = 30) -> Iterator[LiveService]:
    """The production wiring of `unsubscribe-server`, uvicorn in a thread on a free port."""
    codec = Codec(SchemaStore.load())
    ack_ms = max(1000, int(ack_timeout_s * 1000))
    producer = KafkaProducer(KafkaSettings(bootstrap_servers=bootstrap), {
        "linger.ms": 5, "message.timeout.ms": ack_ms,
        "socket.connection.setup.timeout.ms": ack_ms})
    sender = AcknowledgedPublisher(producer, codec, {"unsubscribe": topic})
    config = ServiceConfig(SERVER_KEYS, ack_timeout_s=ack_timeout_s, retry_after_s=retry_after_s)
    app = create_app(UnsubscribeService(config, sender), on_shutdown=lambda: sender.close(2.0))
    port = free_port()
    server = server_for(app, "127.0.0.1", port)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{port}"
    try:
        assert _wait_started(server, thread), "uvicorn did not start"
        yield LiveService(base_url, topic, bootstrap, codec)
    finally:
        server.should_exit = True
        thread.join(30)


def _wait_started(server: Any, thread: threading.Thread) -> bool:
    for _ in range(300):
        if server.started:
            return True
        if not thread.is_alive():
            return False
        threading.Event().wait(0.05)
    return bool(server.started)
