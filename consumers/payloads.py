"""CleverTap callback payloads: the event model, the two wire formats and their exact sizes.

Two formats are supported:

* ``legacy`` — the Generic SMTP callback body, byte for byte the shape of the seed document:
  a JSON array holding one ``{"event": kind, "data": [{"e": email, "ts": epoch_s}, ...]}``
  object per callback type present, in the fixed order softbounce, hardbounce, unsubscribe.
* ``v2`` — ``{"version":"v2","events":{"success":[],"failed":[{"type":..,"email":..,"meta":..}]}}``.
  ``meta`` is always present and is ``null`` when the event has none. Why not omit it: CleverTap
  documents ``meta`` as the echo of the ``X-CleverTap_META`` header and answers a whole-batch
  400 "Mandatory parameter missing" for missing parameters, whereas a bad *value* is reported
  per event in ``UNPROCESSED_EVENTS`` ("invalid meta"). A ``null`` therefore costs at most that
  one event (dead-lettered via the partial-success path), never the rest of its batch, and
  every entry keeps the same keys.

Sizes are exact: for a non-empty event list, ::

    len(build_payload(events, fmt)) == PAYLOAD_OVERHEAD[fmt]
        + sum(group_overhead(kind, fmt) for each kind present)
        + sum(event_size(e, fmt) for e in events)

``event_size`` counts one separating comma per event. The first event of each legacy group
needs none, but its comma pays for the comma between that group and the previous one; the
single surplus comma (first group) is taken off ``PAYLOAD_OVERHEAD``. ``payload_size`` applies
the formula (and handles the empty list). Strings must be valid Unicode (no lone surrogates,
which is what Avro decoding yields); ``ts`` must fit in 64 bits. orjson rejects anything else.

Pure module: stdlib + orjson only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal, NamedTuple

import orjson

CallbackType = Literal["softbounce", "hardbounce", "unsubscribe"]
Destination = Literal["bounce", "unsubscribe"]
PayloadFormat = Literal["legacy", "v2"]

CALLBACK_TYPES: Final[tuple[CallbackType, ...]] = ("softbounce", "hardbounce", "unsubscribe")
PAYLOAD_FORMATS: Final[tuple[PayloadFormat, ...]] = ("legacy", "v2")

_DESTINATIONS: Final[Mapping[str, Destination]] = {
    "softbounce": "bounce",
    "hardbounce": "bounce",
    "unsubscribe": "unsubscribe",
}
V2_TYPES: Final[Mapping[CallbackType, str]] = {
    "softbounce": "soft_bounce",
    "hardbounce": "hard_bounce",
    "unsubscribe": "unsubscribed",
}


class EventRef(NamedTuple):
    """The Kafka record an event came from (what its offset completion refers to).

    A NamedTuple, not a dataclass: refs are dict keys on the hot path and tuples hash in C.
    """

    topic: str
    partition: int
    offset: int


@dataclass(slots=True)
class CallbackEvent:
    """One callback to send. ``email`` and ``meta`` stay out of ``repr`` (PII, attribution)."""

    event_id: str
    kind: CallbackType
    email: str = field(repr=False)
    ts: int  # epoch seconds
    meta: str | None = field(repr=False)
    ref: EventRef
    event_time_ms: int


def destination_of(kind: CallbackType) -> Destination:
    """Bounces (soft and hard) go to the bounce URL, unsubscribes to the unsubscribe URL."""
    return _DESTINATIONS[kind]


# --- exact sizes -------------------------------------------------------------------------

_V2_PREFIX: Final = b'{"version":"v2","events":{"success":[],"failed":['
_V2_SUFFIX: Final = b"]}}"

# The surplus comma (see module docstring) is why both overheads are "minus one".
PAYLOAD_OVERHEAD: Final[Mapping[PayloadFormat, int]] = {
    "legacy": len(b"[]") - 1,
    "v2": len(_V2_PREFIX) + len(_V2_SUFFIX) - 1,
}
_LEGACY_GROUP_OVERHEAD: Final[Mapping[str, int]] = {
    kind: len(b'{"event":"",' + b'"data":[]}') + len(kind) for kind in CALLBACK_TYPES
}
# {"e":<email>,"ts":<ts>} plus the separating comma.
_LEGACY_ITEM_FIXED: Final = len(b'{"e":,"ts":}') + 1
# {"type":"<t>","email":<email>,"meta":<meta>} plus the separating comma.
_V2_ITEM_FIXED: Final[Mapping[str, int]] = {
    kind: len(b'{"type":"","email":,"meta":}') + len(v2) + 1 for kind, v2 in V2_TYPES.items()
}
_NULL_LEN: Final = len(b"null")


def json_str_len(text: str) -> int:
    """Bytes orjson emits for ``text`` as a JSON string, quotes included.

    Fast path (the common e-mail): printable ASCII without ``"`` or ``\\`` is emitted verbatim.
    Anything else (escapes, UTF-8 multi-byte) asks orjson itself, so the answer stays exact.
    """
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return len(text) + 2
    return len(orjson.dumps(text))


def group_overhead(kind: CallbackType, fmt: PayloadFormat) -> int:
    """Bytes a callback type's group adds once when present (legacy only; v2 has no groups)."""
    return _LEGACY_GROUP_OVERHEAD[kind] if fmt == "legacy" else 0


