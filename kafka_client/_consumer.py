"""Thin consumer adapter: lazy client, fixed config merge order, cooperative rebalancing,
offsets stored by the application only once its work is done."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any, Final, Protocol, cast

import confluent_kafka
from confluent_kafka import TopicPartition

from bouncewire.kafka_client._lag import LagMonitor, PartitionLag
from bouncewire.kafka_client._settings import KafkaSettings
from bouncewire.kafka_client.exceptions import BrokerUnavailableError, ConsumeError

log = logging.getLogger(__name__)

Partition = tuple[str, int]
METADATA_TIMEOUT_S = 10.0
UNRECOVERABLE_CODES = frozenset(
    {confluent_kafka.KafkaError._AUTHENTICATION, confluent_kafka.KafkaError._SSL}
)

# Auto-commit stays on but commits only what the application stored (enable.auto.offset.store
# off): librdkafka would otherwise store an offset *before* the work on it is done.
CONSUMER_DEFAULTS: Mapping[str, object] = {
    "partition.assignment.strategy": "cooperative-sticky",
    "enable.auto.commit": True,
    "auto.commit.interval.ms": 1000,
    "enable.auto.offset.store": False,
    "auto.offset.reset": "earliest",
    "max.poll.interval.ms": 300_000,
    "session.timeout.ms": 30_000,
    # Members learn of a rebalance from a heartbeat answer, and a cooperative rebalance takes
    # two rounds: with 3 s a process joining a busy one got its partitions ~6 s later (3 of 8
    # bench trials, 2 processes ran at 1.05x one). Heartbeats are tiny; 0.5 s makes it ~1.5 s.
    "heartbeat.interval.ms": 500,
}


# Group protocols: "classic" (the JoinGroup/SyncGroup protocol, every Kafka broker) and
# "consumer" (KIP-848, Kafka >= 4.0: the broker assigns partitions, and a member's first
# assignment comes with its first heartbeat instead of after group.initial.rebalance.delay.ms).
GROUP_PROTOCOLS: Final = ("classic", "consumer")
# Under KIP-848 these are the broker's (group.consumer.*): librdkafka refuses them client side.
CLASSIC_ONLY_KEYS: Final = frozenset(
    {"partition.assignment.strategy", "session.timeout.ms", "heartbeat.interval.ms"}
)


def consumer_defaults(group_protocol: object) -> dict[str, object]:
    """CONSUMER_DEFAULTS for a group protocol (the classic one unless "consumer")."""
    if group_protocol != "consumer":
        return dict(CONSUMER_DEFAULTS)
    return {k: v for k, v in CONSUMER_DEFAULTS.items() if k not in CLASSIC_ONLY_KEYS}


# How long a lag measurement may hold the loop for the group's committed offsets.
LAG_COMMITTED_TIMEOUT_S = 1.0


class RebalanceListener(Protocol):
    def on_assigned(self, partitions: list[Partition]) -> None: ...
    def on_revoked(self, partitions: list[Partition]) -> None: ...
    def on_lost(self, partitions: list[Partition]) -> None: ...


def _parts(tps: Iterable[TopicPartition]) -> list[Partition]:
    return [(tp.topic, tp.partition) for tp in tps]


def _offsets_or_none(tps: Iterable[TopicPartition]) -> dict[Partition, int | None]:
    # librdkafka answers "no such offset" with a negative logical offset (OFFSET_END, ...).
    return {(tp.topic, tp.partition): (tp.offset if tp.offset >= 0 else None) for tp in tps}


def _consume_error(what: str, exc: confluent_kafka.KafkaException) -> ConsumeError:
    err = exc.args[0] if exc.args else None
    if not isinstance(err, confluent_kafka.KafkaError):
        return ConsumeError(f"{what} failed")
    return ConsumeError(f"{what} failed: {err.name()}: {err.str()}", code=err.name())


def record_timestamp_ms(msg: Any) -> int | None:
    """A consumed record's timestamp in epoch ms, or None when the record carries none."""
    kind, value = msg.timestamp()
    return value if kind != confluent_kafka.TIMESTAMP_NOT_AVAILABLE and value >= 0 else None


def _is_good(msg: Any) -> bool:
    """True for a record; a per-message error is logged, or raised when fatal."""
    err = msg.error()
    if err is None:
        return True
    if err.fatal():
        raise ConsumeError(f"fatal consumer error {err.name()}", code=err.name())
    log.warning("consume error", extra={"code": err.name(), "detail": err.str()})
    return False


