"""Evolution: every version of a kind reads data written by every older version.

Parametrised over the pairs found in schemas/avsc, so a future v3 is covered without edits.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from fastavro import schemaless_reader
from hypothesis import given, settings
from hypothesis import strategies as st

from bouncewire.schemas import (
    DEFAULT_DIRECTORY,
    KINDS,
    Codec,
    DecodedEvent,
    SchemaStore,
    SchemaVersion,
)
from tests.schemas.schema_helpers import records, write_body

STORE = SchemaStore.load()
PAIRS = [
    (older, newer)
    for kind in KINDS
    for older in STORE.versions(kind)
    for newer in STORE.versions(kind)
    if older.version < newer.version
]
OLDER_THAN_LATEST = [v for kind in KINDS for v in STORE.versions(kind)[:-1]]


def _id(version: SchemaVersion) -> str:
    return f"{version.kind}-v{version.version}"


def _defaults(writer: SchemaVersion, reader: SchemaVersion) -> dict[str, Any]:
    written = {field["name"] for field in writer.declaration["fields"]}
    return {
        field["name"]: field["default"]
        for field in reader.declaration["fields"]
        if field["name"] not in written
    }


def test_there_is_at_least_one_evolution_step() -> None:
    assert any(older.kind == "send_result" for older, _ in PAIRS)


@pytest.mark.parametrize(("older", "newer"), PAIRS, ids=lambda v: _id(v))
@settings(max_examples=50)
@given(data=st.data())
def test_newer_version_reads_older_data(
    older: SchemaVersion, newer: SchemaVersion, data: st.DataObject
) -> None:
    record = data.draw(records(older.declaration))
    body = write_body(older, record)
    stream = io.BytesIO(body)
    read = schemaless_reader(stream, older.plain, newer.plain)
    assert stream.read() == b""
    assert isinstance(read, dict)
    kept = {name: read[name] for name in record if name in read}
    assert kept == {name: value for name, value in record.items() if name in read}
    for name, default in _defaults(older, newer).items():
        assert read[name] == default


@pytest.mark.parametrize("older", OLDER_THAN_LATEST, ids=_id)
@settings(max_examples=50)
@given(data=st.data())
def test_codec_reads_older_data_as_fastavro_resolution_does(
    older: SchemaVersion, data: st.DataObject
) -> None:
    """The codec's resolution shortcut gives exactly what full fastavro resolution gives."""
    latest = STORE.latest(older.kind)
    record = data.draw(records(older.declaration))
    body = write_body(older, record)
    expected = schemaless_reader(io.BytesIO(body), older.plain, latest.plain)
    event = Codec(STORE).decode(older.single_object_header + body)
    assert event == DecodedEvent(older.kind, expected, older.version)  # type: ignore[arg-type]


def test_send_result_v1_data_decodes_with_v2_defaults() -> None:
    v1, v2 = STORE.versions("send_result")[:2]
    record = {
        "event_id": "0b7c8a2e-8f4e-4a57-9f0e-1d2c3b4a5f60",
        "event_time": 1_435_322_805_000,
        "email": "not an address",
        "smtp_code": None,
        "enhanced_code": None,
        "smtp_message": None,
        "error": "dns_failure",
        "message_id": None,
        "campaign_id": "c1",
        "meta": None,
    }
    data = v1.single_object_header + write_body(v1, record)
    event = Codec(STORE).decode(data)
    assert event.version == 1
    assert event.record == {**record, "remote_mta": None}
    assert list(event.record) == [field["name"] for field in v2.declaration["fields"]]


def test_unsubscribe_v2_complaint_reads_as_api_for_a_v1_reader() -> None:
    """A consumer still on v1 (deployed before the mail sources) keeps working: the enum's
    default stands in for the symbol it does not know, and the record is still delivered."""
    v1, v2 = STORE.versions("unsubscribe")[:2]
    record = {
        "event_id": "0b7c8a2e-8f4e-4a57-9f0e-1d2c3b4a5f61",
        "event_time": 1_435_322_805_000,
        "email": "u@example.com",
        "source": "complaint",
        "campaign_id": None,
        "meta": None,
    }
    body = write_body(v2, record)
    assert schemaless_reader(io.BytesIO(body), v2.plain, v1.plain) == {**record, "source": "api"}
    assert Codec(STORE).decode(v2.single_object_header + body).record == record


def _store_with_v2_unsubscribe(tmp_path: Path, change: Any) -> SchemaStore:
    root = tmp_path / "avsc"
    shutil.copytree(DEFAULT_DIRECTORY, root)
    declaration = json.loads((root / "unsubscribe" / "v1.avsc").read_text())
    change(declaration)
    (root / "unsubscribe" / "v2.avsc").write_text(json.dumps(declaration))
    return SchemaStore.load(root)


_STORES: dict[Any, SchemaStore] = {}


def _append(field: dict[str, Any]) -> Any:
    return lambda declaration: declaration["fields"].append(field)


def _drop_meta(declaration: dict[str, Any]) -> None:
    declaration["fields"] = [f for f in declaration["fields"] if f["name"] != "meta"]


def _widen_source(declaration: dict[str, Any]) -> None:
    declaration["fields"][3]["type"]["symbols"].append("complaint")


@pytest.mark.parametrize(
    "change",
    [
        _append({"name": "attempt", "type": "int", "default": 1}),
        _append({"name": "score", "type": "double", "default": 0}),
        _append({"name": "tags", "type": {"type": "array", "items": "string"}, "default": []}),
        _append({"name": "raw", "type": "bytes", "default": "\u00ff"}),
        _drop_meta,
        _widen_source,
    ],
    ids=["int-default", "double-default", "array-default", "bytes-default", "drop", "enum"],
)
@settings(max_examples=25)
@given(data=st.data())
def test_hypothetical_v2_steps_read_v1_data(
    tmp_path_factory: pytest.TempPathFactory, change: Any, data: st.DataObject
) -> None:
    store = _STORES.get(change) or _STORES.setdefault(
        change, _store_with_v2_unsubscribe(tmp_path_factory.mktemp("avsc"), change)
    )
    v1, v2 = store.versions("unsubscribe")
    record = data.draw(records(v1.declaration))
    body = write_body(v1, record)
    expected = schemaless_reader(io.BytesIO(body), v1.plain, v2.plain)
    assert Codec(store).decode(v1.single_object_header + body).record == expected
