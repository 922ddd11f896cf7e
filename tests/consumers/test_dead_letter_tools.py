"""`bouncewire dlq inspect|redrive`: counting and redriving dead letters on the real broker,
plus the pure filter and summary logic."""

from __future__ import annotations

import collections
import json
from collections.abc import Callable

import pytest

from bouncewire.consumers.dead_letter_tools import (
    DeadLetterSummary,
    LetterFilter,
    age_bucket,
    inspect_dead_letters,
    redrive_group,
)
from bouncewire.consumers.dead_letters import parse_dead_letter_headers
from bouncewire.kafka_client import KafkaSettings, TopicNames
from bouncewire.receiver import CallbackReceiver, FaultPlan
from tests.consumers.pipeline_harness import (
    NOW_S,
    ThreadedPipeline,
    bounce,
    config_for,
    produce_raw,
    publish,
    read_all,
    unsubscribe,
)
from tests.consumers.replay_harness import FAST_FLAGS, kafka_argv, run_cli, urls

HOUR_MS = 3_600_000
NOW_MS = 1_700_000_000_000


# --- pure: filters, ages, summaries ------------------------------------------------------------


@pytest.mark.parametrize(("letters", "headers", "written", "taken"), [
    (LetterFilter(), {}, None, True),
    (LetterFilter(reason="http_400"), {"reason": "http_400"}, 1, True),
    (LetterFilter(reason="http_400"), {"reason": "http_500"}, 1, False),
    (LetterFilter(reason="http_400"), {}, 1, False),
    (LetterFilter(since_ms=100), {}, 100, True),
    (LetterFilter(since_ms=100), {}, 99, False),
    (LetterFilter(since_ms=100), {}, None, False),
    (LetterFilter("http_400", 100), {"reason": "http_400"}, 150, True),
    (LetterFilter("http_400", 100), {"reason": "http_400"}, 50, False),
])
def test_letter_filter(letters: LetterFilter, headers: dict[str, str], written: int | None,
                       taken: bool) -> None:
    assert letters.matches(headers, written) is taken


@pytest.mark.parametrize(("age_ms", "bucket"), [
    (0, "<1h"), (HOUR_MS - 1, "<1h"), (HOUR_MS, "<24h"), (24 * HOUR_MS - 1, "<24h"),
    (24 * HOUR_MS, "<7d"), (7 * 24 * HOUR_MS - 1, "<7d"), (7 * 24 * HOUR_MS, ">=7d"),
    (-5, "<1h"),  # a clock slightly behind the broker's
])
def test_age_buckets(age_ms: int, bucket: str) -> None:
    assert age_bucket(age_ms) == bucket


def test_summary_counts_pending_letters_and_never_shows_an_address() -> None:
    summary = DeadLetterSummary()
    letter = {"reason": "http_400", "destination": "bounce", "source.topic": "sr",
              "attempts": "2", "event.id": "e1"}
    summary.add(letter, NOW_MS - 10, NOW_MS, pending=True)
    summary.add({**letter, "attempts": "5"}, NOW_MS - 30 * HOUR_MS, NOW_MS, pending=True)
    summary.add({"reason": "decode_truncated", "source.topic": "sr"}, None, NOW_MS, pending=True)
    summary.add(letter, NOW_MS, NOW_MS, pending=False)
    data = summary.to_json()
    assert data == {
        "letters": 4, "already_redriven": 1, "pending": 3,
        "by_reason": {"http_400": 2, "decode_truncated": 1},
        "by_age": {"<1h": 1, "<7d": 1, "unknown": 1},
        "by_destination": {"bounce": 2, "none": 1},
        "by_source_topic": {"sr": 3},
        "max_attempts": 5,
    }
    assert "@" not in json.dumps(data) + summary.render()
    assert "3 pending" in summary.render()


# --- on the broker ---------------------------------------------------------------------------

integration = pytest.mark.integration


def dead_letter_everything(bootstrap: str, topics: TopicNames, receiver: CallbackReceiver,
                           group: str, letters: int) -> None:
    """Run the consumer group against a receiver answering 400 until `letters` are written."""
    receiver.set_faults(FaultPlan(status=400, count=-1))
    config = config_for(topics, receiver.url, receiver.url, group_id=group)
    with ThreadedPipeline(bootstrap, config):
        assert len(read_all(bootstrap, topics.dlq, letters, timeout=30)) >= letters
    receiver.set_faults(FaultPlan())
    receiver.clear()


def redrive(bootstrap: str, topics: TopicNames, group: str, url: str, *extra: str) -> int:
    return run_cli(["dlq", "redrive", *kafka_argv(bootstrap, topics), *urls(url),
                    "--group-id", group, *FAST_FLAGS, *extra])


