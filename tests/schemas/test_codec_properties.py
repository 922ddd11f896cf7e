"""Properties of the codec: any bytes fail only with DecodeError; valid records round-trip."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bouncewire.schemas import KINDS, Codec, DecodeError, SchemaStore
from tests.schemas.schema_helpers import mock_registry, records, spec_read_single_object

STORE = SchemaStore.load()
PLAIN = Codec(STORE)
WITH_REGISTRY = Codec(STORE, mock_registry())
CODECS = {"single_object": PLAIN, "registry": WITH_REGISTRY}

known_headers = st.sampled_from(
    [version.single_object_header for version in STORE]
    + [b"\xc3\x01", b"\xc3", b"\x00", b"\x00\x00\x00\x00\x01", b"\x00\x00\x00\x00\x02"]
)
any_message = st.one_of(
    st.binary(max_size=300), st.tuples(known_headers, st.binary(max_size=300)).map(b"".join)
)


def kinds_and_records() -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
    return st.sampled_from(KINDS).flatmap(
        lambda kind: st.tuples(st.just(kind), records(STORE.latest(kind).declaration))
    )


@pytest.mark.parametrize("codec_name", sorted(CODECS))
@given(data=any_message)
def test_any_bytes_decode_or_raise_decode_error_only(codec_name: str, data: bytes) -> None:
    try:
        event = CODECS[codec_name].decode(data)
    except DecodeError as error:
        assert error.reason in {
            "empty", "unknown_framing", "unknown_fingerprint", "truncated", "invalid_body",
            "unknown_schema_id", "no_registry",
        }  # fmt: skip
    else:
        assert event.kind in KINDS


@pytest.mark.parametrize("codec_name", sorted(CODECS))
@given(kind_and_record=kinds_and_records())
def test_valid_records_round_trip(codec_name: str, kind_and_record: tuple[str, Any]) -> None:
    kind, record = kind_and_record
    codec = CODECS[codec_name]
    data = codec.encode(kind, record)
    event = codec.decode(data)
    assert (event.kind, event.record, event.version) == (kind, record, STORE.latest(kind).version)
    assert codec.encode(kind, event.record) == data


@given(kind_and_record=kinds_and_records())
def test_a_spec_only_reader_agrees(kind_and_record: tuple[str, Any]) -> None:
    kind, record = kind_and_record
    decoded = spec_read_single_object(PLAIN.encode(kind, record))
    assert str(decoded["event_id"]) == record["event_id"].lower()
    assert {k: v for k, v in decoded.items() if k not in ("event_id", "event_time")} == {
        k: v for k, v in record.items() if k not in ("event_id", "event_time")
    }


@pytest.mark.parametrize("codec_name", sorted(CODECS))
@given(kind_and_record=kinds_and_records(), data=st.data())
def test_every_truncation_is_a_decode_error(
    codec_name: str, kind_and_record: tuple[str, Any], data: st.DataObject
) -> None:
    kind, record = kind_and_record
    codec = CODECS[codec_name]
    message = codec.encode(kind, record)
    cut = data.draw(st.integers(0, len(message) - 1))
    with pytest.raises(DecodeError) as raised:
        codec.decode(message[:cut])
    assert raised.value.reason in {"empty", "truncated"}