def event_size(event: CallbackEvent, fmt: PayloadFormat) -> int:
    """Exact bytes ``event`` adds to a payload of format ``fmt``, its separating comma included."""
    email = event.email  # json_str_len's fast path, inlined: this runs once per record
    if email.isascii() and email.isprintable() and '"' not in email and "\\" not in email:
        email_len = len(email) + 2
    else:
        email_len = len(orjson.dumps(email))
    if fmt == "legacy":
        return _LEGACY_ITEM_FIXED + email_len + len(str(event.ts))
    meta = event.meta
    meta_len = _NULL_LEN if meta is None else json_str_len(meta)
    return _V2_ITEM_FIXED[event.kind] + email_len + meta_len


def payload_size(events: Sequence[CallbackEvent], fmt: PayloadFormat) -> int:
    """``len(build_payload(events, fmt))`` computed without building it."""
    if not events:
        return PAYLOAD_OVERHEAD[fmt] + 1
    kinds = {e.kind for e in events}
    total = PAYLOAD_OVERHEAD[fmt] + sum(group_overhead(k, fmt) for k in kinds)
    return total + sum(event_size(e, fmt) for e in events)


# --- building ----------------------------------------------------------------------------


def build_payload(events: Sequence[CallbackEvent], fmt: PayloadFormat) -> bytes:
    """The POST body for ``events`` (compact JSON, events in batch order within a type)."""
    if fmt == "legacy":
        return _build_legacy(events)
    if fmt == "v2":
        return _build_v2(events)
    raise ValueError(f"unknown payload format {fmt!r}")


def _build_legacy(events: Sequence[CallbackEvent]) -> bytes:
    # One comprehension per type present (0.27 -> 0.21 ms for 1000 events): one payload per
    # POST, and with `--delivery thread` under the GIL the consumer loop needs.
    kinds = {e.kind for e in events}
    body = [
        {"event": kind, "data": [{"e": e.email, "ts": e.ts} for e in events if e.kind == kind]}
        for kind in CALLBACK_TYPES
        if kind in kinds
    ]
    return orjson.dumps(body)


def _build_v2(events: Sequence[CallbackEvent]) -> bytes:
    failed = [{"type": V2_TYPES[e.kind], "email": e.email, "meta": e.meta} for e in events]
    # One orjson call for the events; the fixed envelope is spliced around it.
    return _V2_PREFIX + orjson.dumps(failed)[1:-1] + _V2_SUFFIX
