"""Pytest plugin: one real Kafka broker for the whole test session, and per-test names.

Register it from tests/conftest.py with ``pytest_plugins = ["tests.kafka_cluster"]``.

Which broker ``kafka_bootstrap`` gives, first match wins:

1. ``KAFKA_BOOTSTRAP_SERVERS`` is set: that cluster, as is.
2. A Docker engine answers a ping within ~2 s: testcontainers' ``KafkaContainer`` (KRaft).
3. Otherwise the project's own JVM broker, ``deploy/kafka/kafka.sh up``: on ``KAFKA_PORT``
   when set (left running afterwards, like ``make kafka-up``), else on a free port, where it
   is stopped and its data dir removed at session end.

The choice is printed as a ``kafka: ...`` line when the broker is ready and again in the
terminal summary, so every run says which broker its integration tests used.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

REPO_ROOT = Path(__file__).resolve().parent.parent
KAFKA_SH = REPO_ROOT / "deploy" / "kafka" / "kafka.sh"
MAVEN_LIBS = REPO_ROOT / ".cache" / "kafka" / "libs"
# Covers a cold jar fetch (seconds with Maven's cache, well under a minute without) + start.
LOCAL_BROKER_UP_TIMEOUT_S = 600
DOCKER_PING_TIMEOUT_S = 2
TOPIC_READY_TIMEOUT_S = 30
# Kafka topic names: at most 249 characters from [a-zA-Z0-9._-].
_NOT_TOPIC_CHAR = re.compile(r"[^a-zA-Z0-9._-]+")
_MAX_NAME_LENGTH = 200

_BROKER_KEY = pytest.StashKey["KafkaBroker"]()


@dataclass(frozen=True)
class KafkaBroker:
    """The cluster a test session runs against and how it was obtained."""

    bootstrap: str
    description: str


# ------------------------------------------------------------------ choosing a broker


def docker_engine_reachable() -> bool:
    """True when a Docker engine answers a ping; any failure at all means no."""
    try:
        import docker  # type: ignore[import-untyped]

        client = docker.from_env(timeout=DOCKER_PING_TIMEOUT_S)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # no SDK, no socket, refused, timeout: all mean "unreachable"
        return False


@contextmanager
def docker_kafka() -> Iterator[KafkaBroker]:
    try:
        from testcontainers.community.kafka import KafkaContainer
    except ImportError:  # testcontainers before the community split
        from testcontainers.kafka import KafkaContainer

    with KafkaContainer().with_kraft() as container:
        bootstrap = container.get_bootstrap_server()
        yield KafkaBroker(bootstrap, f"testcontainers KafkaContainer at {bootstrap}")


def port_pair_is_free(port: int) -> bool:
    """The local broker uses port (clients) and port + 1 (KRaft controller)."""
    for candidate in (port, port + 1):
        with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
            try:
                sock.bind(("127.0.0.1", candidate))
            except OSError:
                return False
    return True


def free_port_pair() -> int:
    for _ in range(50):
        with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port < 65535 and port_pair_is_free(port):
            return port
    raise RuntimeError("no free pair of adjacent loopback ports for the local Kafka broker")


def run_kafka_sh(command: str, port: int, timeout_s: float) -> str:
    """Run deploy/kafka/kafka.sh and return its stdout; its stderr reaches the terminal."""
    env = {**os.environ, "KAFKA_PORT": str(port)}
    env.pop("KAFKA_CONTROLLER_PORT", None)  # the controller port follows KAFKA_PORT
    result = subprocess.run(
        ["bash", str(KAFKA_SH), command],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"kafka.sh {command} on port {port} exited {result.returncode}")
    return result.stdout


def local_broker_version() -> str:
    kafka_home = os.environ.get("KAFKA_HOME")
    libs = Path(kafka_home) / "libs" if kafka_home else MAVEN_LIBS
    core_jars = sorted(libs.glob("kafka_2.13-*.jar"))
    return core_jars[0].stem.removeprefix("kafka_2.13-") if core_jars else "4.x"


@contextmanager
def local_jvm_kafka() -> Iterator[KafkaBroker]:
    chosen_port = os.environ.get("KAFKA_PORT")
    port = int(chosen_port) if chosen_port else free_port_pair()
    output = run_kafka_sh("up", port, LOCAL_BROKER_UP_TIMEOUT_S)
    bootstrap = output.strip().splitlines()[-1]
    version = local_broker_version()
    try:
        yield KafkaBroker(bootstrap, f"local JVM broker {version} at {bootstrap}")
    finally:
        if not chosen_port:
            run_kafka_sh("reset", port, 60)


@contextmanager
def session_kafka() -> Iterator[KafkaBroker]:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield KafkaBroker(external, f"KAFKA_BOOTSTRAP_SERVERS cluster at {external}")
    elif docker_engine_reachable():
        with docker_kafka() as broker:
            yield broker
    else:
        with local_jvm_kafka() as broker:
            yield broker


def announce(config: pytest.Config, broker: KafkaBroker) -> None:
    config.stash[_BROKER_KEY] = broker
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    if capture is None:
        reporter.write_line(f"kafka: {broker.description}")
        return
    # Fixture setup runs under output capture: suspend it so the line reaches the terminal.
    with capture.global_and_fixture_disabled():
        reporter.write_line(f"kafka: {broker.description}")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    broker = terminalreporter.config.stash.get(_BROKER_KEY, None)
    if broker is not None:
        terminalreporter.write_line(f"kafka: {broker.description}")


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def kafka_bootstrap(pytestconfig: pytest.Config) -> Iterator[str]:
    """Bootstrap servers ("host:port") of the session's real Kafka broker."""
    with session_kafka() as broker:
        announce(pytestconfig, broker)
        yield broker.bootstrap


