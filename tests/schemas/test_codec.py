"""Codec: byte-exact round trips, the single-object header by hand, registry framing, errors."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

from bouncewire.schemas import (
    Codec,
    DecodedEvent,
    DecodeError,
    EncodeError,
    RegistryError,
    SchemaStore,
    UnknownKindError,
)
from tests.schemas.schema_helpers import (
    CountingRegistry,
    avro_schema,
    mock_registry,
    registry_error,
    spec_crc64_avro,
    spec_read_single_object,
    write_body,
)

EVENT_ID = "0b7c8a2e-8f4e-4a57-9f0e-1d2c3b4a5f60"
EVENT_TIME = 1_735_689_600_123
SEND_RESULT: dict[str, Any] = {
    "event_id": EVENT_ID,
    "event_time": EVENT_TIME,
    "email": "John.Doe@example.com",
    "smtp_code": 550,
    "enhanced_code": "5.1.1",
    "smtp_message": "550 5.1.1 The email account that you tried to reach does not exist.",
    "error": None,
    "message_id": "<20250101.abc@mail.example.com>",
    "campaign_id": "cmp-1",
    "meta": "eyJjIjoxfQ==",
    "remote_mta": "gmail-smtp-in.l.google.com",
}
UNSUBSCRIBE: dict[str, Any] = {
    "event_id": str(uuid.UUID(int=7)),
    "event_time": EVENT_TIME,
    "email": "jane@example.org",
    "source": "one_click",
    "campaign_id": None,
    "meta": None,
}
RECORDS = {"send_result": SEND_RESULT, "unsubscribe": UNSUBSCRIBE}


@pytest.fixture(scope="module")
def store() -> SchemaStore:
    return SchemaStore.load()


@pytest.fixture(scope="module")
def codec(store: SchemaStore) -> Codec:
    return Codec(store)


@pytest.mark.parametrize("kind", sorted(RECORDS))
def test_round_trip_is_byte_exact(codec: Codec, store: SchemaStore, kind: str) -> None:
    data = codec.encode(kind, RECORDS[kind])
    event = codec.decode(data)
    assert event == DecodedEvent(kind, RECORDS[kind], store.latest(kind).version)
    assert type(event.record["event_time"]) is int
    assert type(event.record["event_id"]) is str
    assert codec.encode(kind, event.record) == data


def test_single_object_header_by_hand(codec: Codec, store: SchemaStore) -> None:
    data = codec.encode("send_result", SEND_RESULT)
    canonical = store.latest("send_result").canonical_form.encode()
    assert data[0] == 0xC3 and data[1] == 0x01
    assert data[2:10] == spec_crc64_avro(canonical).to_bytes(8, "little")
    assert data[10:] == write_body(store.latest("send_result"), SEND_RESULT)


def test_body_by_hand_for_a_tiny_record(codec: Codec) -> None:
    record = {"event_id": EVENT_ID, "event_time": 1, "email": "a@b.c", "source": "api",
              "campaign_id": None, "meta": "m"}  # fmt: skip
    body = codec.encode("unsubscribe", record)[10:]
    # string = zig-zag varint length + UTF-8; long 1 -> 0x02; enum index 3 -> 0x06;
    # union branch 0 (null) -> 0x00; branch 1 -> 0x02 then the value.
    expected = bytes([72]) + EVENT_ID.encode() + b"\x02" + b"\x0aa@b.c" + b"\x06" + b"\x00"
    assert body == expected + b"\x02\x02m"


@pytest.mark.parametrize("kind", sorted(RECORDS))
def test_spec_only_reader_decodes_what_the_codec_writes(codec: Codec, kind: str) -> None:
    decoded = spec_read_single_object(codec.encode(kind, RECORDS[kind]))
    # A generic reader honours the logical types: UUID and datetime objects.
    assert decoded["event_id"] == uuid.UUID(RECORDS[kind]["event_id"])
    assert decoded["event_time"] == dt.datetime(2025, 1, 1, 0, 0, 0, 123000, tzinfo=dt.UTC)
    plain_fields = {k: v for k, v in decoded.items() if k not in ("event_id", "event_time")}
    assert plain_fields == {k: v for k, v in RECORDS[kind].items() if k in plain_fields}


def test_encode_fills_defaults_for_absent_optional_fields(codec: Codec) -> None:
    minimal = {"event_id": EVENT_ID, "event_time": EVENT_TIME, "email": "x", "smtp_code": 250}
    record = codec.decode(codec.encode("send_result", minimal)).record
    assert record["smtp_code"] == 250
    assert record["remote_mta"] is None and record["error"] is None
    unsubscribe = {"event_id": EVENT_ID, "event_time": EVENT_TIME, "email": "a@b.c"}
    assert codec.decode(codec.encode("unsubscribe", unsubscribe)).record["source"] == "api"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"event_id": "not-a-uuid"}, "event_id"),
        ({"event_id": uuid.UUID(EVENT_ID)}, "event_id"),
        ({"event_time": 1.5}, "event_time"),
        ({"event_time": True}, "event_time"),
        ({"event_time": "1735689600123"}, "event_time"),
        ({"event_time": 2**63}, "event_time"),
        ({"event_time": -1}, "event_time"),
        ({"event_time": 253_402_300_800_000}, "event_time"),
        ({"event_time": dt.datetime(2025, 1, 1, tzinfo=dt.UTC)}, "event_time"),
        ({"email": None}, "email"),
        ({"email": b"a@b.c"}, "email"),
        ({"email": "\ud800@example.com"}, "email"),
        ({"smtp_code": "550"}, "smtp_code"),
        ({"smtp_code": 2**31}, "smtp_code"),
        ({"smtp_code": True}, "smtp_code"),
        ({"error": "exploded"}, "error"),
        ({"meta": 5}, "meta"),
        ({"remote_mta": ["mx"]}, "remote_mta"),
        ({"remote_mtaa": "typo"}, "remote_mtaa"),
    ],
)
def test_encode_error_names_the_field(codec: Codec, change: dict[str, Any], field: str) -> None:
    with pytest.raises(EncodeError) as raised:
        codec.encode("send_result", {**SEND_RESULT, **change})
    assert raised.value.field == field
    assert raised.value.kind == "send_result"
    assert "John.Doe" not in str(raised.value)


def test_encode_error_for_a_missing_required_field(codec: Codec) -> None:
    for field in ("event_id", "event_time", "email"):
        record = {k: v for k, v in SEND_RESULT.items() if k != field}
        with pytest.raises(EncodeError, match="missing") as raised:
            codec.encode("send_result", record)
        assert raised.value.field == field


def test_encode_rejects_non_mappings_and_unknown_kinds(codec: Codec) -> None:
    with pytest.raises(EncodeError) as raised:
        codec.encode("send_result", [("email", "x")])  # type: ignore[arg-type]
    assert raised.value.field is None
    with pytest.raises(UnknownKindError):
        codec.encode("bounce", SEND_RESULT)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"{", "unknown_framing"),
        (b"\x01\x02\x03", "unknown_framing"),
        (b"\xc3", "truncated"),
        (b"\xc3\x02" + bytes(20), "unknown_framing"),
        (b"\xc3\x01\x01\x02", "truncated"),
        (b"\xc3\x01" + bytes(8) + b"\x00", "unknown_fingerprint"),
        (b"\x00\x00\x00\x00\x01\x02", "no_registry"),
    ],
)
def test_decode_error_reasons(codec: Codec, data: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as raised:
        codec.decode(data)
    assert raised.value.reason == reason


def test_decode_errors_in_the_body(codec: Codec) -> None:
    data = codec.encode("send_result", SEND_RESULT)
    cases = {
        data[:-1]: "truncated",
        data + b"\x00": "invalid_body",
        # the UUID string's length byte claims a negative length
        data[:10] + b"\x03" + data[11:]: "truncated",
        # invalid UTF-8 inside event_id
        data[:11] + b"\xff" + data[12:]: "invalid_body",
    }
    for bad, reason in cases.items():
        with pytest.raises(DecodeError) as raised:
            codec.decode(bad)
        assert raised.value.reason == reason, bad
        assert "John.Doe" not in str(raised.value)


def test_decode_error_for_an_out_of_range_enum_index(codec: Codec, store: SchemaStore) -> None:
    body = write_body(store.latest("unsubscribe"), UNSUBSCRIBE)
    index_at = 1 + 36 + len(write_body_long(EVENT_TIME)) + 1 + len(UNSUBSCRIBE["email"])
    assert body[index_at] == 2  # one_click = symbol 1, zig-zag 2
    bad = (
        store.latest("unsubscribe").single_object_header
        + body[:index_at]
        + b"\x20"
        + body[index_at + 1 :]
    )
    with pytest.raises(DecodeError) as raised:
        codec.decode(bad)
    assert raised.value.reason == "invalid_body"


def write_body_long(value: int) -> bytes:
    zigzag = (value << 1) ^ (value >> 63)
    out = bytearray()
    while zigzag > 0x7F:
        out.append((zigzag & 0x7F) | 0x80)
        zigzag >>= 7
    out.append(zigzag)
    return bytes(out)


# --- Confluent framing through a schema registry --------------------------------------------
@pytest.fixture
def registry() -> CountingRegistry:
    return CountingRegistry(mock_registry())


@pytest.mark.parametrize("kind", sorted(RECORDS))
def test_registry_round_trip(store: SchemaStore, registry: CountingRegistry, kind: str) -> None:
    codec = Codec(store, registry)
    data = codec.encode(kind, RECORDS[kind])
    schema_id = int.from_bytes(data[1:5], "big")
    assert data[0] == 0
    assert data[5:] == write_body(store.latest(kind), RECORDS[kind])
    assert registry.inner.get_schema(schema_id).schema_str == store.latest(kind).source
    subject = store.latest(kind).full_name
    assert registry.inner.get_latest_version(subject).schema_id == schema_id
    assert codec.decode(data) == DecodedEvent(kind, RECORDS[kind], store.latest(kind).version)
    # A reader with a fresh cache finds the schema by id, once.
    reader_registry = CountingRegistry(registry.inner)
    reader = Codec(store, reader_registry)
    for _ in range(3):
        assert reader.decode(data).record == RECORDS[kind]
    assert reader_registry.calls == [f"get {schema_id}"]


def test_registry_is_called_once_per_kind(store: SchemaStore, registry: CountingRegistry) -> None:
    codec = Codec(store, registry)
    for _ in range(5):
        for kind, record in RECORDS.items():
            codec.decode(codec.encode(kind, record))
    assert sorted(registry.calls) == [
        "register com.bouncewire.email.SendResult",
        "register com.bouncewire.email.Unsubscribe",
    ]


def test_registry_codec_still_reads_single_object(store: SchemaStore, registry: Any) -> None:
    data = Codec(store).encode("unsubscribe", UNSUBSCRIBE)
    assert Codec(store, registry).decode(data).record == UNSUBSCRIBE
    assert registry.calls == []


def test_registry_reads_an_older_version(store: SchemaStore, registry: CountingRegistry) -> None:
    v1 = store.versions("send_result")[0]
    schema_id = registry.inner.register_schema(v1.full_name, avro_schema(v1.source))
    old = {k: v for k, v in SEND_RESULT.items() if k != "remote_mta"}
    data = b"\x00" + schema_id.to_bytes(4, "big") + write_body(v1, old)
    event = Codec(store, registry).decode(data)
    assert event == DecodedEvent("send_result", {**old, "remote_mta": None}, 1)


def test_registry_unknown_and_foreign_ids(store: SchemaStore, registry: CountingRegistry) -> None:
    codec = Codec(store, registry)
    with pytest.raises(DecodeError) as raised:
        codec.decode(b"\x00\x00\x00\x30\x39" + b"\x00")
    assert raised.value.reason == "unknown_schema_id"
    foreign = '{"type":"record","name":"Other","fields":[{"name":"x","type":"int"}]}'
    foreign_id = registry.inner.register_schema("Other", avro_schema(foreign))
    for _ in range(2):
        with pytest.raises(DecodeError) as raised:
            codec.decode(b"\x00" + foreign_id.to_bytes(4, "big") + b"\x02")
        assert raised.value.reason == "unknown_schema_id"
    assert registry.calls == ["get 12345", f"get {foreign_id}"]
    with pytest.raises(DecodeError) as raised:
        codec.decode(b"\x00\x00\x00")
    assert raised.value.reason == "truncated"


class _BrokenRegistry:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def register_schema(self, subject_name: str, schema: Any) -> int:
        raise self.error

    def get_schema(self, schema_id: int) -> Any:
        raise self.error


@pytest.mark.parametrize(
    "error",
    [ConnectionError("refused"), registry_error(500, 50001, "boom")],
    ids=lambda error: type(error).__name__,
)
def test_registry_failures_are_registry_errors(store: SchemaStore, error: Exception) -> None:
    codec = Codec(store, _BrokenRegistry(error))
    with pytest.raises(RegistryError) as raised:
        codec.encode("unsubscribe", UNSUBSCRIBE)
    assert raised.value.__cause__ is error
    with pytest.raises(RegistryError):
        codec.decode(b"\x00\x00\x00\x00\x07\x00")


@pytest.mark.parametrize("event_time", [0, 253_402_300_799_999])
def test_event_time_edges_round_trip_and_read_generically(codec: Codec, event_time: int) -> None:
    record = {**UNSUBSCRIBE, "event_time": event_time}
    data = codec.encode("unsubscribe", record)
    assert codec.decode(data).record == record
    decoded_time = spec_read_single_object(data)["event_time"]
    assert decoded_time == dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(
        milliseconds=event_time
    )