def inspect(bootstrap: str, topics: TopicNames, group: str) -> DeadLetterSummary:
    return inspect_dead_letters(KafkaSettings(bootstrap_servers=bootstrap), topics.dlq,
                                redrive_group(group))


@integration
def test_redrive_empties_the_dead_letters_once_the_receiver_recovers(
    kafka_bootstrap: str, topics: TopicNames, receiver: CallbackReceiver,
    unique_name: Callable[[str], str], capsys: pytest.CaptureFixture[str]
) -> None:
    group = unique_name("g")
    bounces = [bounce(f"b{i}@example.com", ts=NOW_S - 7200 + i) for i in range(20)]
    unsubs = [unsubscribe(f"u{i}@example.com", ts=NOW_S - 3600 + i) for i in range(5)]
    publish(kafka_bootstrap, topics, "send_result", bounces)
    publish(kafka_bootstrap, topics, "unsubscribe", unsubs)
    dead_letter_everything(kafka_bootstrap, topics, receiver, group, 25)

    before = inspect(kafka_bootstrap, topics, group)
    assert (before.pending, before.redriven) == (25, 0)
    assert before.by_reason == {"http_400": 25}
    assert before.by_destination == {"bounce": 20, "unsubscribe": 5}
    assert before.by_age == {"<1h": 25}
    assert run_cli(["dlq", "inspect", *kafka_argv(kafka_bootstrap, topics), "--group-id",
                    group, "--json"]) == 0
    printed = capsys.readouterr().out
    assert json.loads(printed)["pending"] == 25 and "@" not in printed

    assert redrive(kafka_bootstrap, topics, group, receiver.url) == 0
    posted = collections.Counter((e.email, e.ts) for p in receiver.received
                                 for e in p.processed_events)
    # Every event once, with its original ts.
    assert set(posted) == {(r["email"], r["event_time"] // 1000) for r in bounces + unsubs}
    assert max(posted.values()) == 1

    after = inspect(kafka_bootstrap, topics, group)
    assert (after.pending, after.redriven, after.total) == (0, 25, 25)
    receiver.clear()
    assert redrive(kafka_bootstrap, topics, group, receiver.url) == 0
    assert receiver.received == []  # nothing left to do


@integration
def test_letters_that_still_fail_stay_dead_lettered_with_attempts_raised(
    kafka_bootstrap: str, topics: TopicNames, receiver: CallbackReceiver,
    unique_name: Callable[[str], str]
) -> None:
    group = unique_name("g")
    publish(kafka_bootstrap, topics, "send_result",
            [bounce(f"s{i}@example.com") for i in range(4)])
    dead_letter_everything(kafka_bootstrap, topics, receiver, group, 4)
    receiver.set_faults(FaultPlan(status=400, count=-1))
    assert redrive(kafka_bootstrap, topics, group, receiver.url) == 0
    letters = read_all(kafka_bootstrap, topics.dlq, 8)
    assert len(letters) == 8
    headers = [parse_dead_letter_headers(m.headers()) for m in letters]
    assert collections.Counter(h["attempts"] for h in headers) == {"1": 4, "2": 4}
    assert {h["source.topic"] for h in headers} == {topics.send_results}
    first = {m.value() for m, h in zip(letters, headers, strict=True) if h["attempts"] == "1"}
    again = {m.value() for m, h in zip(letters, headers, strict=True) if h["attempts"] == "2"}
    assert again == first  # the original bytes, dead-lettered again
    summary = inspect(kafka_bootstrap, topics, group)
    assert (summary.pending, summary.redriven, summary.max_attempts) == (4, 4, 2)


@integration
def test_a_filtered_redrive_keeps_the_letters_it_skips(
    kafka_bootstrap: str, topics: TopicNames, receiver: CallbackReceiver,
    unique_name: Callable[[str], str]
) -> None:
    group = unique_name("g")
    publish(kafka_bootstrap, topics, "send_result",
            [bounce(f"f{i}@example.com") for i in range(3)])
    produce_raw(kafka_bootstrap, topics.send_results, [b"not avro", b"\xc3\x01garbage"])
    dead_letter_everything(kafka_bootstrap, topics, receiver, group, 5)

    assert redrive(kafka_bootstrap, topics, group, receiver.url, "--reason", "http_400") == 0
    assert sum(len(p.processed_events) for p in receiver.received) == 3
    summary = inspect(kafka_bootstrap, topics, group)
    assert summary.pending == 2  # the two poison letters, copied past the redriven ones
    assert summary.by_reason and all(r.startswith("decode_") for r in summary.by_reason)

    receiver.clear()
    assert redrive(kafka_bootstrap, topics, group, receiver.url, "--reason", "http_400") == 0
    assert receiver.received == []  # the http_400 letters are not redriven twice