def topic_safe(text: str) -> str:
    return _NOT_TOPIC_CHAR.sub("-", text).strip("-")


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """A factory of topic/group names unique to this test: ``<prefix>-<test>-<8 hex>``."""
    test_name = topic_safe(request.node.name)

    def make(prefix: str) -> str:
        name = f"{topic_safe(prefix)}-{test_name}"[: _MAX_NAME_LENGTH - 9]
        return f"{name}-{uuid.uuid4().hex[:8]}"

    return make


def wait_for_leaders(admin: AdminClient, names: list[str], partitions: int) -> None:
    """create_topics returns before every partition has a leader; producing earlier fails."""
    deadline = time.monotonic() + TOPIC_READY_TIMEOUT_S
    while time.monotonic() < deadline:
        topics = admin.list_topics(timeout=5).topics
        if all(_has_leaders(topics.get(name), partitions) for name in names):
            return
        time.sleep(0.1)
    raise TimeoutError(f"topics without leaders after {TOPIC_READY_TIMEOUT_S}s: {names}")


def _has_leaders(topic: object, partitions: int) -> bool:
    found = getattr(topic, "partitions", None)
    if not found or getattr(topic, "error", None) is not None or len(found) != partitions:
        return False
    return all(partition.leader >= 0 for partition in found.values())


MakeTopics = Callable[..., list[str]]


@pytest.fixture
def make_topics(kafka_bootstrap: str) -> Iterator[MakeTopics]:
    """A factory: ``make_topics(*names, partitions=3, config=None)`` creates the topics,
    waits until each partition has a leader, returns the names; they are deleted after
    the test (best effort) so a reused broker does not collect them."""
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    created: list[str] = []

    def make(
        *names: str, partitions: int = 3, config: Mapping[str, str] | None = None
    ) -> list[str]:
        new_topics = [NewTopic(name, partitions, 1, config=dict(config or {})) for name in names]
        for future in admin.create_topics(new_topics, operation_timeout=20).values():
            future.result(timeout=TOPIC_READY_TIMEOUT_S)
        created.extend(names)
        wait_for_leaders(admin, list(names), partitions)
        return list(names)

    yield make
    if created:
        for future in admin.delete_topics(created, operation_timeout=20).values():
            future.exception(timeout=TOPIC_READY_TIMEOUT_S)


# ------------------------------------------------------------------ reading back


def end_offset(bootstrap: str, topic: str) -> int:
    """The end offset of a one-partition topic (partition 0)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused"})
    try:
        return int(consumer.get_watermark_offsets(TopicPartition(topic, 0), 10)[1])
    finally:
        consumer.close()


def messages_between(
    bootstrap: str, topic: str, ranges: Mapping[int, tuple[int, int]]
) -> list[Any]:
    """Exactly the messages in {partition: (from offset, to end offset)}; the end offsets taken
    after the producer's flush or acknowledgement, so every one of them is there to read."""
    wanted = {p: (lo, hi) for p, (lo, hi) in ranges.items() if hi > lo}
    if not wanted:
        return []
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(topic, p, lo) for p, (lo, _) in wanted.items()])
    messages: list[Any] = []
    expected = sum(hi - lo for lo, hi in wanted.values())
    try:
        while len(messages) < expected:
            # consume() returns early only once it has num_messages: ask for what is left.
            batch = consumer.consume(expected - len(messages), 10.0)
            assert batch, "records below the end offsets did not arrive"
            messages.extend(m for m in batch if m.error() is None)
    finally:
        consumer.close()
    return messages


def values_since(bootstrap: str, topic: str, start: int) -> list[bytes]:
    """The values of a one-partition topic from `start` to its end offset."""
    ranges = {0: (start, end_offset(bootstrap, topic))}
    return [m.value() for m in messages_between(bootstrap, topic, ranges)]