class KafkaConsumer:
    """The only place that builds a confluent_kafka.Consumer."""

    def __init__(
        self,
        settings: KafkaSettings,
        group_id: str,
        extra_config: Mapping[str, object] | None = None,
    ) -> None:
        self._settings = settings
        self._group_id = group_id
        self._extra = dict(extra_config or {})
        self._client: confluent_kafka.Consumer | None = None
        self._lag_monitor: LagMonitor | None = None
        self.fatal_error: str | None = None

    def _on_error(self, err: Any) -> None:
        # Bad credentials or an untrusted certificate never heal by retrying: fail fast.
        if err.fatal() or err.code() in UNRECOVERABLE_CODES:
            self.fatal_error = f"{err.name()}: {err.str()}"
        else:
            log.warning("kafka client error", extra={"code": err.name(), "detail": err.str()})

    @property
    def client(self) -> confluent_kafka.Consumer:
        if self._client is None:
            overrides = {**self._extra, "group.id": self._group_id, "error_cb": self._on_error}
            protocol = overrides.get("group.protocol", self._settings.extra.get("group.protocol"))
            self._client = confluent_kafka.Consumer(
                self._settings.merged(consumer_defaults(protocol), overrides)
            )
        return self._client

    def subscribe(self, topics: list[str], listener: RebalanceListener) -> None:
        def assigned(_c: Any, tps: list[TopicPartition]) -> None:
            listener.on_assigned(_parts(tps))

        def revoked(_c: Any, tps: list[TopicPartition]) -> None:
            listener.on_revoked(_parts(tps))

        def lost(_c: Any, tps: list[TopicPartition]) -> None:
            listener.on_lost(_parts(tps))

        self.client.subscribe(topics, on_assign=assigned, on_revoke=revoked, on_lost=lost)

    def consume(self, max_messages: int, timeout: float) -> list[Any]:
        """A batch of good messages; per-message errors are logged or raised when fatal."""
        messages = self.client.consume(num_messages=max_messages, timeout=timeout)
        # Errors are rare: look for one in a list comprehension (~0.07 µs a message) before
        # paying a call per message for the filter.
        if [msg for msg in messages if msg.error() is not None]:
            messages = [msg for msg in messages if _is_good(msg)]
        if self.fatal_error:
            raise ConsumeError(f"fatal consumer error {self.fatal_error}")
        return cast(list[Any], messages)

    def consume_scan(self, max_messages: int, timeout: float) -> tuple[list[Any], set[Partition]]:
        """A batch of good messages, and the partitions that reported end-of-partition (with
        enable.partition.eof on). Per-message errors are logged, or raised when fatal."""
        good: list[Any] = []
        reached_eof: set[Partition] = set()
        for msg in self.client.consume(num_messages=max_messages, timeout=timeout):
            err = msg.error()
            topic, partition = msg.topic(), msg.partition()
            if err is not None and err.code() == confluent_kafka.KafkaError._PARTITION_EOF:
                if topic is not None and partition is not None:
                    reached_eof.add((topic, partition))
            elif _is_good(msg):
                good.append(msg)
        if self.fatal_error:
            raise ConsumeError(f"fatal consumer error {self.fatal_error}")
        return good, reached_eof

    # --- manual assignment and offsets (bounded scans) -----------------------------------

    def partitions_of(
        self, topics: Iterable[str], timeout: float = METADATA_TIMEOUT_S
    ) -> list[Partition]:
        """Every partition of `topics`, in order; ConsumeError when a topic does not exist."""
        try:
            metadata = self.client.list_topics(timeout=timeout)
        except confluent_kafka.KafkaException as exc:
            raise BrokerUnavailableError(f"no broker answered within {timeout:.0f}s") from exc
        found: list[Partition] = []
        for topic in topics:
            info = metadata.topics.get(topic)
            if info is None or info.error is not None:
                raise ConsumeError(f"topic {topic} does not exist")
            found.extend((topic, p) for p in sorted(info.partitions))
        return found

    def watermarks(
        self, partitions: Iterable[Partition], timeout: float = METADATA_TIMEOUT_S
    ) -> dict[Partition, tuple[int, int]]:
        """(low, high) watermark per partition, asked of the broker."""
        marks: dict[Partition, tuple[int, int]] = {}
        try:
            for t, p in partitions:
                answer = self.client.get_watermark_offsets(TopicPartition(t, p), timeout=timeout)
                if answer is None:  # some librdkafka builds answer a timeout with None
                    raise ConsumeError(f"watermark query for {t} timed out")
                marks[(t, p)] = (answer[0], answer[1])
        except confluent_kafka.KafkaException as exc:
            raise _consume_error("watermark query", exc) from exc
        return marks

    def offsets_for_time(
        self,
        partitions: Iterable[Partition],
        timestamp_ms: int,
        timeout: float = METADATA_TIMEOUT_S,
    ) -> dict[Partition, int | None]:
        """Earliest offset whose record timestamp is >= timestamp_ms; None when there is none."""
        asked = [TopicPartition(t, p, max(timestamp_ms, 0)) for t, p in partitions]
        try:
            return _offsets_or_none(self.client.offsets_for_times(asked, timeout=timeout))
        except confluent_kafka.KafkaException as exc:
            raise _consume_error("offset-for-time query", exc) from exc

    def committed_offsets(
        self, partitions: Iterable[Partition], timeout: float = METADATA_TIMEOUT_S
    ) -> dict[Partition, int | None]:
        """The group's committed offset per partition (None when it has committed none)."""
        asked = [TopicPartition(t, p) for t, p in partitions]
        try:
            return _offsets_or_none(self.client.committed(asked, timeout=timeout))
        except confluent_kafka.KafkaException as exc:
            raise _consume_error("committed-offset query", exc) from exc

    def assign_at(self, offsets: Mapping[Partition, int]) -> None:
        """Manually assign exactly these partitions, each read from its given offset."""
        self.client.assign([TopicPartition(t, p, o) for (t, p), o in offsets.items()])

    def commit_offsets(self, offsets: Mapping[Partition, int], *, asynchronous: bool) -> None:
        """Commit these next-offsets to the group; ConsumeError when the commit fails."""
        if not offsets:
            return
        tps = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        try:
            if asynchronous:
                self.client.commit(offsets=tps, asynchronous=True)
            else:
                self.client.commit(offsets=tps, asynchronous=False)
        except confluent_kafka.KafkaException as exc:
            raise _consume_error("commit", exc) from exc

    # --- group consumption -----------------------------------------------------------------

    def store(self, offsets: Mapping[Partition, int], *, commit: bool = True) -> None:
        """Store next-offsets and, with `commit`, send them to the group right away.

        The asynchronous commit keeps the window between "delivered" and "committed" (the
        duplicates a crash can cause) to one round trip instead of auto.commit.interval.ms;
        the auto-committer stays on as a safety net.
        """
        if not offsets:
            return
        tps = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        try:
            self.client.store_offsets(offsets=tps)
            if commit:
                self.client.commit(asynchronous=True)
        except confluent_kafka.KafkaException as exc:
            # Storing for a partition no longer assigned fails; its work will be redone.
            log.warning("offset store failed", extra={"detail": str(exc.args[0])})

    def commit_now(self, offsets: Mapping[Partition, int] | None = None) -> None:
        """Synchronous commit (revoke, shutdown): stored offsets, or `offsets` when given."""
        try:
            if offsets:
                tps = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
                self.client.commit(offsets=tps, asynchronous=False)
            else:
                self.client.commit(asynchronous=False)
        except confluent_kafka.KafkaException as exc:
            err = exc.args[0]
            if err.code() != confluent_kafka.KafkaError._NO_OFFSET:
                log.warning("commit failed", extra={"code": err.name(), "detail": err.str()})

    def pause(self, partitions: Iterable[Partition]) -> None:
        tps = [TopicPartition(t, p) for t, p in partitions]
        if tps:
            self.client.pause(tps)

    def resume(self, partitions: Iterable[Partition]) -> None:
        tps = [TopicPartition(t, p) for t, p in partitions]
        if tps:
            self.client.resume(tps)

    @property
    def exhausted(self) -> bool:
        """A group subscription never runs dry (bounded sources, like replay, do)."""
        return False

    def lag(self) -> dict[Partition, PartitionLag]:
        """Committed lag and read-ahead per assigned partition; {} when the cluster is slow to
        answer (see LagMonitor). Takes ~2-5 ms here; at most LAG_COMMITTED_TIMEOUT_S for the
        group's committed offsets and LagMonitor's ANSWER_WAIT_S for the log ends."""
        if self._lag_monitor is None:
            self._lag_monitor = LagMonitor(self._settings)
        assigned = self.client.assignment()
        if not assigned:
            return self._lag_monitor.exchange({}, {})
        positions = {(tp.topic, tp.partition): tp.offset for tp in self.client.position(assigned)}
        committed = self.client.committed(assigned, timeout=LAG_COMMITTED_TIMEOUT_S)
        # A partition the coordinator did not answer for sits this round out (its gauges keep
        # their values): its offset reads as "never committed", which is not what happened.
        commits = {(tp.topic, tp.partition): tp.offset for tp in committed if tp.error is None}
        unanswered = [tp for tp in committed if tp.error is not None]
        if unanswered:
            log.warning("committed offsets unanswered", extra={"detail": str(unanswered[0].error)})
        return self._lag_monitor.exchange(positions, commits)

    def close(self) -> None:
        self._lag_monitor = None
        if self._client is not None:
            self._client.close()
            self._client = None
