"""Per-partition contiguous completion tracking for at-least-once offset commits.

A record that will complete later (queued for a callback, being dead-lettered) is ``track``-ed;
offsets rise per partition and may skip (compaction, transaction markers). A record that needs
nothing is only seen (``track_batch``'s ``seen`` span): it moves the high-water mark and never
holds progress back. A tracked record is ``complete`` once delivered or dead-lettered, in any
order. The committable position of a partition is its first incomplete tracked offset, or the
highest offset seen + 1 when none is incomplete, so no commit ever passes an incomplete record.

Cost: O(1) amortised per record — a deque of tracked offsets plus a set of incomplete ones;
completions pop the deque from the left while its head is complete. ``track_batch`` takes a
consumed batch's offsets per partition in C-level list/set operations (the consumer calls it
once per batch, not once per record: ~0.1 µs instead of ~0.5 µs per record).

Completions for partitions or offsets not tracked (forgotten after a revoke, already
committed, never seen) are ignored. After ``forget`` and a later re-assignment, a late
completion from the old assignment may mark the re-delivered record complete: that is sound,
because completion means the record's event was delivered or dead-lettered either way.

Pure module, single-threaded (the consumer loop owns it).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from bouncewire.consumers.payloads import EventRef

Partition = tuple[str, int]


class _PartitionState:
    __slots__ = ("tracked", "incomplete", "last_tracked", "reported")

    def __init__(self, first_offset: int) -> None:
        self.tracked: deque[int] = deque()  # tracked offsets not yet passed, ascending
        self.incomplete: set[int] = set()
        self.last_tracked = first_offset - 1
        self.reported = first_offset  # last position returned by committable()

    def position(self) -> int:
        """Next offset to commit: nothing below it is incomplete."""
        return self.tracked[0] if self.tracked else self.last_tracked + 1

    def advance(self) -> bool:
        """Drop completed offsets off the head; True when the position moved."""
        tracked, incomplete = self.tracked, self.incomplete
        moved = False
        while tracked and tracked[0] not in incomplete:
            tracked.popleft()
            moved = True
        return moved


class OffsetTracker:
    """Which offset each partition may commit, given the records completed so far."""

    __slots__ = ("_parts", "_dirty", "_pending")

    def __init__(self) -> None:
        self._parts: dict[Partition, _PartitionState] = {}
        self._dirty: set[Partition] = set()
        self._pending = 0

    def track(self, topic: str, partition: int, offset: int) -> bool:
        """Record that ``offset`` entered the pipeline. False (ignored) when not above the last
        tracked offset of its partition: a re-delivered record is already accounted for."""
        key = (topic, partition)
        state = self._parts.get(key)
        if state is None:
            state = self._parts[key] = _PartitionState(offset)
        elif offset <= state.last_tracked:
            return False
        state.tracked.append(offset)
        state.incomplete.add(offset)
        state.last_tracked = offset
        self._pending += 1
        return True

    def track_batch(self, key: Partition, offsets: list[int], seen: tuple[int, int]) -> None:
        """``track`` every offset of ``offsets`` (ascending, all of partition ``key``), then
        move the high-water mark to the batch's last offset. ``seen`` holds the lowest and
        highest offsets the batch had on that partition, tracked or not."""
        lowest_seen, highest_seen = seen
        state = self._parts.get(key)
        if state is None:
            state = self._parts[key] = _PartitionState(lowest_seen)
        if offsets and offsets[0] <= state.last_tracked:  # re-delivered: keep only new ones
            offsets = [o for o in offsets if o > state.last_tracked]
        if offsets:
            state.tracked.extend(offsets)
            state.incomplete.update(offsets)
            self._pending += len(offsets)
        self._see(key, state, highest_seen)

    def _see(self, key: Partition, state: _PartitionState, offset: int) -> None:
        if offset > state.last_tracked:
            state.last_tracked = offset
            if not state.tracked:
                self._dirty.add(key)

    def complete(self, ref: EventRef) -> None:
        """Mark the record ``ref`` delivered or dead-lettered."""
        key = (ref.topic, ref.partition)
        if self._mark(key, ref.offset) and self._parts[key].advance():
            self._dirty.add(key)

    def complete_many(self, refs: Iterable[EventRef]) -> None:
        """``complete`` for many refs; advances each touched partition once."""
        by_partition: dict[Partition, list[int]] = {}
        for topic, partition, offset in refs:
            by_partition.setdefault((topic, partition), []).append(offset)
        for key, offsets in by_partition.items():
            state = self._parts.get(key)
            if state is None:
                continue
            before = len(state.incomplete)
            state.incomplete.difference_update(offsets)
            self._pending -= before - len(state.incomplete)
            if state.advance():
                self._dirty.add(key)

    def _mark(self, key: Partition, offset: int) -> bool:
        state = self._parts.get(key)
        if state is None or offset not in state.incomplete:
            return False
        state.incomplete.remove(offset)
        self._pending -= 1
        return True

    def committable(self) -> dict[Partition, int]:
        """Per partition that advanced since the last call: the next offset to commit."""
        moved: dict[Partition, int] = {}
        for key in self._dirty:
            state = self._parts[key]
            position = state.position()
            if position > state.reported:
                moved[key] = state.reported = position
        self._dirty.clear()
        return moved

    def position(self, topic: str, partition: int) -> int | None:
        """The partition's committable position now (None if untracked), reported or not."""
        state = self._parts.get((topic, partition))
        return None if state is None else state.position()

    def pending(self, topic: str, partition: int) -> int:
        """Incomplete records of one partition."""
        state = self._parts.get((topic, partition))
        return 0 if state is None else len(state.incomplete)

    def pending_total(self) -> int:
        return self._pending

    def oldest_pending(self) -> dict[Partition, int]:
        """Per partition with incomplete records: its lowest incomplete offset."""
        return {key: s.tracked[0] for key, s in self._parts.items() if s.incomplete}

    def partitions(self) -> set[Partition]:
        return set(self._parts)

    def forget(self, parts: Iterable[Partition]) -> None:
        """Drop the state of revoked or lost partitions (nothing of theirs is reported again)."""
        for key in parts:
            state = self._parts.pop(key, None)
            if state is not None:
                self._pending -= len(state.incomplete)
            self._dirty.discard(key)
