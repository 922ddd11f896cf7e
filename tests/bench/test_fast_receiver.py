"""The throughput sink counts a POST's events without parsing it: the count must equal the
number of events in any payload bouncewire builds, whatever the addresses and meta hold."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bench.fast_receiver import Tally
from bouncewire.consumers.payloads import CALLBACK_TYPES, CallbackEvent, EventRef, build_payload

# Addresses and meta that try to look like the keys being counted.
_TRICKY = ['{"e":', '"email":', 'a"b@x.org', "\\", "lat1@x.org", "é@ü.de", "lat"]
texts = st.one_of(st.sampled_from(_TRICKY), st.text(max_size=20))


def _event(i: int, kind: str, email: str, meta: str | None) -> CallbackEvent:
    return CallbackEvent(f"id-{i}", kind, email, 1_700_000_000, meta, EventRef("t", 0, i), 0)  # type: ignore[arg-type]


@given(
    st.lists(st.tuples(st.sampled_from(CALLBACK_TYPES), texts, st.none() | texts), min_size=1),
    st.sampled_from(["legacy", "v2"]),
)
def test_counts_every_event_of_a_payload(
    items: list[tuple[str, str, str | None]], fmt: str
) -> None:
    events = [_event(i, kind, email, meta) for i, (kind, email, meta) in enumerate(items)]
    tally = Tally()
    tally.record(build_payload(events, fmt))  # type: ignore[arg-type]
    assert (tally.events, tally.posts) == (len(events), 1)


def test_latency_addresses_are_timed_from_their_stamp() -> None:
    stamped = _event(0, "hardbounce", "lat1000@x.org", None)
    plain = _event(1, "hardbounce", "someone@x.org", None)
    tally = Tally()
    tally.record(build_payload([stamped, plain], "legacy"))
    assert tally.events == 2
    assert len(tally.latencies_ns) == 1
    assert tally.latencies_ns[0] == tally.last_ns - 1000
