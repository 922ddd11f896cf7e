"""Committed lag of a consumer group's partitions, as kafka-consumer-groups.sh shows it, measured
with a short, bounded pause of the consumer loop.

The log ends: asked by an admin client of its own. The consumer's connections to the partition
leaders are busy with fetch long-polls and a broker answers one request per connection at a
time, so a ListOffsets sent by the consumer waited up to fetch.wait.max.ms (measured: 500 ms).
Its cached end offsets are no substitute: they stop moving while a partition is paused, which
is exactly when lag matters (a callback outage). Its answers take ~1-5 ms here; the loop
waits for them at most ANSWER_WAIT_S, then goes on without (the gauges keep their values).

The committed offsets: given by the consumer (`Consumer.committed`, on its group coordinator
connection, which no fetch holds up: ~2 ms here). Not the admin's ListConsumerGroupOffsets:
librdkafka can crash the process on a NOT_COORDINATOR answer to an admin OffsetFetch
(confluent-kafka-python #1982, confluent-kafka-javascript #374; seen here as an intermittent
SIGSEGV against a fresh broker).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import Future, wait
from dataclasses import dataclass
from typing import Any, NamedTuple

import confluent_kafka
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]

from bouncewire.kafka_client._settings import KafkaSettings

Partition = tuple[str, int]
REQUEST_TIMEOUT_S = 10.0
ANSWER_WAIT_S = 0.1
LATEST: Any = OffsetSpec.latest()  # type: ignore[no-untyped-call]
EARLIEST: Any = OffsetSpec.earliest()  # type: ignore[no-untyped-call]


class PartitionLag(NamedTuple):
    """One partition's lag as SREs read it, and the part of it the consumer holds."""

    committed: int  # high watermark − the group's committed offset (kafka-consumer-groups.sh)
    read_ahead: int  # position − committed offset: read by the application, not yet committed


@dataclass(frozen=True)
class _Asked:
    """One round of questions, log ends and starts, with the consumer's positions and the
    group's committed offsets when they were asked (all figures of one moment)."""

    positions: Mapping[Partition, int]
    commits: Mapping[Partition, int]  # negative: the group never committed there; absent:
    # the coordinator did not say
    ends: Mapping[Any, Future[Any]]
    starts: Mapping[Any, Future[Any]]

    def futures(self) -> list[Future[Any]]:
        return [*self.ends.values(), *self.starts.values()]

    def done(self) -> bool:
        return all(f.done() for f in self.futures())

    def answers(self) -> dict[Partition, PartitionLag]:
        """Lag per partition; {} when any question failed (the gauges keep their values)."""
        if any(f.exception() is not None for f in self.futures()):
            return {}
        ends, starts = _offsets(self.ends), _offsets(self.starts)
        lags: dict[Partition, PartitionLag] = {}
        for key, end in ends.items():
            if key not in self.commits:  # the coordinator did not answer for it
                continue
            done = self.commits[key]
            # A group that never committed starts at the log start (auto.offset.reset earliest).
            done = done if done >= 0 else starts.get(key, -1)
            if end < 0 or done < 0:
                continue
            position = self.positions.get(key, -1)
            read_ahead = position - done if position >= 0 else 0
            lags[key] = PartitionLag(max(end - done, 0), max(read_ahead, 0))
        return lags


def _offsets(futures: Mapping[Any, Future[Any]]) -> dict[Partition, int]:
    return {(tp.topic, tp.partition): int(f.result().offset) for tp, f in futures.items()}


class LagMonitor:
    """Asks the cluster for the log ends of a group's partitions, waiting a bounded time."""

    def __init__(self, settings: KafkaSettings) -> None:
        self._settings = settings
        self._admin: AdminClient | None = None
        self._asked: _Asked | None = None

    def exchange(
        self, positions: Mapping[Partition, int], commits: Mapping[Partition, int]
    ) -> dict[Partition, PartitionLag]:
        """Lag of the partitions of `positions` (the consumer's assignment), or {} when the
        cluster did not answer within ANSWER_WAIT_S; while a round is unanswered no other is
        sent (a slow cluster gets no pile of requests)."""
        if self._asked is not None and not self._asked.done():
            return {}
        self._asked = None
        if not positions:
            return {}
        asked = self._asked = self._ask(positions, commits)
        wait(asked.futures(), timeout=ANSWER_WAIT_S)
        return asked.answers() if asked.done() else {}

    def _ask(self, positions: Mapping[Partition, int], commits: Mapping[Partition, int]) -> _Asked:
        if self._admin is None:
            self._admin = AdminClient(self._settings.merged({}, {}))
        tps = [confluent_kafka.TopicPartition(t, p) for t, p in positions]
        return _Asked(
            positions=dict(positions),
            commits=dict(commits),
            ends=self._list(tps, LATEST),
            starts=self._list(tps, EARLIEST),
        )

    def _list(self, tps: Iterable[Any], spec: Any) -> dict[Any, Future[Any]]:
        assert self._admin is not None
        asked = {tp: spec for tp in tps}
        return dict(self._admin.list_offsets(asked, request_timeout=REQUEST_TIMEOUT_S))
