"""OffsetTracker: commits only past complete records, in any completion order, despite gaps."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from bouncewire.consumers.offsets import OffsetTracker
from bouncewire.consumers.payloads import EventRef

T = "send-results"


def ref(offset: int, partition: int = 0, topic: str = T) -> EventRef:
    return EventRef(topic, partition, offset)


def tracked(*offsets: int, partition: int = 0) -> OffsetTracker:
    tracker = OffsetTracker()
    for offset in offsets:
        assert tracker.track(T, partition, offset)
    return tracker


def test_in_order_completion_commits_after_each_record() -> None:
    tracker = tracked(0, 1, 2)
    assert tracker.committable() == {}
    tracker.complete(ref(0))
    assert tracker.committable() == {(T, 0): 1}
    assert tracker.committable() == {}, "only partitions that advanced since the last call"
    tracker.complete_many([ref(1), ref(2)])
    assert tracker.committable() == {(T, 0): 3}


def test_out_of_order_completion_waits_for_the_lowest() -> None:
    tracker = tracked(10, 11, 12)
    tracker.complete(ref(12))
    tracker.complete(ref(11))
    assert tracker.committable() == {}
    assert tracker.position(T, 0) == 10
    tracker.complete(ref(10))
    assert tracker.committable() == {(T, 0): 13}


def test_gaps_do_not_block_progress() -> None:
    tracker = tracked(5, 9, 20)  # 6..8 and 10..19 compacted away or transaction markers
    tracker.complete(ref(5))
    assert tracker.committable() == {(T, 0): 9}
    tracker.complete(ref(20))
    assert tracker.committable() == {}
    tracker.complete(ref(9))
    assert tracker.committable() == {(T, 0): 21}


def test_partitions_are_independent() -> None:
    tracker = OffsetTracker()
    for partition in (0, 1):
        for offset in (0, 1):
            tracker.track(T, partition, offset)
    tracker.track("unsubscribes", 0, 7)
    tracker.complete_many([ref(0, 1), ref(1, 1), ref(7, 0, "unsubscribes")])
    assert tracker.committable() == {(T, 1): 2, ("unsubscribes", 0): 8}
    assert tracker.pending(T, 0) == 2 and tracker.pending(T, 1) == 0
    assert tracker.pending_total() == 2
    assert tracker.oldest_pending() == {(T, 0): 0}


def test_non_increasing_track_is_ignored() -> None:
    tracker = tracked(3, 4)
    assert not tracker.track(T, 0, 4)
    assert not tracker.track(T, 0, 1)
    assert tracker.pending_total() == 2


def test_unknown_and_repeated_completions_are_ignored() -> None:
    tracker = tracked(3, 4)
    tracker.complete(ref(3))
    tracker.complete(ref(3))
    tracker.complete(ref(99))
    tracker.complete(ref(3, partition=5))
    assert tracker.pending_total() == 1
    assert tracker.committable() == {(T, 0): 4}


def test_forget_drops_a_partition_and_its_pending_records() -> None:
    tracker = OffsetTracker()
    tracker.track(T, 0, 1)
    tracker.track(T, 1, 1)
    tracker.complete(ref(1, 1))
    tracker.forget([(T, 1), (T, 9)])
    assert tracker.committable() == {}, "a forgotten partition is never reported"
    assert tracker.pending_total() == 1 and tracker.position(T, 1) is None
    tracker.complete(ref(1, 1))  # late completion from the old assignment: ignored
    assert tracker.partitions() == {(T, 0)}
    # Re-assigned later, the partition starts afresh (possibly below its old position).
    assert tracker.track(T, 1, 0)
    tracker.complete(ref(0, 1))
    assert tracker.committable() == {(T, 1): 1}


def test_a_batch_tracks_what_completes_later_and_sees_the_rest() -> None:
    tracker = OffsetTracker()
    tracker.track_batch((T, 0), [5, 7], (3, 9))  # 3, 4, 6, 8, 9 needed nothing
    assert tracker.pending_total() == 2 and tracker.position(T, 0) == 5
    assert tracker.committable() == {}, "3 and 4 are done but 5 holds the commit"
    tracker.complete(ref(5))
    assert tracker.committable() == {(T, 0): 7}
    tracker.complete(ref(7))
    assert tracker.committable() == {(T, 0): 10}, "past the seen-only tail"


def test_a_batch_of_records_needing_nothing_commits_past_them() -> None:
    tracker = OffsetTracker()
    tracker.track_batch((T, 0), [], (40, 44))
    assert tracker.committable() == {(T, 0): 45}
    tracker.track_batch((T, 0), [], (50, 50))
    assert tracker.committable() == {(T, 0): 51}
    tracker.track_batch((T, 0), [], (49, 49))  # not above the high-water mark: nothing moves
    assert tracker.committable() == {}


def test_a_batch_ignores_redelivered_offsets() -> None:
    tracker = tracked(3, 4)
    tracker.track_batch((T, 0), [2, 4, 6], (2, 6))
    assert tracker.pending_total() == 3, "2 and 4 were already accounted for"
    tracker.complete_many([ref(3), ref(4), ref(6)])
    assert tracker.committable() == {(T, 0): 7}


# --- the property ----------------------------------------------------------------------------

PARTS = [(T, 0), (T, 1), ("unsubscribes", 0)]


class OffsetMachine(RuleBasedStateMachine):
    """Random tracks (with gaps), completions in any order, commits and forgets.

    Invariants: a reported position never passes an incomplete tracked record, never goes
    back, and is exactly the first incomplete record (or last + 1) once reported; pending
    counts match the model.
    """

    def __init__(self) -> None:
        super().__init__()
        self.tracker = OffsetTracker()
        self.tracked: dict[tuple[str, int], list[int]] = {}
        self.done: dict[tuple[str, int], set[int]] = {}
        self.reported: dict[tuple[str, int], int] = {}

    def incomplete(self, part: tuple[str, int]) -> list[int]:
        return [o for o in self.tracked.get(part, []) if o not in self.done[part]]

    @rule(part=st.sampled_from(PARTS), gap=st.integers(0, 3), start=st.integers(0, 50))
    def track(self, part: tuple[str, int], gap: int, start: int) -> None:
        offsets = self.tracked.setdefault(part, [])
        self.done.setdefault(part, set())
        offset = offsets[-1] + 1 + gap if offsets else start
        assert self.tracker.track(*part, offset)
        offsets.append(offset)

    @rule(
        part=st.sampled_from(PARTS),
        start=st.integers(0, 50),
        steps=st.lists(st.tuples(st.integers(0, 3), st.booleans()), min_size=1, max_size=8),
    )
    def consume_batch(
        self, part: tuple[str, int], start: int, steps: list[tuple[int, bool]]
    ) -> None:
        """A consumed batch: each record, after a gap, completes later or needed nothing."""
        offsets = self.tracked.setdefault(part, [])
        done = self.done.setdefault(part, set())
        offset = offsets[-1] if offsets else start - 1
        later: list[int] = []
        for gap, completes_later in steps:
            offset += 1 + gap
            offsets.append(offset)
            if completes_later:
                later.append(offset)
            else:
                done.add(offset)
        self.tracker.track_batch(part, later, (offsets[-len(steps)], offset))

    @precondition(lambda self: any(self.incomplete(p) for p in self.tracked))
    @rule(data=st.data())
    def complete(self, data: st.DataObject) -> None:
        part = data.draw(st.sampled_from([p for p in self.tracked if self.incomplete(p)]))
        batch = data.draw(
            st.lists(st.sampled_from(self.incomplete(part)), min_size=1, max_size=4, unique=True)
        )
        refs = [EventRef(part[0], part[1], o) for o in batch]
        if len(refs) == 1:
            self.tracker.complete(refs[0])
        else:
            self.tracker.complete_many(refs)
        self.done[part].update(batch)

    @rule(part=st.sampled_from(PARTS), offset=st.integers(0, 200))
    def stray_completion(self, part: tuple[str, int], offset: int) -> None:
        # Completing something untracked or already done must change nothing.
        if offset in self.incomplete(part):
            return
        self.tracker.complete(EventRef(part[0], part[1], offset))

    @rule()
    def commit(self) -> None:
        for part, position in self.tracker.committable().items():
            assert part in self.tracked
            assert position > self.reported.get(part, self.tracked[part][0]), "went back"
            pending = self.incomplete(part)
            expected = pending[0] if pending else self.tracked[part][-1] + 1
            assert position == expected
            self.reported[part] = position

    @rule(parts=st.sets(st.sampled_from(PARTS), min_size=1, max_size=2))
    def forget(self, parts: set[tuple[str, int]]) -> None:
        self.tracker.forget(parts)
        for part in parts:
            self.tracked.pop(part, None)
            self.done.pop(part, None)
            self.reported.pop(part, None)

    @invariant()
    def never_past_an_incomplete_record(self) -> None:
        for part, position in self.reported.items():
            assert all(o >= position for o in self.incomplete(part))

    @invariant()
    def pending_counts_match(self) -> None:
        total = 0
        for part in PARTS:
            count = len(self.incomplete(part))
            assert self.tracker.pending(*part) == count
            total += count
        assert self.tracker.pending_total() == total

    def teardown(self) -> None:
        # Completing everything left lets every partition reach its end.
        for part in list(self.tracked):
            self.tracker.complete_many(EventRef(*part, o) for o in self.incomplete(part))
            self.done[part].update(self.tracked[part])
        self.commit()
        for part, offsets in self.tracked.items():
            assert self.tracker.position(*part) == offsets[-1] + 1
            assert self.reported.get(part) == offsets[-1] + 1
        assert self.tracker.pending_total() == 0


TestOffsetMachine = OffsetMachine.TestCase


# --- batches that complete out of order (several POSTs in flight per destination) -----------

# Four batches cut from two partitions in arrival order, as the batcher cuts them; offsets
# 0..15 of each partition, batch i taking offsets 4i..4i+3 of both.
BATCHES = [[ref(o, p) for p in (0, 1) for o in range(4 * i, 4 * i + 4)] for i in range(4)]


def tracked_batches() -> OffsetTracker:
    tracker = OffsetTracker()
    for partition in (0, 1):
        tracker.track_batch((T, partition), list(range(16)), (0, 15))
    return tracker


# (order the batches finish in, position of both partitions after each)
OUT_OF_ORDER = [
    ([0, 1, 2, 3], [4, 8, 12, 16]),
    ([3, 2, 1, 0], [0, 0, 0, 16]),
    ([1, 0, 3, 2], [0, 8, 8, 16]),
    ([2, 0, 3, 1], [0, 4, 4, 16]),
]


@pytest.mark.parametrize(("order", "positions"), OUT_OF_ORDER)
def test_batches_finishing_out_of_order_commit_below_the_lowest_unfinished(
    order: list[int], positions: list[int]
) -> None:
    tracker = tracked_batches()
    for batch, position in zip(order, positions, strict=True):
        tracker.complete_many(BATCHES[batch])
        assert tracker.position(T, 0) == tracker.position(T, 1) == position


@given(st.permutations(range(4)))
def test_any_finishing_order_commits_exactly_the_finished_prefix(order: list[int]) -> None:
    tracker = tracked_batches()
    finished: set[int] = set()
    for batch in order:
        tracker.complete_many(BATCHES[batch])
        finished.add(batch)
        prefix = next((i for i in range(4) if i not in finished), 4)
        committable = tracker.committable()
        for partition in (0, 1):
            assert tracker.position(T, partition) == 4 * prefix
            assert committable.get((T, partition), 4 * prefix) == 4 * prefix
    assert tracker.pending_total() == 0
