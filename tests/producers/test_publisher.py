"""EventPublisher: parsed records skip the codec's pre-check only because the parsers already
enforce it (held here as a property), and acknowledgements are counted by subtraction."""

from __future__ import annotations

from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bouncewire.kafka_client import KafkaProducer, TopicNames
from bouncewire.producers import (
    EventPublisher,
    InvalidEventError,
    parse_send_result,
    parse_unsubscribe,
)
from bouncewire.schemas import Codec, EncodeError, SchemaStore

NOW_MS = 1_700_000_000_000
CODEC = Codec(SchemaStore.load())

# Mostly valid values with their edge cases (the parsers' refusals are tested elsewhere): the
# property is about what gets through.
texts = st.none() | st.text(max_size=40)
event_ids = st.none() | st.uuids().map(str) | st.uuids().map(lambda u: str(u).upper())
times = (st.none() | st.integers(946_684_800, 7_258_118_399) | st.floats(9.5e8, 7.2e9)
         | st.datetimes(timezones=st.none() | st.timezones()).map(lambda d: d.isoformat()))
send_results = st.fixed_dictionaries(
    {"email": st.text(min_size=1, max_size=30), "smtp_code": st.none() | st.integers(200, 599)},
    optional={
        "event_id": event_ids, "ts": times,
        "error": st.sampled_from(["timeout", "dns_failure"]),
        "enhanced_code": st.none() | st.sampled_from(["5.1.1", "4.2.22", "٥.١.١"]),
        "smtp_message": texts, "remote_mta": texts, "message_id": texts,
        "campaign_id": texts, "meta": texts,
    },
)
unsubscribes = st.fixed_dictionaries(
    {"email": st.sampled_from(["u@example.com", " U@Example.com ", "bad@@x"])},
    optional={"event_id": event_ids, "ts": times, "campaign_id": texts, "meta": texts,
              "source": st.sampled_from(["link", "api", "sms"])},
)


@given(st.one_of(send_results.map(lambda o: ("send_result", o)),
                 unsubscribes.map(lambda o: ("unsubscribe", o))))
def test_whatever_the_parsers_accept_passes_the_codec_pre_check(case: tuple[str, Any]) -> None:
    kind, obj = case
    parse = parse_send_result if kind == "send_result" else parse_unsubscribe
    try:
        record = parse(obj, now_ms=NOW_MS)
    except InvalidEventError:
        return
    checked = CODEC.encode(kind, record)  # raises EncodeError if the parser let anything by
    assert CODEC.encode(kind, record, prechecked=True) == checked


def test_the_pre_check_is_what_prechecked_skips() -> None:
    record = parse_send_result({"email": "a@example.com", "smtp_code": 550}, now_ms=NOW_MS)
    record["event_id"] = "not-a-uuid"  # fastavro writes any string: only the pre-check objects
    with pytest.raises(EncodeError, match="event_id"):
        CODEC.encode("send_result", record)
    assert CODEC.encode("send_result", record, prechecked=True)


class FakeProducer:
    def __init__(self) -> None:
        self.produced: list[dict[str, Any]] = []
        self.outstanding = 0

    def produce(self, topic: str, value: bytes, **kwargs: Any) -> None:
        self.produced.append({"topic": topic, "value": value, **kwargs})


class RecordingCodec(Codec):
    def __init__(self) -> None:
        super().__init__(SchemaStore.load())
        self.prechecked: list[bool] = []

    def encode(self, kind: str, record: Any, *, prechecked: bool = False) -> bytes:
        self.prechecked.append(prechecked)
        return super().encode(kind, record, prechecked=prechecked)


def test_publish_counts_sent_and_acknowledged_is_sent_less_failed_and_outstanding() -> None:
    producer, codec = FakeProducer(), RecordingCodec()
    publisher = EventPublisher(cast(KafkaProducer, producer), codec, TopicNames(send_results="sr"))
    record = parse_send_result({"email": " A@Example.com", "smtp_code": 550, "ts": 1435322805},
                               now_ms=NOW_MS)
    publisher.publish("send_result", record, parsed=True)
    publisher.publish("send_result", record)
    assert codec.prechecked == [True, False]
    first = producer.produced[0]
    assert (first["topic"], first["key"], first["timestamp_ms"]) == (
        "sr", b"a@example.com", 1435322805000)
    assert first["on_delivery"] is publisher.report and publisher.report.sent == 2
    producer.outstanding = 1
    assert publisher.acknowledged == 1
    publisher.report.failed, producer.outstanding = 1, 0
    assert publisher.acknowledged == 1
