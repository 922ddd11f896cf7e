"""Batcher: count, byte and linger cuts, dedupe, partition drops; no event is ever lost."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from bouncewire.consumers.batching import MAX_EVENTS_CAP, Batch, Batcher, InFlightIds
from bouncewire.consumers.payloads import (
    CallbackEvent,
    CallbackType,
    Destination,
    EventRef,
    PayloadFormat,
    build_payload,
)
from tests.consumers.strategies import make_event, realistic_emails


class FakeClock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def bounce_batcher(**kwargs: object) -> Batcher:
    kwargs.setdefault("fmt", "legacy")
    kwargs.setdefault("clock", FakeClock())
    return Batcher("bounce", **kwargs)  # type: ignore[arg-type]


def add_all(batcher: Batcher, events: list[CallbackEvent]) -> list[Batch]:
    return [b for b in (batcher.add(e) for e in events) if b is not None]


def check_batch(batch: Batch, batcher: Batcher) -> None:
    assert batch.events, "a batch is never empty"
    assert len(batch.events) <= batcher.max_events <= MAX_EVENTS_CAP
    assert len({e.event_id for e in batch.events}) == len(batch.events)
    assert batch.payload_bytes == len(build_payload(batch.events, batcher.fmt))
    oversized_alone = len(batch.events) == 1 and not batcher.fits_alone(batch.events[0])
    assert batch.payload_bytes <= batcher.max_bytes or oversized_alone
    assert {e.ref for e in batch.events} <= set(batch.refs)
    assert len(set(batch.refs)) == len(batch.refs)


# --- tables --------------------------------------------------------------------------------


def test_count_cut_2500_queued_gives_1000_1000_500() -> None:
    batcher = bounce_batcher()
    events = [make_event(f"id-{i}", email=f"u{i}@example.com") for i in range(2500)]
    batches = add_all(batcher, events)
    assert [len(b.events) for b in batches] == [1000, 1000]
    assert batcher.open_events == 500
    last = batcher.flush()
    assert last is not None and len(last.events) == 500
    assert batcher.flush() is None
    assert [e for b in (*batches, last) for e in b.events] == events
    for batch in (*batches, last):
        check_batch(batch, batcher)


@pytest.mark.parametrize("max_events", [0, -1, MAX_EVENTS_CAP + 1, 5000])
def test_max_events_outside_1_to_1000_is_refused(max_events: int) -> None:
    with pytest.raises(ValueError, match="max_events"):
        bounce_batcher(max_events=max_events)


@pytest.mark.parametrize(
    ("option", "value"), [("max_bytes", 0), ("linger_s", -1.0), ("linger_s", float("nan"))]
)
def test_bad_limits_are_refused(option: str, value: float) -> None:
    with pytest.raises(ValueError, match=option):
        bounce_batcher(**{option: value})


def test_bytes_cut_keeps_every_payload_within_max_bytes() -> None:
    events = [make_event(f"id-{i}", email=f"user{i:03d}@example.com") for i in range(10)]
    three = len(build_payload(events[:3], "legacy"))
    batcher = bounce_batcher(max_bytes=three)
    batches = add_all(batcher, events)
    assert [len(b.events) for b in batches] == [3, 3, 3]
    assert [b.payload_bytes for b in batches] == [three] * 3
    assert batcher.open_events == 1
    assert batcher.open_bytes == len(build_payload(events[9:], "legacy"))


def test_bytes_cut_one_byte_short_cuts_one_event_earlier() -> None:
    events = [make_event(f"id-{i}", email=f"user{i:03d}@example.com") for i in range(3)]
    batcher = bounce_batcher(max_bytes=len(build_payload(events, "legacy")) - 1)
    batches = add_all(batcher, events)
    assert [len(b.events) for b in batches] == [2]


def test_oversized_event_goes_out_alone_and_at_once() -> None:
    clock = FakeClock()
    batcher = bounce_batcher(max_bytes=200, clock=clock)
    small = make_event("small", email="a@b.io")
    huge = make_event("huge", email="x" * 300 + "@example.com")
    assert batcher.fits_alone(small) and not batcher.fits_alone(huge)
    assert batcher.add(small) is None
    first = batcher.add(huge)
    assert first is not None and first.events == [small]
    assert batcher.deadline == clock.now  # due immediately, no linger
    alone = batcher.due()
    assert alone is not None and alone.events == [huge]
    assert alone.payload_bytes == len(build_payload([huge], "legacy")) > 200


def test_oversized_event_into_an_empty_batcher_is_returned_by_add() -> None:
    batcher = bounce_batcher(max_bytes=50)
    batch = batcher.add(make_event("huge", email="x" * 100 + "@example.com"))
    assert batch is not None and len(batch.events) == 1
    assert batcher.open_events == 0


def test_max_events_one_sends_each_event_alone() -> None:
    batcher = bounce_batcher(max_events=1)
    events = [make_event(f"id-{i}") for i in range(3)]
    assert [b.events for b in add_all(batcher, events)] == [[e] for e in events]


def test_linger_with_a_fake_clock() -> None:
    clock = FakeClock(10.0)
    batcher = bounce_batcher(linger_s=2.0, clock=clock)
    assert batcher.deadline is None and batcher.due() is None
    first = make_event("a")
    batcher.add(first)
    assert batcher.deadline == 12.0
    clock.now = 11.0
    batcher.add(make_event("b"))
    assert batcher.deadline == 12.0, "the first event starts the linger"
    clock.now = 11.999
    assert batcher.due() is None
    clock.now = 12.0
    batch = batcher.due()
    assert batch is not None and [e.event_id for e in batch.events] == ["a", "b"]
    assert batch.created_at == 10.0
    assert batcher.deadline is None and batcher.due() is None


def test_duplicate_in_open_batch_is_sent_once_with_both_refs() -> None:
    batcher = bounce_batcher()
    first = make_event("same", ref=EventRef("send-results", 0, 5))
    again = make_event("same", ref=EventRef("send-results", 1, 9))
    batcher.add(first)
    batcher.add(again)
    batch = batcher.flush()
    assert batch is not None
    assert batch.events == [first]
    assert batch.refs == [first.ref, again.ref]
    assert batch.payload_bytes == len(build_payload([first], "legacy"))


def test_duplicate_of_an_in_flight_event_attaches_to_that_batch() -> None:
    in_flight = InFlightIds()
    batcher = bounce_batcher(in_flight=in_flight)
    first = make_event("same")
    batcher.add(first)
    sent = batcher.flush()
    assert sent is not None and "same" in in_flight
    dup = make_event("same")
    assert batcher.add(dup) is None
    assert batcher.open_events == 0 and in_flight.attached == 1
    assert in_flight.release(sent) == [dup.ref]
    assert "same" not in in_flight and in_flight.attached == 0
    # Once the original is done, the id may be sent again (a later genuine redelivery).
    later = make_event("same")
    batcher.add(later)
    resent = batcher.flush()
    assert resent is not None and resent.events == [later]


def test_in_flight_ids_are_shared_between_destinations() -> None:
    in_flight = InFlightIds()
    clock = FakeClock()
    bounces = Batcher("bounce", fmt="v2", clock=clock, in_flight=in_flight)
    unsubs = Batcher("unsubscribe", fmt="v2", clock=clock, in_flight=in_flight)
    bounces.add(make_event("b1"))
    unsubs.add(make_event("u1", "unsubscribe"))
    assert bounces.flush() is not None and unsubs.flush() is not None
    assert len(in_flight) == 2


def test_event_of_the_other_destination_is_refused() -> None:
    with pytest.raises(ValueError, match="unsubscribe events"):
        bounce_batcher().add(make_event("u", "unsubscribe"))


def test_drop_partitions_returns_their_refs_and_keeps_the_rest() -> None:
    clock = FakeClock()
    batcher = bounce_batcher(clock=clock, linger_s=5.0)
    p0 = [make_event(f"p0-{i}", ref=EventRef("t", 0, i)) for i in range(3)]
    p1 = [make_event(f"p1-{i}", ref=EventRef("t", 1, i)) for i in range(2)]
    add_all(batcher, [p0[0], p1[0], p0[1], p1[1], p0[2]])
    clock.now += 1
    dropped = batcher.drop_partitions({("t", 0)})
    assert dropped == [e.ref for e in p0]
    assert batcher.open_events == 2
    assert batcher.open_bytes == len(build_payload(p1, "legacy"))
    assert batcher.deadline == 105.0, "dropping keeps the batch's linger"
    assert batcher.drop_partitions({("t", 0)}) == []
    batch = batcher.flush()
    assert batch is not None and batch.events == p1 and batch.refs == [e.ref for e in p1]


def test_drop_keeps_an_event_that_a_kept_partition_duplicates() -> None:
    batcher = bounce_batcher()
    original = make_event("same", ref=EventRef("t", 0, 1))
    dup = make_event("same", ref=EventRef("t", 1, 7))
    batcher.add(original)
    batcher.add(dup)
    assert batcher.drop_partitions([("t", 0)]) == [original.ref]
    batch = batcher.flush()
    assert batch is not None
    assert [e.event_id for e in batch.events] == ["same"]
    assert batch.events[0].ref == dup.ref and batch.refs == [dup.ref]


def test_repeated_drops_keep_the_original_record_as_the_event_ref() -> None:
    batcher = bounce_batcher()
    records = [make_event("same", ref=EventRef("t", p, 1)) for p in range(3)]
    add_all(batcher, records)
    assert batcher.drop_partitions([("t", 1)]) == [records[1].ref]
    assert batcher.drop_partitions([("t", 2)]) == [records[2].ref]
    batch = batcher.flush()
    assert batch is not None and batch.refs == [records[0].ref]
    assert [e.ref for e in batch.events] == [records[0].ref]
    # And the other way round: the survivor of the dropped original is the first duplicate.
    add_all(batcher, [make_event("again", ref=EventRef("t", p, 2)) for p in range(3)])
    assert len(batcher.drop_partitions([("t", 0)])) == 1
    batch = batcher.flush()
    assert batch is not None and [e.ref.partition for e in batch.events] == [1]


def test_dropping_everything_closes_the_open_batch() -> None:
    batcher = bounce_batcher()
    batcher.add(make_event("a", ref=EventRef("t", 0, 1)))
    assert len(batcher.drop_partitions([("t", 0)])) == 1
    assert batcher.open_events == 0 and batcher.deadline is None and batcher.flush() is None


# --- the property: any interleaving -------------------------------------------------------

KINDS: dict[Destination, tuple[CallbackType, ...]] = {
    "bounce": ("softbounce", "hardbounce"),
    "unsubscribe": ("unsubscribe",),
}
PARTITIONS = [("send-results", 0), ("send-results", 1), ("unsubscribes", 0)]


class BatcherMachine(RuleBasedStateMachine):
    """Feeds random adds, clock ticks, dues, flushes, partition drops and in-flight releases.

    Invariants: every batch respects the limits; every record fed is accounted exactly once
    (open, in a batch, attached to an in-flight batch, or returned by a drop); every record
    not dropped ends up covered by a batch that carries its event.
    """

    @initialize(
        destination=st.sampled_from(["bounce", "unsubscribe"]),
        fmt=st.sampled_from(["legacy", "v2"]),
        max_events=st.integers(1, 6),
        max_bytes=st.integers(40, 700),
        linger_s=st.sampled_from([0.0, 0.5, 3.0]),
        use_in_flight=st.booleans(),
    )
    def start(
        self,
        destination: Destination,
        fmt: PayloadFormat,
        max_events: int,
        max_bytes: int,
        linger_s: float,
        use_in_flight: bool,
    ) -> None:
        self.clock = FakeClock()
        self.in_flight = InFlightIds() if use_in_flight else None
        self.batcher = Batcher(
            destination,
            fmt=fmt,
            max_events=max_events,
            max_bytes=max_bytes,
            linger_s=linger_s,
            clock=self.clock,
            in_flight=self.in_flight,
        )
        self.next_offset = Counter[tuple[str, int]]()
        self.known: dict[str, CallbackEvent] = {}  # event id -> first version
        self.fed: dict[EventRef, str] = {}  # record -> event id
        self.accounted: Counter[EventRef] = Counter()
        self.dropped: set[EventRef] = set()
        self.covered: set[EventRef] = set()  # records completed with a batch carrying the id
        self.flying: list[Batch] = []

    @rule(
        event_id=st.sampled_from([f"e{i}" for i in range(10)]),
        part=st.sampled_from(PARTITIONS),
        kind_index=st.integers(0, 1),
        email=realistic_emails(),
        meta=st.one_of(st.none(), st.text(max_size=30)),
    )
    def add(
        self, event_id: str, part: tuple[str, int], kind_index: int, email: str, meta: str | None
    ) -> None:
        ref = EventRef(part[0], part[1], self.next_offset[part])
        self.next_offset[part] += 1
        kinds = KINDS[self.batcher.destination]
        base = self.known.get(event_id)
        if base is None:
            kind = kinds[kind_index % len(kinds)]
            base = make_event(event_id, kind, email, ts=1_700_000_000, meta=meta, ref=ref)
            self.known[event_id] = base
        event = CallbackEvent(
            base.event_id, base.kind, base.email, base.ts, base.meta, ref, base.event_time_ms
        )
        self.fed[ref] = event_id
        self.receive(self.batcher.add(event))

    @rule(dt=st.sampled_from([0.0, 0.1, 0.5, 1.0, 5.0]))
    def tick(self, dt: float) -> None:
        self.clock.now += dt
        batch = self.batcher.due()
        if batch is not None:
            limits = self.batcher
            assert (
                self.clock.now >= batch.created_at + limits.linger_s
                or len(batch.events) >= limits.max_events
                or batch.payload_bytes >= limits.max_bytes
            ), "due() returned a batch before its linger expired"
        self.receive(batch)
        deadline = self.batcher.deadline
        assert deadline is None or deadline > self.clock.now, "an expired batch stayed open"

    @rule()
    def flush(self) -> None:
        self.receive(self.batcher.flush())
        assert self.batcher.open_events == 0

    @rule(parts=st.sets(st.sampled_from(PARTITIONS), max_size=2))
    def drop(self, parts: set[tuple[str, int]]) -> None:
        refs = self.batcher.drop_partitions(parts)
        for ref in refs:
            assert (ref.topic, ref.partition) in parts
        self.account(refs)
        self.dropped.update(refs)

    @precondition(lambda self: self.flying)
    @rule(which=st.integers(0, 100))
    def release(self, which: int) -> None:
        assert self.in_flight is not None
        batch = self.flying.pop(which % len(self.flying))
        extra = self.in_flight.release(batch)
        self.account(extra)
        self.cover(batch, extra)

    def receive(self, batch: Batch | None) -> None:
        if batch is None:
            return
        check_batch(batch, self.batcher)
        self.account(batch.refs)
        if self.in_flight is None:
            self.cover(batch, batch.refs)
            return
        ids = {e.event_id for e in batch.events}
        for other in self.flying:
            assert ids.isdisjoint(e.event_id for e in other.events), "an id sent twice in flight"
        self.flying.append(batch)
        self.cover(batch, batch.refs)

    def account(self, refs: list[EventRef]) -> None:
        self.accounted.update(refs)
        assert all(self.accounted[r] == 1 for r in refs), "a record was accounted twice"

    def cover(self, batch: Batch, refs: list[EventRef]) -> None:
        ids = {e.event_id for e in batch.events}
        for ref in refs:
            assert self.fed[ref] in ids, "a record completes with a batch lacking its event"
        self.covered.update(refs)

    @invariant()
    def nothing_lost_or_invented(self) -> None:
        attached = self.in_flight.attached if self.in_flight is not None else 0
        total = sum(self.accounted.values()) + self.batcher.open_refs + attached
        assert total == len(self.fed)
        assert set(self.accounted) <= set(self.fed)

    def teardown(self) -> None:
        if not hasattr(self, "batcher"):
            return
        self.receive(self.batcher.flush())
        while self.flying:
            self.release(0)
        assert set(self.accounted) == set(self.fed)
        assert self.covered | self.dropped == set(self.fed)
        assert not self.covered & self.dropped


TestBatcherMachine = BatcherMachine.TestCase
