"""Per-destination batching of callback events, cut by count, bytes and linger time.

One ``Batcher`` per destination. ``add`` returns a batch as soon as a count or byte limit cuts
it; ``due`` returns the open batch once its linger expired; ``flush`` closes it now. Every
returned ``Batch`` holds at least one event, at most ``max_events`` events, unique by
``event_id``, and ``payload_bytes == len(build_payload(batch.events, fmt)) <= max_bytes`` —
except a single event that alone exceeds ``max_bytes`` (see ``fits_alone``): it is sent alone
in a batch of its own rather than silently dropped; callers that prefer to dead-letter such
events check ``fits_alone`` before ``add``.

Duplicates (same ``event_id``) are sent once. A duplicate of an event in the open batch adds
only its ``EventRef`` to that batch; a duplicate of an event in a batch already handed out
(in flight) is attached to that batch through a shared ``InFlightIds`` so its offset completes
together with the original. ``Batch.refs`` therefore lists every Kafka record a batch
accounts for: complete all of them (plus ``InFlightIds.release(batch)``) when the batch is done.

Pure module: no I/O, the clock is injected (monotonic seconds).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace
from operator import attrgetter
from typing import Final

from bouncewire.consumers.payloads import (
    CALLBACK_TYPES,
    PAYLOAD_OVERHEAD,
    CallbackEvent,
    CallbackType,
    Destination,
    EventRef,
    PayloadFormat,
    destination_of,
    event_size,
    group_overhead,
)

MAX_EVENTS_CAP: Final = 1000  # CleverTap answers 400 "More than allowed events" above this.
# No byte limit is documented; 1 MB stays under common proxy defaults (nginx: 1 MiB).
DEFAULT_MAX_BYTES: Final = 1_000_000
DEFAULT_LINGER_S: Final = 0.5

Partition = tuple[str, int]
_event_id = attrgetter("event_id")


@dataclass(slots=True)
class Batch:
    """A closed batch: POST ``events``, then complete every ref in ``refs``."""

    destination: Destination
    events: list[CallbackEvent]  # unique by event_id, in arrival order
    refs: list[EventRef]  # every record covered, duplicates included, in arrival order
    payload_bytes: int  # exactly len(build_payload(events, fmt))
    created_at: float  # clock() when the first event entered the batch


class InFlightIds:
    """Event ids of batches handed out and not yet finished, shared by the Batchers.

    A ``Batcher`` registers each batch it closes. The runtime calls ``release(batch)`` once the
    batch is delivered, dead-lettered or abandoned, and completes the refs it returns (records
    that duplicated one of the batch's events while it was in flight).
    """

    __slots__ = ("_ids", "_attached")

    def __init__(self) -> None:
        self._ids: set[str] = set()
        self._attached: dict[str, list[EventRef]] = {}

    @property
    def ids(self) -> AbstractSet[str]:
        """The live set of in-flight event ids (read-only use: ``Batcher`` tests membership)."""
        return self._ids

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def attached(self) -> int:
        """Duplicate records waiting for their in-flight original (a gauge, not hot path)."""
        return sum(len(refs) for refs in self._attached.values())

    def register(self, batch: Batch) -> None:
        self._ids.update(map(_event_id, batch.events))

    def attach(self, event: CallbackEvent) -> bool:
        """If ``event`` duplicates an in-flight one, remember its ref and return True."""
        if event.event_id not in self._ids:
            return False
        self._attached.setdefault(event.event_id, []).append(event.ref)
        return True

    def release(self, batch: Batch) -> list[EventRef]:
        """Forget ``batch``'s ids; return the refs of duplicates attached while it flew."""
        event_ids = list(map(_event_id, batch.events))
        self._ids.difference_update(event_ids)
        attached = self._attached
        if not attached:  # the common case: no duplicate arrived while the batch flew
            return []
        extra: list[EventRef] = []
        for event_id in event_ids:
            extra.extend(attached.pop(event_id, ()))
        return extra


class Batcher:
    """Accumulates one destination's events into batches (see the module docstring)."""

    __slots__ = (
        "destination", "fmt", "max_events", "max_bytes", "linger_s",
        "_clock", "_in_flight", "_in_flight_ids", "_accepts", "_events", "_refs", "_ids",
        "_dup_ids", "_kinds", "_bytes", "_created_at", "_full",
    )  # fmt: skip

    def __init__(
        self,
        destination: Destination,
        *,
        fmt: PayloadFormat,
        max_events: int = MAX_EVENTS_CAP,
        max_bytes: int = DEFAULT_MAX_BYTES,
        linger_s: float = DEFAULT_LINGER_S,
        clock: Callable[[], float] = time.monotonic,
        in_flight: InFlightIds | None = None,
    ) -> None:
        _check_limits(fmt, max_events, max_bytes, linger_s)
        self.destination: Final = destination
        self.fmt: Final = fmt
        self.max_events: Final = max_events
        self.max_bytes: Final = max_bytes
        self.linger_s: Final = linger_s
        self._clock = clock
        self._in_flight = in_flight
        self._in_flight_ids: AbstractSet[str] = frozenset() if in_flight is None else in_flight.ids
        self._accepts = frozenset(k for k in CALLBACK_TYPES if destination_of(k) == destination)
        self._reset()

    def _reset(self) -> None:
        self._events: list[CallbackEvent] = []
        self._refs: list[EventRef] = []
        self._ids: set[str] = set()
        self._dup_ids: dict[EventRef, str] = {}  # refs that duplicated an open event
        self._kinds: set[CallbackType] = set()
        self._bytes = 0
        self._created_at = 0.0
        self._full = False  # full but not yet returned: due() hands it out at once

    @property
    def open_events(self) -> int:
        return len(self._events)

    @property
    def open_refs(self) -> int:
        return len(self._refs)

    @property
    def open_bytes(self) -> int:
        """Exact payload size of the open batch (0 when empty)."""
        return self._bytes

    @property
    def deadline(self) -> float | None:
        """Clock time when the open batch is due (may be past: poll with no wait then);
        None when no batch is open."""
        if not self._events:
            return None
        if self._full:
            return self._created_at
        return self._created_at + self.linger_s

    def fits_alone(self, event: CallbackEvent) -> bool:
        """Whether ``event`` alone makes a payload within ``max_bytes``."""
        alone = PAYLOAD_OVERHEAD[self.fmt] + group_overhead(event.kind, self.fmt)
        return alone + event_size(event, self.fmt) <= self.max_bytes

    def add(self, event: CallbackEvent) -> Batch | None:
        """Take ``event``; return a batch if a count or byte limit closed one."""
        # Hot path (once per record): locals and inlined appends on purpose.
        event_id = event.event_id
        if event_id in self._ids:
            self._refs.append(event.ref)
            self._dup_ids[event.ref] = event_id
            return None
        # The set test first: attach() is a call, and a duplicate of an in-flight event is rare.
        if event_id in self._in_flight_ids and self._in_flight is not None:
            self._in_flight.attach(event)
            return None
        kind = event.kind
        if kind not in self._accepts:
            raise ValueError(f"{kind} events do not belong to the {self.destination} batcher")
        size = event_size(event, self.fmt)
        kinds = self._kinds
        grow = size if kind in kinds else size + group_overhead(kind, self.fmt)
        cut = None
        if self._events:
            if self._bytes + grow > self.max_bytes:
                cut = self._close()
                kinds = self._kinds
                grow = size + group_overhead(kind, self.fmt)  # first of its type again
                self._open()
        else:
            self._open()
        events = self._events
        events.append(event)
        self._refs.append(event.ref)
        self._ids.add(event_id)
        kinds.add(kind)
        self._bytes += grow
        if len(events) >= self.max_events or self._bytes >= self.max_bytes:
            # Nothing more can join. If this call already closed a batch (the new event alone
            # fills max_bytes), this one waits for due(), which returns it at once.
            if cut is None:
                return self._close()
            self._full = True
        return cut

    def _open(self) -> None:
        self._created_at = self._clock()
        self._bytes = PAYLOAD_OVERHEAD[self.fmt]

    def due(self) -> Batch | None:
        """The open batch if its linger expired (or it is full), else None."""
        deadline = self.deadline
        if deadline is None or self._clock() < deadline:
            return None
        return self._close()

    def flush(self) -> Batch | None:
        """Close the open batch now (drain, revoke); None when nothing is open."""
        return self._close() if self._events else None

    def _close(self) -> Batch:
        batch = Batch(self.destination, self._events, self._refs, self._bytes, self._created_at)
        self._reset()
        if self._in_flight is not None:
            self._in_flight.register(batch)
        return batch

    def drop_partitions(self, parts: Iterable[Partition]) -> list[EventRef]:
        """Remove the open batch's records of ``parts`` (revoked/lost); return their refs.

        An event whose own record is dropped but which a kept record duplicates stays in the
        batch, now carrying that kept record's ref. Rare path: rebuilds the open batch.
        """
        drop = set(parts)
        dropped = [r for r in self._refs if (r.topic, r.partition) in drop]
        if not dropped:
            return []
        kept_refs = [r for r in self._refs if (r.topic, r.partition) not in drop]
        owner = {e.ref: e.event_id for e in self._events}
        owner.update(self._dup_ids)
        # The first kept record of each id becomes its event's ref (originals precede dups).
        carrier: dict[str, EventRef] = {}
        for ref in kept_refs:
            carrier.setdefault(owner[ref], ref)
        dup_ids = {
            r: i
            for r, i in self._dup_ids.items()
            if i in carrier and carrier[i] != r and (r.topic, r.partition) not in drop
        }
        events = [
            e if carrier[e.event_id] == e.ref else replace(e, ref=carrier[e.event_id])
            for e in self._events
            if e.event_id in carrier
        ]
        self._rebuild(events, kept_refs, dup_ids)
        return dropped

    def _rebuild(
        self, events: list[CallbackEvent], refs: list[EventRef], dup_ids: dict[EventRef, str]
    ) -> None:
        created_at = self._created_at
        self._reset()
        if not events:
            return
        self._created_at = created_at
        self._events = events
        self._refs = refs
        self._dup_ids = dup_ids
        self._ids = {e.event_id for e in events}
        kinds = {e.kind for e in events}
        self._kinds = set(kinds)
        size = PAYLOAD_OVERHEAD[self.fmt] + sum(group_overhead(k, self.fmt) for k in kinds)
        self._bytes = size + sum(event_size(e, self.fmt) for e in events)
        self._full = len(events) >= self.max_events or self._bytes >= self.max_bytes


def _check_limits(fmt: PayloadFormat, max_events: int, max_bytes: int, linger_s: float) -> None:
    if fmt not in PAYLOAD_OVERHEAD:
        raise ValueError(f"unknown payload format {fmt!r}")
    if not 1 <= max_events <= MAX_EVENTS_CAP:
        raise ValueError(f"max_events must be within 1..{MAX_EVENTS_CAP}, got {max_events}")
    if max_bytes < 1:
        raise ValueError(f"max_bytes must be positive, got {max_bytes}")
    if not linger_s >= 0:  # also rejects NaN
        raise ValueError(f"linger_s must be >= 0, got {linger_s}")
