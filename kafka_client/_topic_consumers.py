"""One consumer-group member per source topic inside one process: see PerTopicConsumer."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, Protocol

from bouncewire.kafka_client._consumer import (
    METADATA_TIMEOUT_S,
    KafkaConsumer,
    Partition,
    RebalanceListener,
)
from bouncewire.kafka_client._lag import PartitionLag
from bouncewire.kafka_client._settings import KafkaSettings
from bouncewire.kafka_client.exceptions import ConsumeError


class TopicMember(Protocol):
    """What PerTopicConsumer needs of each per-topic member; KafkaConsumer is one."""

    fatal_error: str | None

    def subscribe(self, topics: list[str], listener: RebalanceListener) -> None: ...
    def consume(self, max_messages: int, timeout: float) -> list[Any]: ...
    def store(self, offsets: Mapping[Partition, int], *, commit: bool = True) -> None: ...
    def commit_now(self, offsets: Mapping[Partition, int] | None = None) -> None: ...
    def committed_offsets(
        self, partitions: Iterable[Partition], timeout: float = METADATA_TIMEOUT_S
    ) -> dict[Partition, int | None]: ...
    def pause(self, partitions: Iterable[Partition]) -> None: ...
    def resume(self, partitions: Iterable[Partition]) -> None: ...
    def lag(self) -> dict[Partition, PartitionLag]: ...
    def close(self) -> None: ...


MemberFactory = Callable[[KafkaSettings, str, Mapping[str, object] | None], TopicMember]

# The longest the other topics' members wait for the first member's first assignment before
# they join anyway (a broker that never answers must not keep unsubscribes unread for good).
FOLLOWERS_JOIN_AFTER_S: Final = 15.0


def by_topic(partitions: Iterable[Partition]) -> dict[str, list[Partition]]:
    grouped: dict[str, list[Partition]] = {}
    for topic, partition in partitions:
        grouped.setdefault(topic, []).append((topic, partition))
    return grouped


def offsets_by_topic(offsets: Mapping[Partition, int]) -> dict[str, dict[Partition, int]]:
    grouped: dict[str, dict[Partition, int]] = {}
    for (topic, partition), offset in offsets.items():
        grouped.setdefault(topic, {})[(topic, partition)] = offset
    return grouped


class PerTopicConsumer:
    """A group consumer made of one KafkaConsumer per subscribed topic, all in one group.id.

    Why: librdkafka's cooperative-sticky assignor balances the *number* of partitions per
    member, not per topic. With one member subscribed to both source topics, 2 processes and
    2 topics x 2 partitions, 3 of 3 benchmark trials gave one process both send-results
    partitions and the other both (mostly idle) unsubscribes partitions: 2 processes ran at
    0.94x one. (It happens when a process joins a running one, as in scaling out: 5 of 5
    trials; the sticky assignor moves two partitions and takes both of one topic.) With one
    member per topic, each topic's partitions are balanced among the members subscribed to
    that topic (the classic group protocol allows members with different subscriptions): 5 of
    5 trials gave each process one partition of each topic. Rebalances stay cooperative.

    Polling: consume() first takes what every member has ready without waiting (the member
    asked first rotates, so a topic that fills whole batches cannot keep another member from
    being polled, and its rebalance callbacks served), then waits what is left of the timeout
    on the member that delivered last. An idle topic thus never adds its own wait to the busy
    one's: the whole call waits at most `timeout`, as one consumer does.

    Offsets, pause/resume and committed-offset queries go to the member owning the topic; the
    same RebalanceListener hears every member (it gets partition lists, whichever topic).
    With a single topic every call goes straight to its one member.

    Joining: the first topic's member joins at once, the others once it has had its first
    assignment (or after FOLLOWERS_JOIN_AFTER_S). Why: an empty group waits
    group.initial.rebalance.delay.ms (Kafka's default 3 s) for more members, and waits that
    long again for each member that joins meanwhile: two members joining together got their
    first records after 6.1 s, one after 3.2 s (bench broker). A member joining a running
    group costs no such delay, and with cooperative rebalancing the first keeps consuming.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        group_id: str,
        extra_config: Mapping[str, object] | None = None,
        *,
        member_factory: MemberFactory = KafkaConsumer,
    ) -> None:
        self._settings = settings
        self._group_id = group_id
        self._extra = dict(extra_config or {})
        self._new_member = member_factory
        self._members: dict[str, TopicMember] = {}
        self._polled_first = 0
        self._waited_on = 0
        # Topics whose members have not subscribed yet (every topic but the first, or none),
        # the listener to give them, and when they join anyway.
        self._followers: list[str] = []
        self._listener: RebalanceListener | None = None
        self._followers_deadline = 0.0
        self._first_assigned = False

    @property
    def topics(self) -> list[str]:
        return list(self._members)

    @property
    def fatal_error(self) -> str | None:
        return next((m.fatal_error for m in self._members.values() if m.fatal_error), None)

    @property
    def exhausted(self) -> bool:
        """A group subscription never runs dry."""
        return False

    def subscribe(self, topics: list[str], listener: RebalanceListener) -> None:
        """One member per topic (members are lazy: they connect on first use); the first
        joins now, the others after its first assignment (see the class docstring)."""
        if self._members:
            raise ConsumeError("already subscribed")
        unique = list(dict.fromkeys(topics))
        if not unique:
            return
        self._listener = listener
        for topic in unique:
            self._members[topic] = self._new_member(self._settings, self._group_id, self._extra)
        self._followers = unique[1:]
        self._followers_deadline = time.monotonic() + FOLLOWERS_JOIN_AFTER_S
        first_listener = _FirstAssignment(listener, self) if self._followers else listener
        self._members[unique[0]].subscribe([unique[0]], first_listener)

    def note_first_assignment(self) -> None:
        self._first_assigned = True

    def _subscribe_followers(self) -> None:
        if not (self._first_assigned or time.monotonic() >= self._followers_deadline):
            return
        followers, self._followers = self._followers, []
        assert self._listener is not None
        for topic in followers:
            self._members[topic].subscribe([topic], self._listener)

    def _joined(self) -> list[TopicMember]:
        """The members subscribed so far."""
        if self._followers:
            self._subscribe_followers()
        members = list(self._members.values())  # in topic order: the first topic's first
        return members[:1] if self._followers else members

    def consume(self, max_messages: int, timeout: float) -> list[Any]:
        """Up to max_messages records from all topics, waiting at most `timeout` in all."""
        members = self._joined()
        if len(members) == 1:
            return members[0].consume(max_messages, timeout)
        if not members:
            raise ConsumeError("consume() before subscribe()")
        got = self._take_ready(members, max_messages)
        if len(got) < max_messages and timeout > 0:
            got.extend(members[self._waited_on].consume(max_messages - len(got), timeout))
        return got

    def _take_ready(self, members: list[TopicMember], max_messages: int) -> list[Any]:
        got: list[Any] = []
        first = self._polled_first
        self._polled_first = (first + 1) % len(members)
        for step in range(len(members)):
            if len(got) >= max_messages:
                break
            index = (first + step) % len(members)
            ready = members[index].consume(max_messages - len(got), 0)
            if ready:
                self._waited_on = index
                got.extend(ready)
        return got

    def _member(self, topic: str) -> TopicMember:
        try:
            return self._members[topic]
        except KeyError:
            raise ConsumeError(f"topic {topic} is not subscribed") from None

    def store(self, offsets: Mapping[Partition, int], *, commit: bool = True) -> None:
        """Store next-offsets (and commit them asynchronously) on each topic's member."""
        for topic, part in offsets_by_topic(offsets).items():
            self._member(topic).store(part, commit=commit)

    def commit_now(self, offsets: Mapping[Partition, int] | None = None) -> None:
        """Synchronous commit: every member's stored offsets, or `offsets` when given."""
        if offsets:
            for topic, part in offsets_by_topic(offsets).items():
                self._member(topic).commit_now(part)
            return
        for member in self._members.values():
            member.commit_now()

    def committed_offsets(
        self, partitions: Iterable[Partition], timeout: float = METADATA_TIMEOUT_S
    ) -> dict[Partition, int | None]:
        """The group's committed offset per partition (None when it has committed none)."""
        found: dict[Partition, int | None] = {}
        for topic, parts in by_topic(partitions).items():
            found.update(self._member(topic).committed_offsets(parts, timeout))
        return found

    def pause(self, partitions: Iterable[Partition]) -> None:
        for topic, parts in by_topic(partitions).items():
            self._member(topic).pause(parts)

    def resume(self, partitions: Iterable[Partition]) -> None:
        for topic, parts in by_topic(partitions).items():
            self._member(topic).resume(parts)

    def lag(self) -> dict[Partition, PartitionLag]:
        """Lag of every assigned partition of every member (see KafkaConsumer.lag)."""
        result: dict[Partition, PartitionLag] = {}
        for member in self._joined():
            result.update(member.lag())
        return result

    def close(self) -> None:
        """Close every member, even when one fails (the first failure is raised after)."""
        members, self._members, self._followers = list(self._members.values()), {}, []
        failure: BaseException | None = None
        for member in members:
            try:
                member.close()
            except Exception as exc:  # close the rest; report the first
                failure = failure or exc
        if failure is not None:
            raise failure


class _FirstAssignment:
    """The first member's listener: forwards everything, and tells the consumer of the first
    assignment (even an empty one: librdkafka's cooperative callback gets those too)."""

    def __init__(self, listener: RebalanceListener, consumer: PerTopicConsumer) -> None:
        self._listener = listener
        self._consumer = consumer

    def on_assigned(self, partitions: list[Partition]) -> None:
        self._consumer.note_first_assignment()
        self._listener.on_assigned(partitions)

    def on_revoked(self, partitions: list[Partition]) -> None:
        self._listener.on_revoked(partitions)

    def on_lost(self, partitions: list[Partition]) -> None:
        self._listener.on_lost(partitions)
