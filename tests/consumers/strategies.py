"""Hypothesis strategies shared by the consumer-core tests."""

from __future__ import annotations

import itertools
import string

from hypothesis import strategies as st

from bouncewire.consumers.payloads import CALLBACK_TYPES, CallbackEvent, CallbackType, EventRef

# RFC 5322 atext: what a dot-atom local part is made of.
ATEXT = string.ascii_letters + string.digits + "!#$%&'*+-/=?^_`{|}~"
TOPICS = ("send-results", "unsubscribes")

# Valid Unicode (no lone surrogates: Avro-decoded strings never carry them).
unicode_text = st.text(st.characters(blacklist_categories=["Cs"]), max_size=40)


@st.composite
def realistic_emails(draw: st.DrawFn) -> str:
    local = draw(st.text(ATEXT, min_size=1, max_size=64))
    labels = draw(
        st.lists(
            st.text(string.ascii_lowercase + string.digits + "-", min_size=1, max_size=20),
            min_size=1,
            max_size=3,
        )
    )
    tld = draw(st.text(string.ascii_lowercase, min_size=2, max_size=6))
    return f"{local}@{'.'.join(labels)}.{tld}"


# Payload sizing must be exact for anything, not just plausible addresses: quotes, backslashes,
# control characters and multi-byte UTF-8 all take orjson's slow path.
emails = st.one_of(realistic_emails(), unicode_text)
timestamps = st.one_of(st.integers(0, 4_102_444_800), st.integers(-(2**63), 2**63 - 1))
metas = st.one_of(st.none(), unicode_text, st.text(string.ascii_letters + "=:-_", max_size=60))
kinds: st.SearchStrategy[CallbackType] = st.sampled_from(CALLBACK_TYPES)
refs = st.builds(EventRef, st.sampled_from(TOPICS), st.integers(0, 3), st.integers(0, 2**40))


@st.composite
def callback_events(
    draw: st.DrawFn,
    kind: st.SearchStrategy[CallbackType] = kinds,
    event_id: st.SearchStrategy[str] | None = None,
    ref: st.SearchStrategy[EventRef] = refs,
) -> CallbackEvent:
    return CallbackEvent(
        event_id=draw(event_id if event_id is not None else st.uuids().map(str)),
        kind=draw(kind),
        email=draw(emails),
        ts=draw(timestamps),
        meta=draw(metas),
        ref=draw(ref),
        event_time_ms=draw(st.integers(0, 2**45)),
    )


_offsets = itertools.count()


def make_event(
    event_id: str,
    kind: CallbackType = "hardbounce",
    email: str = "user@example.com",
    *,
    ts: int = 1_435_322_805,
    meta: str | None = None,
    ref: EventRef | None = None,
) -> CallbackEvent:
    """A plain event for table tests; the ref defaults to a fresh record of partition 0."""
    return CallbackEvent(
        event_id=event_id,
        kind=kind,
        email=email,
        ts=ts,
        meta=meta,
        ref=ref if ref is not None else EventRef("send-results", 0, next(_offsets)),
        event_time_ms=ts * 1000,
    )
