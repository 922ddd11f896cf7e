"""Fuzz targets the other suites did not cover: the dead-letter header parser (what `dlq
inspect` and redrive read back from the topic) and the HTTP answer judge with arbitrary
bodies and Retry-After values. The codec, classifier, JSON-lines and token fuzzers live with
their modules (see docs/reliability.md)."""

from __future__ import annotations

from email.utils import formatdate

from hypothesis import given
from hypothesis import strategies as st

from bouncewire.consumers.dead_letters import (
    HEADER_PREFIX,
    DeadLetter,
    Failure,
    dead_letter_headers,
    parse_dead_letter_headers,
)
from bouncewire.consumers.payloads import EventRef
from bouncewire.consumers.responses import Verdict, decide, parse_retry_after
from tests.consumers.strategies import make_event

NOW = 1_700_000_000.0
CAP = 60.0
header_names = st.one_of(st.text(max_size=30), st.text(max_size=20).map(HEADER_PREFIX.__add__))
header_values = st.one_of(st.none(), st.binary(max_size=200))


@given(st.lists(st.tuples(header_names, header_values), max_size=20))
def test_any_headers_parse_to_prefixed_text_and_nothing_else(
    headers: list[tuple[str, bytes | None]],
) -> None:
    parsed = parse_dead_letter_headers(headers)  # type: ignore[arg-type]  # None values: Kafka allows them
    expected_keys = {k[len(HEADER_PREFIX):] for k, v in headers
                     if k.startswith(HEADER_PREFIX) and v is not None}
    assert set(parsed) == expected_keys
    assert all(isinstance(v, str) for v in parsed.values())


failures = st.builds(
    Failure,
    reason=st.text(min_size=1, max_size=40),
    status=st.one_of(st.none(), st.integers(100, 599)),
    body=st.text(max_size=2000),
    attempts=st.integers(0, 10_000),
    first_failure_ms=st.one_of(st.none(), st.integers(1, 2**50)),
    last_failure_ms=st.one_of(st.none(), st.integers(1, 2**50)),
    destination=st.sampled_from(["", "bounce", "unsubscribe"]),
)


@given(failures, st.text(min_size=1, max_size=60), st.integers(0, 1000), st.integers(0, 2**40))
def test_headers_written_are_read_back(failure: Failure, topic: str, partition: int,
                                       offset: int) -> None:
    letter = DeadLetter(EventRef(topic, partition, offset), b"k", b"v", failure, "id-1")
    parsed = parse_dead_letter_headers(dead_letter_headers(letter))
    assert parsed["source.topic"] == topic
    assert parsed["source.partition"] == str(partition)
    assert parsed["source.offset"] == str(offset)
    assert parsed["reason"] == failure.reason
    assert parsed["attempts"] == str(failure.attempts)
    assert parsed.get("http.status") == (None if failure.status is None else str(failure.status))
    assert len(parsed.get("response.body", "")) <= 1024


@given(st.integers(0, 10**7))
def test_retry_after_seconds_and_http_dates_round_trip(delay: int) -> None:
    assert parse_retry_after(str(delay), NOW) == delay
    assert parse_retry_after(formatdate(NOW + delay, usegmt=True), NOW) == delay


@given(st.integers(100, 599), st.binary(max_size=500),
       st.one_of(st.none(), st.text(max_size=40)))
def test_any_answer_is_judged_without_raising(status: int, body: bytes,
                                              retry_after: str | None) -> None:
    events = [make_event(str(i), email=f"u{i}@x.io", ts=i) for i in range(3)]
    headers = {} if retry_after is None else {"Retry-After": retry_after}
    decision = decide(status, headers, body, events, now=NOW, max_retry_after_s=CAP)
    if 200 <= status < 300:
        assert decision.verdict in {Verdict.DELIVERED, Verdict.PARTIAL}
    if status >= 500:
        assert decision.verdict is Verdict.RETRY
    if decision.retry_after_s is not None:
        assert 0 <= decision.retry_after_s <= CAP
    assert all(0 <= i < len(events) for i in decision.unprocessed)
