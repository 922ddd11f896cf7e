"""Several POSTs in flight against a real receiver on loopback and the session's broker: a
receiver that answers after 300 ms (concurrently, like a distant API) gets them side by side;
one that takes at most 3 at once and answers 429 + Retry-After above gets at most 3, and the
429 share stays small. Every event arrives exactly once and the offsets reach the end, with
batches finishing out of order."""

from __future__ import annotations

import collections
import signal
import uuid

import pytest

from bouncewire.kafka_client import TopicNames
from bouncewire.receiver import CallbackReceiver
from tests.consumers.pipeline_harness import (
    ThreadedPipeline,
    bounce,
    committed_offsets,
    config_for,
    consumer_process,
    end_offsets,
    publish,
    wait_until,
)

pytestmark = pytest.mark.integration
EVENTS = 3000
BATCH = 100


def received_counts(receiver: CallbackReceiver) -> collections.Counter[str]:
    return collections.Counter(e.email for p in receiver.received for e in p.processed_events)


def all_committed(bootstrap: str, group: str, topics: TopicNames) -> bool:
    return committed_offsets(bootstrap, group, topics.send_results, 3) == end_offsets(
        bootstrap, topics.send_results, 3
    )


def test_a_slow_receiver_gets_several_posts_at_once_from_threads(
    kafka_bootstrap: str, topics: TopicNames
) -> None:
    publish(kafka_bootstrap, topics, "send_result",
            [bounce(f"s{i}@example.com") for i in range(EVENTS)])  # fmt: skip
    with CallbackReceiver(latency_s=0.3) as receiver:
        config = config_for(topics, receiver.url, receiver.url, max_batch_events=BATCH,
                            max_in_flight=8)  # fmt: skip
        with ThreadedPipeline(kafka_bootstrap, config) as running:
            assert wait_until(lambda: len(received_counts(receiver)) == EVENTS, 60)
            assert wait_until(lambda: all_committed(kafka_bootstrap, config.group_id, topics), 20)
            limit = running.metric("bouncewire_callback_concurrency_limit", destination="bounce")
        stats = receiver.stats()
    counts = received_counts(receiver)
    assert max(counts.values()) == 1  # a clean run sends nothing twice
    # 30 POSTs of 0.3 s: one at a time would take 9 s; side by side they overlap.
    assert 4 <= stats["peak_in_progress"] <= 8
    assert 4 <= limit <= 8


def test_a_receiver_taking_three_at_once_gets_three_and_few_429s_from_the_child(
    kafka_bootstrap: str, topics: TopicNames
) -> None:
    publish(kafka_bootstrap, topics, "send_result",
            [bounce(f"t{i}@example.com") for i in range(EVENTS)])  # fmt: skip
    group = f"g-{uuid.uuid4().hex[:8]}"
    with CallbackReceiver(latency_s=0.2, max_concurrent=3, throttle_retry_after="1") as receiver:
        args = (kafka_bootstrap, topics, group, receiver.url, receiver.url,
                "--max-batch-events", str(BATCH), "--max-in-flight", "8",
                "--delivery", "process")  # fmt: skip
        with consumer_process(*args) as proc:
            assert wait_until(lambda: len(received_counts(receiver)) == EVENTS, 90)
            assert wait_until(lambda: all_committed(kafka_bootstrap, group, topics), 20)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
        stats = receiver.stats()
    assert max(received_counts(receiver).values()) == 1  # a 429 is no delivery: no duplicate
    assert stats["peak_in_progress"] == 3
    refused = stats["throttled"] / (stats["posts"])
    print(f"429 share {refused:.1%} ({stats['throttled']} of {stats['posts']} POSTs)")
    assert refused < 0.25  # slow start overshoots once; then the ceiling holds it at 3
