"""The consumer group end to end: real broker, real HTTP receiver on loopback."""

from __future__ import annotations

import collections
import time

import pytest

from bouncewire.consumers.dead_letters import parse_dead_letter_headers
from bouncewire.kafka_client import TopicNames
from bouncewire.receiver import CallbackReceiver, FaultPlan
from tests.consumers.pipeline_harness import (
    ThreadedPipeline,
    bounce,
    committed_offsets,
    committed_total,
    config_for,
    delivered,
    end_offsets,
    produce_raw,
    publish,
    read_all,
    soft,
    unsubscribe,
    wait_until,
)

pytestmark = pytest.mark.integration


def delivered_emails(receiver: CallbackReceiver) -> collections.Counter[str]:
    return collections.Counter(
        e.email for post in receiver.received for e in post.processed_events)


def test_delivers_every_bounce_and_unsubscribe_in_seed_format_and_commits(
    kafka_bootstrap: str, topics: TopicNames, receiver: CallbackReceiver
) -> None:
    hard = [bounce(f"hard{i}@example.com") for i in range(1500)]
    softs = [soft(f"soft{i}@example.com") for i in range(1000)]
    fine = [delivered(f"ok{i}@example.com") for i in range(300)]
    # Every source, the mail sources included, is one unsubscribe callback alike.
    sources = ("link", "one_click", "mailto", "api", "complaint")
    unsubs = [unsubscribe(f"un{i}@example.com", source=sources[i % 5]) for i in range(200)]
    publish(kafka_bootstrap, topics, "send_result", hard + softs + fine)
    publish(kafka_bootstrap, topics, "unsubscribe", unsubs)
    config = config_for(topics, receiver.base_url + "/bounce?token=s3cret",
                        receiver.base_url + "/unsub")
    with ThreadedPipeline(kafka_bootstrap, config) as running:
        assert wait_until(lambda: sum(delivered_emails(receiver).values()) >= 2700, 60)
        assert wait_until(lambda: committed_offsets(
            kafka_bootstrap, config.group_id, topics.send_results, 3) == end_offsets(
            kafka_bootstrap, topics.send_results, 3), 20)
        assert running.metric("bouncewire_send_results_total", bounce="none",
                              error_class="none") == 300
        # Batch sizes are observed once per batch, as the batcher cut it (no failures here).
        assert running.metric("bouncewire_batch_events_sum", destination="bounce") == 2500
        assert running.metric("bouncewire_batch_events_sum", destination="unsubscribe") == 200
        body_bytes = sum(len(p.body) for p in receiver.received)
        assert sum(running.metric("bouncewire_batch_bytes_sum", destination=d)
                   for d in ("bounce", "unsubscribe")) == body_bytes
    posts = receiver.received
    assert all(p.valid and p.accepted for p in posts)
    assert max(len(p.events) for p in posts) <= 1000
    emails = delivered_emails(receiver)
    assert set(emails) == {r["email"] for r in hard + softs + unsubs}
    assert max(emails.values()) == 1  # no duplicates without failures
    by_path = collections.Counter((p.path, e.event) for p in posts for e in p.events)
    assert by_path == {("/bounce", "hardbounce"): 1500, ("/bounce", "softbounce"): 1000,
                       ("/unsub", "unsubscribe"): 200}
    assert all(e.ts == hard[0]["event_time"] // 1000 for p in posts for e in p.events)


def test_2500_queued_events_never_exceed_1000_per_post(
    kafka_bootstrap: str, topics: TopicNames, receiver: CallbackReceiver
) -> None:
    records = [bounce(f"u{i}@example.com") for i in range(2500)]
    publish(kafka_bootstrap, topics, "send_result", records)
    config = config_for(topics, receiver.url, receiver.url, linger_s=5.0)
    with ThreadedPipeline(kafka_bootstrap, config):
        assert wait_until(lambda: sum(delivered_emails(receiver).values()) >= 2500, 60)
    sizes = [len(p.events) for p in receiver.received]
    assert sum(sizes) == 2500 and max(sizes) <= 1000


def test_503_retry_after_is_honoured_and_the_same_batch_resent(
    kafka_bootstrap: str, topics: TopicNames, receiver: CallbackReceiver
) -> None:
    receiver.set_faults(FaultPlan(status=503, count=1, retry_after="2"))
    publish(kafka_bootstrap, topics, "send_result", [bounce(f"r{i}@example.com") for i in range(5)])
    with ThreadedPipeline(kafka_bootstrap, config_for(topics, receiver.url, receiver.url)):
        assert wait_until(lambda: len(delivered_emails(receiver)) == 5, 30)
    first, second = receiver.received[:2]
    assert first.status == 503 and second.accepted
    assert second.body == first.body
    assert second.received_at_monotonic - first.received_at_monotonic >= 2.0


@pytest.mark.parametrize(
    "plan",
    [
        FaultPlan(status=429, count=2, retry_after="1"),
        FaultPlan(status=500, count=3),
        FaultPlan(status=502, count=1),
        FaultPlan(delay_s=3.0, count=1),  # hangs past the 2 s request timeout
        FaultPlan(close_connection=True, count=2),
    ],
    ids=["429", "500x3", "502", "hang", "reset"],
)
def test_transient_failures_end_delivered_with_nothing_lost(
    kafka_bootstrap: str, topics: TopicNames, receiver: CallbackReceiver, plan: FaultPlan
) -> None:
    receiver.set_faults(plan)
    records = [bounce(f"t{i}@example.com") for i in range(50)]
    publish(kafka_bootstrap, topics, "send_result", records)
    config = config_for(topics, receiver.url, receiver.url)
    with ThreadedPipeline(kafka_bootstrap, config) as running:
        assert wait_until(lambda: len(delivered_emails(receiver)) == 50, 45)
        assert running.metric("bouncewire_callback_retries_total", destination="bounce") >= 1
    assert read_all(kafka_bootstrap, topics.dlq, 0, timeout=2) == []


def test_connection_refused_until_the_receiver_comes_up(
    kafka_bootstrap: str, topics: TopicNames
) -> None:
    late = CallbackReceiver()
    late.start()
    port = late.port
    late.stop()  # now nothing listens on that port
    publish(kafka_bootstrap, topics, "unsubscribe", [unsubscribe("late@example.com")])
    url = f"http://127.0.0.1:{port}/u"
    with ThreadedPipeline(kafka_bootstrap, config_for(topics, url, url)) as running:
        assert wait_until(lambda: running.metric(
            "bouncewire_callbacks_total", destination="unsubscribe", status_class="network") >= 2,
            20)
        with CallbackReceiver(port=port) as back:
            assert wait_until(lambda: len(delivered_emails(back)) == 1, 20)


def test_400_dead_letters_every_event_with_headers(
    kafka_bootstrap: str, topics: TopicNames, receiver: CallbackReceiver
) -> None:
    receiver.set_faults(FaultPlan(status=400, count=-1))
    records = [bounce(f"bad{i}@example.com") for i in range(3)]
    publish(kafka_bootstrap, topics, "send_result", records)
    token_url = receiver.url + "/cb?token=acct-secret-123"
    with ThreadedPipeline(kafka_bootstrap, config_for(topics, token_url, token_url)) as running:
        letters = read_all(kafka_bootstrap, topics.dlq, 3)
        assert wait_until(lambda: running.metric("bouncewire_dead_letters_total",
                                                 reason="http_400") == 3, 10)
    assert len(letters) == 3
    headers = [parse_dead_letter_headers(m.headers()) for m in letters]
    assert {h["reason"] for h in headers} == {"http_400"}
    assert {h["http.status"] for h in headers} == {"400"}
    assert all(h["source.topic"] == topics.send_results and h["attempts"] == "1"
               for h in headers)
    assert all("first.failure.ms" not in h or int(h["first.failure.ms"]) > 0 for h in headers)
    assert all("acct-secret-123" not in str(m.headers()) for m in letters)
    originals = {m.value() for m in read_all(kafka_bootstrap, topics.send_results, 3)}
    assert {m.value() for m in letters} == originals


def test_partial_success_dead_letters_only_the_unprocessed(
    kafka_bootstrap: str, topics: TopicNames, receiver: CallbackReceiver
) -> None:
    receiver.set_faults(FaultPlan(partial_unprocessed=2, count=1))
    records = [bounce(f"p{i}@example.com", code=550) for i in range(10)]
    publish(kafka_bootstrap, topics, "send_result", records)
    config = config_for(topics, receiver.url, receiver.url, linger_s=1.0)
    with ThreadedPipeline(kafka_bootstrap, config) as running:
        letters = read_all(kafka_bootstrap, topics.dlq, 2)
        assert wait_until(lambda: running.metric("bouncewire_dead_letters_total",
                                                 reason="partial_unprocessed") == 2, 10)
    assert len(letters) == 2
    unprocessed = {e.email for p in receiver.received for e in p.unprocessed}
    assert len(unprocessed) == 2
    assert len(delivered_emails(receiver)) == 8


def test_poison_messages_are_dead_lettered_and_the_rest_delivered(
    kafka_bootstrap: str, topics: TopicNames, receiver: CallbackReceiver
) -> None:
    good = [bounce(f"g{i}@example.com") for i in range(5)]
    poison = [b"", b"random bytes \x00\xff", b"\xc3\x01" + b"\x00" * 8 + b"body",
              b"\xc3\x01" + good[0]["event_id"].encode()[:4]]
    produce_raw(kafka_bootstrap, topics.send_results, poison, key=b"same-key")
    publish(kafka_bootstrap, topics, "send_result", good)
    with ThreadedPipeline(kafka_bootstrap, config_for(topics, receiver.url, receiver.url)):
        assert wait_until(lambda: len(delivered_emails(receiver)) == 5, 30)
        letters = read_all(kafka_bootstrap, topics.dlq, len(poison))
    assert sorted(m.value() or b"" for m in letters) == sorted(poison)
    reasons = {parse_dead_letter_headers(m.headers())["reason"] for m in letters}
    assert all(r.startswith("decode_") for r in reasons)


def test_delivered_send_results_are_counted_and_commit_without_callbacks(
    kafka_bootstrap: str, topics: TopicNames, receiver: CallbackReceiver
) -> None:
    publish(kafka_bootstrap, topics, "send_result", [delivered(f"d{i}@x.org") for i in range(20)])
    config = config_for(topics, receiver.url, receiver.url)
    with ThreadedPipeline(kafka_bootstrap, config) as running:
        assert wait_until(lambda: running.metric("bouncewire_events_consumed_total",
                                                 event_type="send_result") == 20, 20)
        assert wait_until(lambda: committed_total(
            kafka_bootstrap, config.group_id, topics.send_results, 3) == 20, 15)
    assert receiver.received == []


def test_stop_drains_open_batches_and_commits(
    kafka_bootstrap: str, topics: TopicNames, receiver: CallbackReceiver
) -> None:
    publish(kafka_bootstrap, topics, "send_result", [bounce(f"s{i}@example.com") for i in range(7)])
    config = config_for(topics, receiver.url, receiver.url, linger_s=60.0)
    running = ThreadedPipeline(kafka_bootstrap, config).__enter__()
    assert wait_until(lambda: running.metric("bouncewire_events_consumed_total",
                                             event_type="send_result") == 7, 20)
    time.sleep(0.5)
    assert receiver.received == []  # still lingering
    running.stop()
    assert len(delivered_emails(receiver)) == 7
    assert committed_total(kafka_bootstrap, config.group_id, topics.send_results, 3) == 7


def test_v2_payload_format_carries_meta(
    kafka_bootstrap: str, topics: TopicNames, receiver: CallbackReceiver
) -> None:
    records = [{**bounce(f"v{i}@example.com"), "meta": f"meta-{i}"} for i in range(3)]
    publish(kafka_bootstrap, topics, "send_result", records)
    publish(kafka_bootstrap, topics, "unsubscribe", [unsubscribe("vu@example.com")])
    config = config_for(topics, receiver.url, receiver.url, payload_format="v2")
    with ThreadedPipeline(kafka_bootstrap, config):
        assert wait_until(lambda: len(delivered_emails(receiver)) == 4, 30)
    posts = receiver.received
    assert all(p.valid and p.payload_format == "v2" for p in posts)
    failed = [item for p in posts for item in p.payload["events"]["failed"]]
    assert sorted((f["type"], f["meta"]) for f in failed) == [
        ("hard_bounce", "meta-0"), ("hard_bounce", "meta-1"), ("hard_bounce", "meta-2"),
        ("unsubscribed", None)]


def test_the_same_event_id_twice_in_flight_is_sent_once(
    kafka_bootstrap: str, topics: TopicNames, receiver: CallbackReceiver
) -> None:
    twice = bounce("twice@example.com")
    publish(kafka_bootstrap, topics, "send_result", [twice, twice, bounce("once@example.com")])
    config = config_for(topics, receiver.url, receiver.url, linger_s=1.0)
    with ThreadedPipeline(kafka_bootstrap, config):
        assert wait_until(lambda: len(delivered_emails(receiver)) == 2, 30)
        assert wait_until(lambda: committed_total(
            kafka_bootstrap, config.group_id, topics.send_results, 3) == 3, 15)
    assert delivered_emails(receiver) == {"twice@example.com": 1, "once@example.com": 1}


def test_a_long_outage_pauses_partitions_and_keeps_the_group(
    kafka_bootstrap: str, topics: TopicNames, receiver: CallbackReceiver
) -> None:
    """503s for longer than max.poll.interval.ms: the member must stay, memory bounded."""
    receiver.set_faults(FaultPlan(status=503, count=-1))
    publish(kafka_bootstrap, topics, "send_result", [bounce(f"o{i}@example.com")
                                                     for i in range(3000)])
    config = config_for(topics, receiver.url, receiver.url, max_batch_events=100,
                        max_pending_events=500, consume_batch=200)
    tight = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000,
             "max.poll.interval.ms": 7000}
    with ThreadedPipeline(kafka_bootstrap, config, tight) as running:
        assert wait_until(lambda: running.metric("bouncewire_paused_partitions") > 0, 20)
        peak_pending = 0.0
        deadline = time.monotonic() + 12  # well past max.poll.interval.ms
        while time.monotonic() < deadline:
            peak_pending = max(peak_pending, float(running.pipeline.tracker.pending_total()))
            time.sleep(0.2)
        assert running.metric("bouncewire_rebalance_events_total", change="revoked") == 0
        assert running.metric("bouncewire_rebalance_events_total", change="lost") == 0
        assert peak_pending <= 500 + 200 + 200  # bound + one consume batch + one in hand
        receiver.set_faults(FaultPlan())
        assert wait_until(lambda: len(delivered_emails(receiver)) == 3000, 60)
