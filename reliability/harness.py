"""What the scenarios share: brokers they may hurt, topics, acknowledged publishing, real
`bouncewire consume` processes (RSS sampled, metrics scraped), the receiver's view, and the
`Flow` that ties one scenario's topics, group, publisher and receiver together."""

from __future__ import annotations

import functools
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from prometheus_client.parser import text_string_to_metric_families

from bouncewire.kafka_client import KafkaProducer, KafkaSettings, TopicNames, create_topics
from bouncewire.producers import parse_send_result, parse_unsubscribe, record_key
from bouncewire.receiver import CallbackReceiver, FaultPlan
from bouncewire.schemas import Codec, DecodeError, SchemaStore
from reliability.model import Scenario
from reliability.support import free_port, tree_rss_kb, wait_until

REPO_ROOT = Path(__file__).resolve().parent.parent
KAFKA_SH = REPO_ROOT / "deploy" / "kafka" / "kafka.sh"
CLUSTER_SH = REPO_ROOT / "deploy" / "kafka" / "cluster.sh"
NOW_S = int(time.time())
# Fast failure detection for the group: a SIGKILLed member is noticed within 6 s (the
# broker's minimum session timeout), and max.poll.interval.ms is short enough that an
# outage of minutes would evict a consumer that stopped polling.
TIGHT_GROUP = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000,
               "max.poll.interval.ms": 10000}
OFFSETS_BEHIND = "offsets did not reach the end of the topic"


@dataclass
class Context:
    """What every scenario gets: the shared broker, the size, a place for logs."""

    bootstrap: str
    short: bool
    workdir: Path
    say: Callable[[str], None] = field(default=lambda text: print(text, file=sys.stderr))

    def pick(self, short: int, full: int) -> int:
        return short if self.short else full


def timed(run: Callable[[Context], Scenario]) -> Callable[[Context], Scenario]:
    """A scenario's `run` whose result carries the seconds it took."""

    @functools.wraps(run)
    def timed_run(ctx: Context) -> Scenario:
        started = time.monotonic()
        result = run(ctx)
        result.seconds = time.monotonic() - started
        return result

    return timed_run


def free_port_range(count: int) -> int:
    """The first of `count` adjacent free loopback ports, below the ephemeral range.

    Ports the kernel hands out for outgoing connections (32768 and up on Linux) can be
    taken by any client socket between this check and the broker's bind; these cannot.
    """
    rng = random.Random()  # noqa: S311 -- spreading ports, not security
    for _ in range(200):
        first = rng.randrange(20000, 32000 - count)
        if all(_port_free(first + i) for i in range(count)):
            return first
    raise RuntimeError(f"no {count} adjacent free loopback ports")


def _port_free(port: int) -> bool:
    with closing(socket.socket()) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def unique(prefix: str) -> str:
    return f"rel-{prefix}-{uuid.uuid4().hex[:8]}"


# ------------------------------------------------------------------ brokers the scenario owns


def _script(script: Path, command: Sequence[str], env: Mapping[str, str],
            timeout: float = 300) -> str:
    result = subprocess.run(  # noqa: S603 -- the checkout's own scripts, fixed arguments
        ["/bin/bash", str(script), *command], env={**os.environ, **env}, capture_output=True,
        text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{script.name} {' '.join(command)} failed: {result.stderr[-800:]}")
    return result.stdout.strip()


class LocalBroker:
    """A single-node broker of deploy/kafka/kafka.sh on its own ports, wiped at exit."""

    def __init__(self) -> None:
        self.port = free_port_range(2)
        self.bootstrap = f"127.0.0.1:{self.port}"
        self._env = {"KAFKA_PORT": str(self.port)}

    def up(self) -> None:
        _script(KAFKA_SH, ["up"], self._env)

    def kill(self) -> None:
        """SIGKILL: no controlled shutdown, no final flush."""
        pid_file = REPO_ROOT / ".kafka" / str(self.port) / "kafka.pid"
        os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)

    def reset(self) -> None:
        _script(KAFKA_SH, ["reset"], self._env, timeout=60)

    def __enter__(self) -> LocalBroker:
        try:
            self.up()
        except BaseException:
            self.reset()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.reset()


