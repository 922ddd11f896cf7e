"""The dead-letter topic is unavailable (it does not exist and the broker does not create
topics on demand) while CleverTap answers 400 to every callback.

Promise: a source offset never moves past a record that is neither delivered nor
dead-lettered; records before the failed ones still commit. Once the topic exists the dead
letters go through and the offsets complete.
"""

from __future__ import annotations

import time

from bouncewire.receiver import CallbackReceiver, FaultPlan
from kafka_client import KafkaSettings, create_topics
from reliability.harness import (
    Acked,
    AckedPublisher,
    ConsumerProcess,
    Context,
    all_committed,
    committed_offsets,
    delivered_counts,
    emails,
    hard_bounce,
    make_topics,
    no_callback,
    read_topic,
    topic_exists,
    unique,
    wait_until,
)
from reliability.model import Scenario

NAME = "dlq_unavailable"
PARTITIONS = 3


def run(ctx: Context) -> Scenario:
    started = time.monotonic()
    good_count, bad_count, hold_s = ctx.pick(300, 1000), ctx.pick(300, 2000), ctx.pick(8, 30)
    topics = make_topics(ctx.bootstrap, "dlqdown", dlq=False)
    publisher = AckedPublisher(ctx.bootstrap, topics)
    publisher.publish("send_result", [no_callback(a) for a in emails("fine", good_count)])
    publisher.flush()
    first_bad = _next_offsets(publisher.acked, PARTITIONS)
    publisher.publish("send_result", [hard_bounce(a) for a in emails("bad", bad_count)])
    publisher.flush()
    bad = {a.email for a in publisher.acked if a.email and a.email.startswith("bad.")}
    group = unique("dlqdown")
    result = Scenario(NAME, published=len(publisher.acked))
    with CallbackReceiver(faults=FaultPlan(status=400, count=-1)) as receiver:
        consumer = ConsumerProcess(ctx, ctx.bootstrap, topics, group, receiver.url)
        try:
            consumed = wait_until(lambda: consumer.metric(
                "bouncewire_events_consumed_total", event_type="send_result")
                >= good_count + bad_count, 60, 0.5)
            held = _offsets_while_unavailable(ctx, group, topics.send_results, hold_s)
            result.check(not topic_exists(ctx.bootstrap, topics.dlq),
                         "the broker created the dead-letter topic on demand: inconclusive")
            create_topics(KafkaSettings(bootstrap_servers=ctx.bootstrap), [topics.dlq])
            ctx.say(f"  {NAME}: dead-letter topic created")
            completed = wait_until(lambda: all_committed(ctx.bootstrap, group,
                                                         topics.send_results), 120, 1.0)
        finally:
            consumer.stop()
        delivered = delivered_counts(receiver)
    dead = read_topic(ctx.bootstrap, topics.dlq, len(bad), timeout=30)
    result.dlq = len(dead)
    result.delivered_unique = len(publisher.acked) - len(bad)  # the "no callback" records
    result.lost = max(len(bad) - len(dead), 0)
    result.duplicates = sum(delivered.values())
    result.check(consumed, "the consumer did not read every record")
    result.check(all(h <= f for h, f in zip(held, first_bad, strict=True)),
                 f"offsets moved past failed records: committed {held}, first failed {first_bad}")
    result.check(completed, "offsets did not complete once the topic existed")
    result.extra.update(held_offsets=held, first_failed_offsets=first_bad,
                        good_committed_while_held=held == first_bad, hold_s=hold_s)
    result.seconds = time.monotonic() - started
    return result


def _next_offsets(acked: list[Acked], partitions: int) -> list[int]:
    """The offset after the last acknowledged record of each partition (0 when none)."""
    ends = [0] * partitions
    for a in acked:
        ends[a.partition] = max(ends[a.partition], a.offset + 1)
    return ends


def _offsets_while_unavailable(ctx: Context, group: str, topic: str, seconds: float,
                               ) -> list[int]:
    """The highest committed offsets seen (per partition) while the topic is missing."""
    highest = [0] * PARTITIONS
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for i, offset in enumerate(committed_offsets(ctx.bootstrap, group, topic, PARTITIONS)):
            highest[i] = max(highest[i], offset)
        time.sleep(1.0)
    ctx.say(f"  {NAME}: committed while unavailable {highest}")
    return highest
