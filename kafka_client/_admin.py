"""Topic creation and broker reachability."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

import confluent_kafka
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from bouncewire.kafka_client._consumer import UNRECOVERABLE_CODES
from bouncewire.kafka_client._settings import KafkaSettings
from bouncewire.kafka_client.exceptions import BrokerUnavailableError, TopicAdminError


class _Refusals:
    """Remembers why the cluster refused us (credentials, certificates) for the error message."""

    def __init__(self) -> None:
        self.last: str | None = None

    def __call__(self, err: Any) -> None:
        if err.code() in UNRECOVERABLE_CODES:
            self.last = f"{err.name()}: {err.str()}"


def _admin(settings: KafkaSettings, refusals: _Refusals | None = None) -> AdminClient:
    overrides = {"error_cb": refusals} if refusals is not None else {}
    return AdminClient(settings.merged({}, overrides))


def wait_for_broker(settings: KafkaSettings, timeout: float = 10.0) -> int:
    """Block until a metadata request succeeds; returns the number of brokers.

    Bad credentials or an untrusted certificate end the wait at once, named in the error.
    """
    deadline = time.monotonic() + timeout
    refusals = _Refusals()
    admin = _admin(settings, refusals)
    while True:
        try:
            return len(
                admin.list_topics(timeout=min(max(deadline - time.monotonic(), 0.5), 1.0)).brokers
            )
        except confluent_kafka.KafkaException as exc:
            admin.poll(0)  # serves error_cb, which reports refused credentials/certificates
            if refusals.last:
                raise BrokerUnavailableError(
                    f"{settings.bootstrap_servers} refused the connection: {refusals.last}"
                ) from exc
            if time.monotonic() >= deadline:
                raise BrokerUnavailableError(
                    f"no broker of {settings.bootstrap_servers} answered within {timeout:.0f}s"
                ) from exc


def create_topics(
    settings: KafkaSettings,
    names: Iterable[str],
    *,
    partitions: int = 3,
    replication_factor: int = 1,
    config: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> dict[str, bool]:
    """Create topics; existing ones are fine. Returns name -> True when created now."""
    wait_for_broker(settings, timeout=min(timeout, 10.0))
    topics = [
        NewTopic(
            n,
            num_partitions=partitions,
            replication_factor=replication_factor,
            config=dict(config or {}),
        )
        for n in names
    ]
    admin = _admin(settings)  # must outlive the futures: a collected client cancels them
    futures = admin.create_topics(topics, operation_timeout=timeout)
    created: dict[str, bool] = {}
    for name, future in futures.items():
        try:
            future.result(timeout=timeout)
            created[name] = True
        except confluent_kafka.KafkaException as exc:
            err = exc.args[0]
            if err.code() != confluent_kafka.KafkaError.TOPIC_ALREADY_EXISTS:
                raise TopicAdminError(f"creating topic {name!r} failed: {err.str()}") from exc
            created[name] = False
    return created