class LocalCluster:
    """Three KRaft nodes of deploy/kafka/cluster.sh (RF 3, min ISR 2), wiped at exit."""

    def __init__(self) -> None:
        self.base = free_port_range(6)
        self._env = {"CLUSTER_PORT": str(self.base)}
        self.bootstrap = ",".join(f"127.0.0.1:{self.base + i}" for i in range(3))

    def kill(self, node: int) -> None:
        _script(CLUSTER_SH, ["kill", str(node)], self._env)

    def start(self, node: int) -> None:
        _script(CLUSTER_SH, ["start", str(node)], self._env)

    def leader(self, topic: str, partition: int) -> int:
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        meta = admin.list_topics(topic, timeout=10)
        return int(meta.topics[topic].partitions[partition].leader)

    def __enter__(self) -> LocalCluster:
        try:
            _script(CLUSTER_SH, ["up"], self._env)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        _script(CLUSTER_SH, ["reset"], self._env, timeout=120)


# ------------------------------------------------------------------ topics and offsets


def make_topics(bootstrap: str, prefix: str, *, partitions: int = 3, replication: int = 1,
                dlq: bool = True, config: Mapping[str, str] | None = None) -> TopicNames:
    topics = TopicNames(unique(f"{prefix}-sr"), unique(f"{prefix}-un"), unique(f"{prefix}-dlq"))
    names = [topics.send_results, topics.unsubscribes] + ([topics.dlq] if dlq else [])
    settings = KafkaSettings(bootstrap_servers=bootstrap)
    create_topics(settings, names, partitions=partitions, replication_factor=replication,
                  config=config)
    wait_for_leaders(bootstrap, names)
    return topics


def wait_for_leaders(bootstrap: str, names: Sequence[str], timeout: float = 30) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})

    def ready() -> bool:
        topics = admin.list_topics(timeout=5).topics
        return all(name in topics and topics[name].error is None and topics[name].partitions
                   and all(p.leader >= 0 for p in topics[name].partitions.values())
                   for name in names)

    if not wait_until(ready, timeout, 0.2):
        raise TimeoutError(f"topics without leaders after {timeout}s")


def topic_exists(bootstrap: str, name: str) -> bool:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    return name in admin.list_topics(timeout=10).topics


def committed_offsets(bootstrap: str, group: str, topic: str, partitions: int = 3) -> list[int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        tps = consumer.committed([TopicPartition(topic, p) for p in range(partitions)],
                                 timeout=10)
        return [tp.offset for tp in tps]
    finally:
        consumer.close()


def committed_total(bootstrap: str, group: str, topic: str, partitions: int = 3) -> int:
    """Records committed over all partitions (a partition without commits counts 0)."""
    return sum(max(o, 0) for o in committed_offsets(bootstrap, group, topic, partitions))


def end_offsets(bootstrap: str, topic: str, partitions: int = 3) -> list[int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("watermarks")})
    try:
        return [_high_watermark(consumer, TopicPartition(topic, p)) for p in range(partitions)]
    finally:
        consumer.close()


# A topic created a moment ago may not have elected its leaders yet (seen on a loaded machine:
# NOT_LEADER_FOR_PARTITION): retriable by Kafka's own account, so ask again, for a bounded time.
_WATERMARK_DEADLINE_S = 30.0
_NO_LEADER_YET = frozenset({
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
})


