"""Per-partition contiguous completion tracking for at-least-once offset commits.

Every record handed to the pipeline is ``track``-ed (offsets rise per partition and may skip:
compaction, transaction markers). A record is ``complete`` once delivered or dead-lettered, in
any order. The committable position of a partition is its first incomplete tracked offset, or
the last tracked offset + 1 when none is incomplete: untracked gaps never hold progress back,
and no commit ever passes an incomplete record.

Cost: O(1) amortised per record — a deque of tracked offsets plus a set of incomplete ones;
completions pop the deque from the left while its head is complete.

Completions for partitions or offsets not tracked (forgotten after a revoke, already
committed, never seen) are ignored. After ``forget`` and a later re-assignment, a late
completion from the old assignment may mark the re-delivered record complete: that is sound,
because completion means the record's event was delivered or dead-lettered either way.

Pure module, single-threaded (the consumer loop owns it).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from consumers.payloads import EventRef

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

    def complete(self, ref: EventRef) -> None:
        """Mark the record ``ref`` delivered or dead-lettered."""
        key = (ref.topic, ref.partition)
        if self._mark(key, ref.offset) and self._parts[key].advance():
            self._dirty.add(key)

    def complete_many(self, refs: Iterable[EventRef]) -> None:
        """``complete`` for many refs; advances each touched partition once."""
        touched: set[Partition] = set()
        for ref in refs:
            key = (ref.topic, ref.partition)
            if self._mark(key, ref.offset):
                touched.add(key)
        for key in touched:
            if self._parts[key].advance():
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
