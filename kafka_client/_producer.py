"""Thin producer adapter: lazy client, fixed config merge order, poll(0) after every
`poll_every` produces, BufferError retried by polling, flush on exit."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from types import TracebackType
from typing import Any

import confluent_kafka

from bouncewire.kafka_client._settings import KafkaSettings
from bouncewire.kafka_client.exceptions import BrokerUnavailableError, DeliveryError

# Idempotence implies acks=all, bounded in-flight requests and infinite internal retries:
# a record the broker acknowledged is written exactly once and in order.
PRODUCER_DEFAULTS: Mapping[str, object] = {
    "enable.idempotence": True,
    "acks": "all",
    "linger.ms": 20,
    "compression.type": "lz4",
    # Bounded: a dead broker surfaces as a delivery error instead of an endless wait.
    "message.timeout.ms": 30_000,
    "socket.connection.setup.timeout.ms": 10_000,
}

Headers = Sequence[tuple[str, bytes | str]]
OnDelivery = Callable[[Any, Any], None]


@dataclass(slots=True)
class DeliveryReport:
    """Delivery callback of a stream of records: counts the failed ones and keeps the first few
    errors for the message. Successes are not counted one by one, so the producer may report
    failures only (``KafkaProducer(report_failures_only=True)``): whoever produces counts
    ``sent``, and a record sent that neither failed nor is still outstanding was acknowledged.
    """

    sent: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def __call__(self, err: Any, msg: Any) -> None:
        if err is None:
            return
        self.failed += 1
        if len(self.errors) < 5:
            self.errors.append(f"{msg.topic()}: {err.name()} ({err.str()})")

    def acked(self, outstanding: int) -> int:
        """Records acknowledged, given how many are still `outstanding` (e.g. after a flush)."""
        return self.sent - self.failed - outstanding


class KafkaProducer:
    """The only place that builds a confluent_kafka.Producer."""

    def __init__(
        self,
        settings: KafkaSettings,
        extra_config: Mapping[str, object] | None = None,
        *,
        buffer_wait_s: float = 30.0,
        poll_every: int = 1,
        report_failures_only: bool = False,
    ) -> None:
        """For bulk loads (measured per record of ~20 µs of CLI CPU): `poll_every` N serves
        delivery reports after every N-th produce, not after each (poll(0) cost ~0.2 µs);
        `report_failures_only` calls delivery callbacks for failed records only (a Message
        object and a Python call per success cost ~0.3 µs)."""
        if poll_every < 1:
            raise ValueError("poll_every must be at least 1")
        self._settings = settings
        self._extra = dict(extra_config or {})
        if report_failures_only:
            # confluent-kafka honours this in its own callback trampoline (no leak).
            self._extra["delivery.report.only.error"] = True
        self._buffer_wait_s = buffer_wait_s
        self._poll_every = poll_every
        self._unpolled = 0  # produces since the last poll
        self._client: confluent_kafka.Producer | None = None
        self._fatal: str | None = None

    def _on_error(self, err: Any) -> None:
        # Fatal errors (e.g. an idempotence sequence violation) make the producer unusable.
        if err.fatal():
            self._fatal = f"{err.name()}: {err.str()}"

    @property
    def client(self) -> confluent_kafka.Producer:
        """Created on first use so constructing the adapter never touches the network."""
        if self._client is None:
            overrides = {**self._extra, "error_cb": self._on_error}
            conf = self._settings.merged(PRODUCER_DEFAULTS, overrides)
            self._client = confluent_kafka.Producer(conf)
        return self._client

    def produce(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | None = None,
        timestamp_ms: int | None = None,
        headers: Headers | None = None,
        on_delivery: OnDelivery | None = None,
    ) -> None:
        if self._fatal:
            raise DeliveryError(f"producer failed fatally: {self._fatal}")
        client = self._client if self._client is not None else self.client
        # Unused keywords at their defaults (timestamp 0 = now, None = no headers/callback).
        timestamp = timestamp_ms or 0
        header_list: list[tuple[str, str | bytes | None]] | None = (
            list(headers) if headers else None
        )
        try:
            client.produce(
                topic, value, key, on_delivery=on_delivery, timestamp=timestamp, headers=header_list
            )
        except BufferError:
            self._produce_when_room(
                partial(
                    client.produce,
                    topic,
                    value,
                    key,
                    on_delivery=on_delivery,
                    timestamp=timestamp,
                    headers=header_list,
                )
            )
        self._unpolled += 1
        if self._unpolled >= self._poll_every:
            self._unpolled = 0
            client.poll(0)

    def _produce_when_room(self, produce: Callable[[], None]) -> None:
        """The local queue is full: serve delivery reports until there is room."""
        deadline = time.monotonic() + self._buffer_wait_s
        while True:
            self.client.poll(0.05)
            self._unpolled = 0
            try:
                produce()
                return
            except BufferError:
                if time.monotonic() > deadline:
                    raise DeliveryError(
                        f"local produce queue stayed full for {self._buffer_wait_s:.0f}s",
                        retriable=True,
                    ) from None

    @property
    def outstanding(self) -> int:
        """Records handed over whose delivery report was not served yet (librdkafka's out-queue
        length, which also counts a few internal events until they are served)."""
        return len(self._client) if self._client is not None else 0

    def poll(self, timeout: float = 0.0) -> int:
        return int(self.client.poll(timeout)) if self._client is not None else 0

    def flush(self, timeout: float = 30.0) -> int:
        """Wait for outstanding deliveries; returns how many are still unacknowledged."""
        if self._client is None:
            return 0
        return int(self._client.flush(timeout))

    def check_broker(self, timeout: float = 10.0) -> None:
        try:
            self.client.list_topics(timeout=timeout)
        except confluent_kafka.KafkaException as exc:
            raise BrokerUnavailableError(
                f"no broker of {self._settings.bootstrap_servers} answered within {timeout:.0f}s"
            ) from exc

    def __enter__(self) -> KafkaProducer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.flush()