def _high_watermark(consumer: Consumer, partition: TopicPartition) -> int:
    deadline = time.monotonic() + _WATERMARK_DEADLINE_S
    while True:
        try:
            return int(consumer.get_watermark_offsets(partition, timeout=10)[1])
        except KafkaException as exc:
            if exc.args[0].code() not in _NO_LEADER_YET or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def all_committed(bootstrap: str, group: str, topic: str, partitions: int = 3) -> bool:
    try:
        committed = committed_offsets(bootstrap, group, topic, partitions)
        # An empty partition has no commit (a negative sentinel) and an end offset of 0.
        return [max(c, 0) for c in committed] == end_offsets(bootstrap, topic, partitions)
    except Exception:  # a broker moment of unavailability: just not yet
        return False


def read_topic(bootstrap: str, topic: str, expected: int, timeout: float = 30) -> list[Any]:
    """Every record of `topic`, waiting until at least `expected` arrived (or timeout)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("reader"),
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    records: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and (len(records) < expected or expected == 0):
            records.extend(m for m in consumer.consume(500, 0.5) if m.error() is None)
        records.extend(m for m in consumer.consume(500, 1.0) if m.error() is None)
    finally:
        consumer.close()
    return records


# ------------------------------------------------------------------ events and publishing


def hard_bounce(email: str) -> dict[str, Any]:
    fields = {"email": email, "smtp_code": 550, "enhanced_code": "5.1.1", "ts": NOW_S}
    return parse_send_result(fields, now_ms=NOW_S * 1000)


def no_callback(email: str) -> dict[str, Any]:
    """A delivered send result: counted, committed, no callback."""
    fields = {"email": email, "smtp_code": 250, "enhanced_code": "2.0.0", "ts": NOW_S}
    return parse_send_result(fields, now_ms=NOW_S * 1000)


def unsubscribe(email: str) -> dict[str, Any]:
    return parse_unsubscribe({"email": email, "ts": NOW_S}, now_ms=NOW_S * 1000)


def emails(prefix: str, count: int, start: int = 0) -> list[str]:
    return [f"{prefix}.{i}@example.com" for i in range(start, start + count)]


_QUIET = logging.getLogger("reliability.librdkafka")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


@dataclass(frozen=True)
class Acked:
    email: str | None
    partition: int
    offset: int


class AckedPublisher:
    """Idempotent producer (acks=all) that remembers exactly which records were acknowledged.

    Only acknowledged records count as published: a record the producer gave up on may or
    may not be in the log, and the promise is about the acknowledged ones.
    """

    def __init__(self, bootstrap: str, topics: TopicNames, *,
                 message_timeout_ms: int = 30_000) -> None:
        # librdkafka's own log lines (reconnect attempts while a broker is down) would
        # drown the runner's output; the delivery reports carry what matters.
        self._producer = KafkaProducer(KafkaSettings(bootstrap_servers=bootstrap),
                                       {"message.timeout.ms": message_timeout_ms,
                                        "logger": _QUIET},
                                       buffer_wait_s=600)
        self._codec = Codec(SchemaStore.load())
        self._topics = {"send_result": topics.send_results, "unsubscribe": topics.unsubscribes}
        self.acked: list[Acked] = []
        self.failed = 0

    def _report(self, email: str | None) -> Callable[[Any, Any], None]:
        def on_delivery(err: Any, msg: Any) -> None:
            if err is None:
                self.acked.append(Acked(email, msg.partition(), msg.offset()))
            else:
                self.failed += 1
        return on_delivery

    def publish(self, kind: str, records: Sequence[Mapping[str, Any]],
                key: bytes | None = None) -> None:
        """Keyed by address (as the product does) unless `key` pins one partition."""
        for record in records:
            self._producer.produce(
                self._topics[kind], self._codec.encode(kind, dict(record)),
                key=key or record_key(record["email"]), timestamp_ms=record["event_time"],
                on_delivery=self._report(record["email"]))

    def publish_raw(self, topic: str, value: bytes, key: bytes) -> None:
        self._producer.produce(topic, value, key=key, on_delivery=self._report(None))

    def flush(self, timeout: float = 60) -> int:
        return self._producer.flush(timeout)

    @property
    def acked_emails(self) -> set[str]:
        return {a.email for a in self.acked if a.email is not None}


@contextmanager
def paced_publisher(publisher: AckedPublisher, kind: str, addresses: Sequence[str],
                    rate: float, make: Callable[[str], dict[str, Any]] = hard_bounce,
                    ) -> Iterator[threading.Event]:
    """Publish `addresses` at `rate` per second in a thread; the event is set when done."""
    done = threading.Event()

    def run() -> None:
        chunk = max(int(rate / 10), 1)
        started = time.monotonic()
        for i in range(0, len(addresses), chunk):
            publisher.publish(kind, [make(a) for a in addresses[i:i + chunk]])
            publisher._producer.poll(0)
            time.sleep(max(started + (i + chunk) / rate - time.monotonic(), 0))
        publisher.flush(180)
        done.set()

    thread = threading.Thread(target=run, name="paced-publisher", daemon=True)
    thread.start()
    try:
        yield done
    finally:
        thread.join(240)


# ------------------------------------------------------------------ consumer processes


class ConsumerProcess:
    """A real `bouncewire consume` (through reliability.tight_consume for fast failure
    detection), its stderr in a log file, its RSS sampled while it runs."""

    def __init__(self, ctx: Context, bootstrap: str, topics: TopicNames, group: str,
                 url: str, *extra: str, name: str = "consumer") -> None:
        self.metrics_port = free_port()
        self.log_path = ctx.workdir / f"{group}-{name}-{uuid.uuid4().hex[:6]}.log"
        argv = [sys.executable, "-m", "reliability.tight_consume", "consume",
                "--bootstrap-servers", bootstrap, "--send-results-topic", topics.send_results,
                "--unsubscribes-topic", topics.unsubscribes, "--dlq-topic", topics.dlq,
                "--group-id", group, "--bounce-callback-url", url,
                "--unsubscribe-callback-url", url, "--metrics-port", str(self.metrics_port),
                "--linger-ms", "200", "--request-timeout", "2", "--backoff-initial", "0.05",
                "--backoff-max", "0.5", *extra]
        env = {k: v for k, v in os.environ.items() if not k.startswith("BOUNCEWIRE_")}
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(argv, env=env, cwd=REPO_ROOT,  # noqa: S603
                                     stdout=subprocess.DEVNULL, stderr=self._log)
        self.peak_rss_kb = 0
        self._sampler = threading.Thread(target=self._sample_rss, daemon=True)
        self._sampler.start()

    def _sample_rss(self) -> None:
        """Peak VmRSS of the consumer and its delivery child together."""
        while self.proc.poll() is None:
            kb = tree_rss_kb(self.proc.pid)
            if kb is None:
                return
            self.peak_rss_kb = max(self.peak_rss_kb, kb)
            time.sleep(0.25)

    @property
    def peak_rss_mb(self) -> float:
        return round(self.peak_rss_kb / 1024, 1)

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 -- loopback
                text = response.read().decode()
        except OSError:
            return {}
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}

    def metric(self, name: str, **labels: str) -> float:
        return self.metrics().get((name, tuple(sorted(labels.items()))), 0.0)

    def ready(self) -> bool:
        url = f"http://127.0.0.1:{self.metrics_port}/readyz"
        try:
            with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 -- loopback
                return bool(response.status == 200)
        except OSError:
            return False

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self._log.close()

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM, then the exit code (the drain must finish within `timeout`)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()

    def stop(self) -> None:
        """Teardown: whatever state it is in, it is gone afterwards."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(30)
        self._log.close()

    def stderr_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


