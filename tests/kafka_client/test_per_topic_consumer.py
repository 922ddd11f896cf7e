"""PerTopicConsumer: one group member per topic. Routing and the poll-wait split are checked
with fake members; the per-topic balance, offsets, pause/resume and close on the real broker."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bouncewire.kafka_client import (
    ConsumeError,
    KafkaConsumer,
    KafkaProducer,
    KafkaSettings,
    Partition,
    PartitionLag,
    PerTopicConsumer,
)
from bouncewire.kafka_client._topic_consumers import TopicMember
from tests.kafka_cluster import MakeTopics

SETTINGS = KafkaSettings(bootstrap_servers="127.0.0.1:1")  # fakes never connect

# ------------------------------------------------------------------ fake members


class FakeMember:
    """A member with `ready` records; logs every call as (method, argument)."""

    def __init__(self, topic: str = "?") -> None:
        self.topic = topic
        self.ready = 0
        self.calls: list[tuple[str, Any]] = []
        self.fatal_error: str | None = None
        self.fail_close = False

    def subscribe(self, topics: list[str], listener: Any) -> None:
        self.topic = topics[0]
        self.listener = listener
        self.calls.append(("subscribe", topics))

    def consume(self, max_messages: int, timeout: float) -> list[Any]:
        self.calls.append(("consume", timeout))
        taken = min(self.ready, max_messages)
        self.ready -= taken
        return [self.topic] * taken

    def store(self, offsets: Mapping[Partition, int], *, commit: bool = True) -> None:
        self.calls.append(("store", dict(offsets)))

    def commit_now(self, offsets: Mapping[Partition, int] | None = None) -> None:
        self.calls.append(("commit_now", dict(offsets) if offsets else None))

    def committed_offsets(
        self, partitions: Any, timeout: float = 1.0
    ) -> dict[Partition, int | None]:
        self.calls.append(("committed_offsets", sorted(partitions)))
        return {p: 7 for p in partitions}

    def pause(self, partitions: Any) -> None:
        self.calls.append(("pause", sorted(partitions)))

    def resume(self, partitions: Any) -> None:
        self.calls.append(("resume", sorted(partitions)))

    def lag(self) -> dict[Partition, PartitionLag]:
        return {(self.topic, 0): PartitionLag(3, 1)}

    def close(self) -> None:
        self.calls.append(("close", None))
        if self.fail_close:
            raise RuntimeError("close failed")

    def waits(self) -> list[float]:
        return [t for name, t in self.calls if name == "consume" and t > 0]


class NullListener:
    def __init__(self) -> None:
        self.heard: list[tuple[str, list[Partition]]] = []

    def on_assigned(self, partitions: list[Partition]) -> None:
        self.heard.append(("assigned", partitions))

    def on_revoked(self, partitions: list[Partition]) -> None:
        self.heard.append(("revoked", partitions))

    def on_lost(self, partitions: list[Partition]) -> None:
        self.heard.append(("lost", partitions))


def fake_consumer(
    topics: list[str], *, joined: bool = True
) -> tuple[PerTopicConsumer, dict[str, FakeMember]]:
    """A consumer of fake members; with `joined`, every member has subscribed (the first
    member's first assignment came, and a call let the others join)."""
    made: list[FakeMember] = []

    def factory(_s: KafkaSettings, _g: str, _x: Mapping[str, object] | None) -> TopicMember:
        made.append(FakeMember(topics[len(made)]))
        return made[-1]

    consumer = PerTopicConsumer(SETTINGS, "g", member_factory=factory)
    consumer.subscribe(topics, listener=NullListener())
    if joined and made:
        made[0].listener.on_assigned([])
        consumer.lag()  # any call lets the followers join
    return consumer, {m.topic: m for m in made}


# ------------------------------------------------------------------ routing (no Kafka)

OFFSETS = {("a", 0): 5, ("b", 1): 9, ("a", 1): 2}


@pytest.mark.parametrize(("call", "expected"), [
    (lambda c: c.store(OFFSETS),
     {"a": [("store", {("a", 0): 5, ("a", 1): 2})], "b": [("store", {("b", 1): 9})]}),
    (lambda c: c.commit_now(OFFSETS),
     {"a": [("commit_now", {("a", 0): 5, ("a", 1): 2})], "b": [("commit_now", {("b", 1): 9})]}),
    (lambda c: c.commit_now(), {"a": [("commit_now", None)], "b": [("commit_now", None)]}),
    (lambda c: c.pause([("b", 0), ("b", 1)]), {"a": [], "b": [("pause", [("b", 0), ("b", 1)])]}),
    (lambda c: c.resume([("a", 1)]), {"a": [("resume", [("a", 1)])], "b": []}),
    (lambda c: c.pause([]), {"a": [], "b": []}),
    (lambda c: c.store({}), {"a": [], "b": []}),
])
def test_calls_go_to_the_member_of_their_topic(
    call: Callable[[PerTopicConsumer], None], expected: dict[str, list[tuple[str, Any]]]
) -> None:
    consumer, members = fake_consumer(["a", "b"])
    call(consumer)
    assert {t: m.calls[1:] for t, m in members.items()} == expected


def test_queries_merge_the_answers_of_every_member() -> None:
    consumer, members = fake_consumer(["a", "b"])
    assert consumer.lag() == {("a", 0): PartitionLag(3, 1), ("b", 0): PartitionLag(3, 1)}
    assert consumer.committed_offsets([("b", 0), ("a", 2)]) == {("b", 0): 7, ("a", 2): 7}
    assert consumer.topics == ["a", "b"]
    assert consumer.fatal_error is None
    members["b"].fatal_error = "_SSL: handshake failed"
    assert consumer.fatal_error == "_SSL: handshake failed"
    assert not consumer.exhausted


@pytest.mark.parametrize("call", [
    lambda c: c.store({("c", 0): 1}),
    lambda c: c.pause([("c", 0)]),
    lambda c: c.committed_offsets([("c", 0)]),
])
def test_a_topic_never_subscribed_is_a_consume_error(
    call: Callable[[PerTopicConsumer], object],
) -> None:
    consumer, _members = fake_consumer(["a", "b"])
    with pytest.raises(ConsumeError, match="not subscribed"):
        call(consumer)


def test_one_member_per_distinct_topic_and_one_subscription_only() -> None:
    consumer, members = fake_consumer(["a", "b", "a"])
    assert sorted(members) == ["a", "b"]
    assert all(m.calls == [("subscribe", [t])] for t, m in members.items())
    with pytest.raises(ConsumeError, match="already subscribed"):
        consumer.subscribe(["c"], listener=None)  # type: ignore[arg-type]


def test_other_topics_join_only_after_the_first_members_first_assignment() -> None:
    consumer, members = fake_consumer(["a", "b", "c"], joined=False)
    consumer.consume(10, 0)
    assert [m.calls[:1] for m in members.values()] == [[("subscribe", ["a"])], [], []]
    listener = members["a"].listener
    listener.on_assigned([])  # even an empty first assignment ends the wait
    consumer.consume(10, 0)
    assert members["b"].calls[0] == ("subscribe", ["b"])
    assert members["c"].calls[0] == ("subscribe", ["c"])
    assert members["b"].listener is members["c"].listener is not listener


def test_other_topics_join_after_a_bounded_wait_without_an_assignment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bouncewire.kafka_client import _topic_consumers

    monkeypatch.setattr(_topic_consumers, "FOLLOWERS_JOIN_AFTER_S", 0.0)
    consumer, members = fake_consumer(["a", "b"], joined=False)
    consumer.consume(10, 0)
    assert members["b"].calls[0] == ("subscribe", ["b"])


def test_the_first_members_callbacks_reach_the_listener() -> None:
    consumer, members = fake_consumer(["a", "b"], joined=False)
    forwarded = members["a"].listener
    forwarded.on_assigned([("a", 0)])
    forwarded.on_revoked([("a", 0)])
    forwarded.on_lost([("a", 1)])
    listener = consumer._listener
    assert isinstance(listener, NullListener)
    assert listener.heard == [
        ("assigned", [("a", 0)]), ("revoked", [("a", 0)]), ("lost", [("a", 1)])
    ]


def test_close_closes_every_member_even_when_one_fails() -> None:
    consumer, members = fake_consumer(["a", "b", "c"])
    members["a"].fail_close = True
    with pytest.raises(RuntimeError, match="close failed"):
        consumer.close()
    assert all(m.calls[-1] == ("close", None) for m in members.values())
    assert consumer.topics == []
    consumer.close()  # closing again is a no-op
    assert all(m.calls.count(("close", None)) == 1 for m in members.values())


def test_one_topic_is_a_pass_through() -> None:
    consumer, members = fake_consumer(["a"])
    members["a"].ready = 3
    assert consumer.consume(10, 0.02) == ["a"] * 3
    assert members["a"].calls[1:] == [("consume", 0.02)]


# ------------------------------------------------------------------ the poll-wait split


@given(ready=st.lists(st.integers(0, 50), min_size=2, max_size=4),
       max_messages=st.integers(1, 120), timeout=st.sampled_from([0.0, 0.02, 1.0]))
def test_one_call_waits_at_most_its_timeout_and_takes_what_is_ready(
    ready: list[int], max_messages: int, timeout: float
) -> None:
    """However many topics are idle, the waits of one call add up to at most `timeout` (one
    member waits, the rest are only asked what they have), and records that are ready on any
    member come back in the same call as long as the batch has room."""
    consumer, members = fake_consumer([f"t{i}" for i in range(len(ready))])
    for member, count in zip(members.values(), ready, strict=True):
        member.ready = count
    got = consumer.consume(max_messages, timeout)
    assert len(got) == min(sum(ready), max_messages)
    assert sum(sum(m.waits()) for m in members.values()) <= timeout
    assert all(len(m.waits()) <= 1 for m in members.values())


@given(topics=st.integers(2, 4), calls=st.integers(1, 12))
def test_a_topic_that_fills_every_batch_starves_no_other(topics: int, calls: int) -> None:
    consumer, members = fake_consumer([f"t{i}" for i in range(topics)])
    flooded = members["t0"]
    flooded.ready = 10**6
    for _ in range(calls * topics):
        consumer.consume(100, 0.02)
    polls = [sum(1 for name, _t in m.calls if name == "consume") for m in members.values()]
    assert min(polls) >= calls


def test_the_wait_goes_to_the_member_that_delivered_last() -> None:
    consumer, members = fake_consumer(["busy", "idle"])
    members["busy"].ready = 5
    consumer.consume(100, 0.02)
    members["busy"].ready = 5
    consumer.consume(100, 0.02)
    assert members["idle"].waits() == []
    assert members["busy"].waits() == [0.02, 0.02]


# ------------------------------------------------------------------ on the real broker


class Held:
    """A RebalanceListener that keeps the partitions its member currently holds."""

    def __init__(self) -> None:
        self.partitions: set[Partition] = set()

    def on_assigned(self, partitions: list[Partition]) -> None:
        self.partitions |= set(partitions)

    def on_revoked(self, partitions: list[Partition]) -> None:
        self.partitions -= set(partitions)

    def on_lost(self, partitions: list[Partition]) -> None:
        self.partitions -= set(partitions)


def settle(members: list[Any], held: list[Held], partitions: set[Partition],
           rounds_stable: int = 25, max_rounds: int = 600) -> list[set[Partition]]:
    """Poll every member until each holds an equal share of `partitions` and nothing moved for
    `rounds_stable` rounds; the final holdings. Records read meanwhile are dropped."""
    stable, last = 0, [set(h.partitions) for h in held]
    for _ in range(max_rounds):
        for member in members:
            member.consume(100, 0.1)
        now = [set(h.partitions) for h in held]
        complete = set().union(*now) == partitions and sum(map(len, now)) == len(partitions)
        even = {len(p) for p in now} == {len(partitions) // len(members)}
        stable = stable + 1 if (now == last and complete and even) else 0
        last = now
        if stable >= rounds_stable:
            return now
    raise AssertionError(f"group did not settle: {last}")


def per_topic(holding: set[Partition]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for topic, _p in holding:
        counts[topic] = counts.get(topic, 0) + 1
    return counts


def produce(bootstrap: str, topic: str, count: int) -> None:
    with KafkaProducer(KafkaSettings(bootstrap_servers=bootstrap)) as producer:
        for i in range(count):
            producer.produce(topic, b"v%d" % i, key=b"k%d" % i)


@pytest.fixture
def two_topics(make_topics: MakeTopics, unique_name: Callable[[str], str]) -> list[str]:
    return make_topics(unique_name("a"), unique_name("b"), partitions=2)


@pytest.fixture
def group_of(
    kafka_bootstrap: str, unique_name: Callable[[str], str], two_topics: list[str]
) -> Iterator[Callable[[int], tuple[list[PerTopicConsumer], list[Held]]]]:
    """`group_of(n)`: n PerTopicConsumers in one fresh group, subscribed to both topics."""
    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    group, made = unique_name("g"), []

    def make(n: int) -> tuple[list[PerTopicConsumer], list[Held]]:
        consumers = [PerTopicConsumer(settings, group) for _ in range(n)]
        held = [Held() for _ in range(n)]
        for consumer, listener in zip(consumers, held, strict=True):
            consumer.subscribe(two_topics, listener)
        made.extend(consumers)
        return consumers, held

    yield make
    for consumer in made:
        consumer.close()


def everything(topics: list[str], partitions: int = 2) -> set[Partition]:
    return {(t, p) for t in topics for p in range(partitions)}


@pytest.mark.integration
@pytest.mark.parametrize("second_joins_late", [True, False], ids=["one-after-the-other",
                                                                  "together"])
def test_two_members_each_get_one_partition_of_each_topic(
    group_of: Callable[[int], tuple[list[PerTopicConsumer], list[Held]]], two_topics: list[str],
    second_joins_late: bool,
) -> None:
    """A second process joining a running one (how deployments scale out) must take one
    partition of each topic. One consumer subscribed to both topics fails this, 5 of 5 tries:
    the sticky assignor balanced only the partition count, moving both partitions of one
    topic to the newcomer."""
    members, held = group_of(1 if second_joins_late else 2)
    if second_joins_late:
        settle(members, held, everything(two_topics), rounds_stable=3)
        late, late_held = group_of(1)
        members, held = members + late, held + late_held
    holdings = settle(members, held, everything(two_topics))
    assert [per_topic(h) for h in holdings] == [{t: 1 for t in two_topics}] * 2


@pytest.mark.integration
def test_closing_a_member_hands_all_its_partitions_to_the_other(
    group_of: Callable[[int], tuple[list[PerTopicConsumer], list[Held]]], two_topics: list[str]
) -> None:
    """Every per-topic member leaves the group on close(): the survivor gets all four long
    before a session timeout (30 s) would have passed."""
    members, held = group_of(2)
    settle(members, held, everything(two_topics))
    members[0].close()
    assert settle(members[1:], held[1:], everything(two_topics), max_rounds=100) == [
        everything(two_topics)
    ]


def read(consumer: PerTopicConsumer, count: int, max_calls: int = 300) -> list[Any]:
    got: list[Any] = []
    for _ in range(max_calls):
        got.extend(consumer.consume(500, 0.1))
        if len(got) >= count:
            break
    return got


@pytest.mark.integration
def test_stored_offsets_are_committed_on_their_own_topic(
    kafka_bootstrap: str, two_topics: list[str],
    group_of: Callable[[int], tuple[list[PerTopicConsumer], list[Held]]],
) -> None:
    a, b = two_topics
    produce(kafka_bootstrap, a, 30)
    produce(kafka_bootstrap, b, 20)
    (consumer,), _held = group_of(1)
    got = read(consumer, 50)
    ends = {(m.topic(), m.partition()): m.offset() + 1 for m in got}
    consumer.store(ends, commit=False)
    consumer.commit_now()
    assert consumer.committed_offsets(everything(two_topics)) == {
        p: ends.get(p) for p in everything(two_topics)
    }
    assert sum(o for (t, _p), o in ends.items() if t == a) == 30
    assert sum(o for (t, _p), o in ends.items() if t == b) == 20


@pytest.mark.integration
def test_pause_holds_back_only_its_topic_until_resumed(
    kafka_bootstrap: str, two_topics: list[str],
    group_of: Callable[[int], tuple[list[PerTopicConsumer], list[Held]]],
) -> None:
    a, b = two_topics
    (consumer,), (held,) = group_of(1)
    settle([consumer], [held], everything(two_topics), rounds_stable=2)
    consumer.pause([p for p in held.partitions if p[0] == a])
    produce(kafka_bootstrap, a, 40)
    produce(kafka_bootstrap, b, 40)
    before = read(consumer, 40)
    before.extend(read(consumer, 1, max_calls=10))  # a little longer: nothing of `a` comes
    assert {m.topic() for m in before} == {b}
    consumer.resume([p for p in held.partitions if p[0] == a])
    after = read(consumer, 40)
    assert [m.topic() for m in after] == [a] * 40


class CountingMember(KafkaConsumer):
    """A real member that counts the calls in which it was the one to wait."""

    waits = 0

    def consume(self, max_messages: int, timeout: float) -> list[Any]:
        if timeout > 0:
            self.waits += 1
        return super().consume(max_messages, timeout)


@pytest.mark.integration
def test_an_idle_topic_takes_no_wait_from_the_busy_one(
    kafka_bootstrap: str, two_topics: list[str], unique_name: Callable[[str], str]
) -> None:
    """b delivered last, then only a has records: from a's first record on, every blocking
    wait goes to a's member; idle b only answers non-blocking calls, so it cannot hold a's
    records back (one consumer per call would wait on b as long as on a)."""
    a, b = two_topics
    made: list[CountingMember] = []

    def member(s: KafkaSettings, g: str, x: Mapping[str, object] | None) -> TopicMember:
        made.append(CountingMember(s, g, x))
        return made[-1]

    consumer = PerTopicConsumer(KafkaSettings(bootstrap_servers=kafka_bootstrap),
                                unique_name("g"), member_factory=member)
    held = Held()
    consumer.subscribe([a, b], held)
    try:
        produce(kafka_bootstrap, b, 1)
        assert [m.topic() for m in read(consumer, 1)] == [b]
        produce(kafka_bootstrap, a, 300)
        got = read(consumer, 1)
        b_waits = made[1].waits
        got.extend(read(consumer, 300 - len(got)))
        assert [m.topic() for m in got] == [a] * 300
        assert made[1].waits == b_waits
        assert made[0].waits > 0
    finally:
        consumer.close()
