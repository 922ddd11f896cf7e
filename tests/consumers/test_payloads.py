"""Callback payloads: byte-exact against the seed's examples, exact size arithmetic."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bouncewire.consumers.payloads import (
    CALLBACK_TYPES,
    PAYLOAD_FORMATS,
    PAYLOAD_OVERHEAD,
    CallbackEvent,
    PayloadFormat,
    build_payload,
    destination_of,
    event_size,
    group_overhead,
    json_str_len,
    payload_size,
)
from tests.consumers.strategies import callback_events, make_event, unicode_text

SEED_BOUNCES = (
    b'[{"event":"softbounce","data":[{"e":"email1@emailprovider.com","ts":1435322805},'
    b'{"e":"email2@emailprovider2.com","ts":1435322805}]},'
    b'{"event":"hardbounce","data":[{"e":"email3@emailprovider.com","ts":1435322805}]}]'
)
SEED_UNSUBSCRIBES = (
    b'[{"event":"unsubscribe","data":[{"e":"email1@emailprovider.com","ts":1504632929},'
    b'{"e":"email2@emailprovider2.com","ts":1500630929}]}]'
)


def test_legacy_matches_the_seed_bounce_example() -> None:
    events = [
        make_event("1", "softbounce", "email1@emailprovider.com", ts=1435322805),
        make_event("2", "softbounce", "email2@emailprovider2.com", ts=1435322805),
        make_event("3", "hardbounce", "email3@emailprovider.com", ts=1435322805),
    ]
    assert build_payload(events, "legacy") == SEED_BOUNCES


def test_legacy_matches_the_seed_unsubscribe_example() -> None:
    events = [
        make_event("1", "unsubscribe", "email1@emailprovider.com", ts=1504632929),
        make_event("2", "unsubscribe", "email2@emailprovider2.com", ts=1500630929),
    ]
    assert build_payload(events, "legacy") == SEED_UNSUBSCRIBES


def test_legacy_groups_in_fixed_type_order_keeping_batch_order_within_a_type() -> None:
    events = [
        make_event("1", "hardbounce", "h1@x.io", ts=3),
        make_event("2", "softbounce", "s1@x.io", ts=2),
        make_event("3", "hardbounce", "h2@x.io", ts=1),
    ]
    assert build_payload(events, "legacy") == (
        b'[{"event":"softbounce","data":[{"e":"s1@x.io","ts":2}]},'
        b'{"event":"hardbounce","data":[{"e":"h1@x.io","ts":3},{"e":"h2@x.io","ts":1}]}]'
    )


def test_v2_shape_with_meta_and_null_meta() -> None:
    events = [
        make_event("1", "hardbounce", "a@x.io", meta="m-1"),
        make_event("2", "softbounce", "b@x.io"),
        make_event("3", "unsubscribe", "c@x.io", meta="m-3"),
    ]
    assert build_payload(events, "v2") == (
        b'{"version":"v2","events":{"success":[],"failed":['
        b'{"type":"hard_bounce","email":"a@x.io","meta":"m-1"},'
        b'{"type":"soft_bounce","email":"b@x.io","meta":null},'
        b'{"type":"unsubscribed","email":"c@x.io","meta":"m-3"}]}}'
    )


@pytest.mark.parametrize(
    ("fmt", "empty"),
    [("legacy", b"[]"), ("v2", b'{"version":"v2","events":{"success":[],"failed":[]}}')],
)
def test_empty_payloads(fmt: PayloadFormat, empty: bytes) -> None:
    assert build_payload([], fmt) == empty
    assert payload_size([], fmt) == len(empty)


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown payload format"):
        build_payload([make_event("1")], "v3")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "destination"),
    [("softbounce", "bounce"), ("hardbounce", "bounce"), ("unsubscribe", "unsubscribe")],
)
def test_destination_of(kind: str, destination: str) -> None:
    assert destination_of(kind) == destination  # type: ignore[arg-type]


def test_repr_hides_email_and_meta() -> None:
    event = make_event("id-1", email="secret.person@example.com", meta="campaign-token-xyz")
    assert "secret.person" not in repr(event)
    assert "campaign-token-xyz" not in repr(event)
    assert "id-1" in repr(event)


@pytest.mark.parametrize(
    "text", ["plain@example.com", 'quo"te@x', "back\\slash", "tab\there", "é@ü.de", "\x7f", ""]
)
def test_json_str_len_table(text: str) -> None:
    assert json_str_len(text) == len(orjson.dumps(text))


@given(unicode_text)
def test_json_str_len_is_exact(text: str) -> None:
    assert json_str_len(text) == len(orjson.dumps(text))


@given(st.lists(callback_events(), max_size=30), st.sampled_from(PAYLOAD_FORMATS))
def test_sizes_add_up_to_the_payload_length(
    events: list[CallbackEvent], fmt: PayloadFormat
) -> None:
    payload = build_payload(events, fmt)
    assert payload_size(events, fmt) == len(payload)
    if events:
        kinds = {e.kind for e in events}
        parts = PAYLOAD_OVERHEAD[fmt] + sum(group_overhead(k, fmt) for k in kinds)
        assert parts + sum(event_size(e, fmt) for e in events) == len(payload)


@given(st.lists(callback_events(), max_size=30))
def test_legacy_round_trips_to_the_seed_model(events: list[CallbackEvent]) -> None:
    expected = [
        {"event": kind, "data": [{"e": e.email, "ts": e.ts} for e in events if e.kind == kind]}
        for kind in CALLBACK_TYPES
        if any(e.kind == kind for e in events)
    ]
    payload = build_payload(events, "legacy")
    assert orjson.loads(payload) == expected
    assert orjson.dumps(expected) == payload  # compact: no spaces, no other keys


@given(st.lists(callback_events(), max_size=30))
def test_v2_round_trips(events: list[CallbackEvent]) -> None:
    types = {
        "softbounce": "soft_bounce",
        "hardbounce": "hard_bounce",
        "unsubscribe": "unsubscribed",
    }
    failed = [{"type": types[e.kind], "email": e.email, "meta": e.meta} for e in events]
    assert orjson.loads(build_payload(events, "v2")) == {
        "version": "v2",
        "events": {"success": [], "failed": failed},
    }