# ------------------------------------------------------------------ the receiver's view


def delivered_counts(receiver: CallbackReceiver) -> Counter[str]:
    """How many times each address was accepted by the receiver."""
    return Counter(e.email for post in receiver.received for e in post.processed_events)


def unique_delivered(receiver: CallbackReceiver) -> int:
    return int(receiver.stats()["unique_events"])


def posts_reach(receiver: CallbackReceiver, posts: int) -> Callable[[], bool]:
    return lambda: len(receiver.received) >= posts


def unique_reach(receiver: CallbackReceiver, events: int) -> Callable[[], bool]:
    return lambda: unique_delivered(receiver) >= events


def dead_letter_emails(bootstrap: str, topic: str, expected: int, timeout: float = 30,
                       ) -> tuple[int, set[str]]:
    """(records on the dead-letter topic, addresses of those that decode)."""
    codec = Codec(SchemaStore.load())
    records = read_topic(bootstrap, topic, expected, timeout)
    found: set[str] = set()
    for record in records:
        try:
            found.add(codec.decode(record.value() or b"").record["email"])
        except DecodeError:
            continue
    return len(records), found


# ------------------------------------------------------------------ one scenario's pipeline


@dataclass
class Flow:
    """One scenario's pipeline on one broker: fresh topics, a consumer group, an acknowledging
    publisher, and the receiver the group's members post their callbacks to."""

    ctx: Context
    bootstrap: str
    topics: TopicNames
    group: str
    publisher: AckedPublisher
    receiver: CallbackReceiver
    partitions: int = 3

    def member(self, *extra: str, batch: int | None = None,
               name: str = "consumer") -> ConsumerProcess:
        """A new member of the group; `batch` sets --max-batch-events."""
        batch_args = ("--max-batch-events", str(batch)) if batch is not None else ()
        return ConsumerProcess(self.ctx, self.bootstrap, self.topics, self.group,
                               self.receiver.url, *batch_args, *extra, name=name)

    @contextmanager
    def running(self, *extra: str, batch: int | None = None,
                name: str = "consumer") -> Iterator[ConsumerProcess]:
        """A member for the block's duration, gone afterwards whatever state it is in."""
        member = self.member(*extra, batch=batch, name=name)
        try:
            yield member
        finally:
            member.stop()

    def paced(self, addresses: Sequence[str], rate: float,
              ) -> AbstractContextManager[threading.Event]:
        """Hard bounces for `addresses` at `rate` per second (see `paced_publisher`)."""
        return paced_publisher(self.publisher, "send_result", addresses, rate)

    def publish_now(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Send results, all acknowledged (or given up on) before this returns."""
        self.publisher.publish("send_result", records)
        self.publisher.flush()

    def delivered(self) -> int:
        return unique_delivered(self.receiver)

    def wait_delivered(self, events: int, timeout: float, interval: float = 0.1) -> bool:
        return wait_until(unique_reach(self.receiver, events), timeout, interval)

    def wait_committed(self, timeout: float = 60, interval: float = 0.5) -> bool:
        """True once the group's offsets reached the end of every send-results partition."""
        return wait_until(lambda: all_committed(self.bootstrap, self.group,
                                                self.topics.send_results, self.partitions),
                          timeout, interval)

    def settle(self, events: int, timeout: float, interval: float = 0.5) -> bool:
        """Wait for `events` unique deliveries, then for the commits; True if committed."""
        self.wait_delivered(events, timeout, interval)
        return self.wait_committed()

    def counts(self) -> Counter[str]:
        return delivered_counts(self.receiver)


@contextmanager
def open_flow(ctx: Context, prefix: str, *, bootstrap: str | None = None, partitions: int = 3,
              replication: int = 1, dlq: bool = True, config: Mapping[str, str] | None = None,
              message_timeout_ms: int = 30_000, faults: FaultPlan | None = None,
              ) -> Iterator[Flow]:
    """Topics and a group named after `prefix` on `bootstrap` (default: the shared broker), a
    publisher, and a receiver answering with `faults`, stopped when the block ends."""
    servers = bootstrap or ctx.bootstrap
    topics = make_topics(servers, prefix, partitions=partitions, replication=replication,
                         dlq=dlq, config=config)
    publisher = AckedPublisher(servers, topics, message_timeout_ms=message_timeout_ms)
    with CallbackReceiver(faults=faults) as receiver:
        yield Flow(ctx, servers, topics, unique(prefix), publisher, receiver, partitions)
