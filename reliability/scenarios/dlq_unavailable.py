"""The dead-letter topic is unavailable (it does not exist and the broker does not create
topics on demand) while CleverTap answers 400 to every callback.

Promise: a source offset never moves past a record that is neither delivered nor
dead-lettered; records before the failed ones still commit. Once the topic exists the dead
letters go through and the offsets complete.
"""

from __future__ import annotations

import time

from bouncewire.kafka_client import KafkaSettings, create_topics
from bouncewire.receiver import FaultPlan
from reliability.harness import (
    Acked,
    Context,
    Flow,
    committed_offsets,
    emails,
    hard_bounce,
    no_callback,
    open_flow,
    read_topic,
    timed,
    topic_exists,
)
from reliability.model import Scenario
from reliability.support import wait_until

NAME = "dlq_unavailable"
PARTITIONS = 3


@timed
def run(ctx: Context) -> Scenario:
    good_count, bad_count, hold_s = ctx.pick(300, 1000), ctx.pick(300, 2000), ctx.pick(8, 30)
    with open_flow(ctx, "dlqdown", dlq=False, faults=FaultPlan(status=400, count=-1)) as flow:
        flow.publish_now([no_callback(a) for a in emails("fine", good_count)])
        first_bad = _next_offsets(flow.publisher.acked, PARTITIONS)
        flow.publish_now([hard_bounce(a) for a in emails("bad", bad_count)])
        acked = flow.publisher.acked
        bad = {a.email for a in acked if a.email and a.email.startswith("bad.")}
        result = Scenario(NAME, published=len(acked))
        with flow.running() as consumer:
            consumed = wait_until(lambda: consumer.metric(
                "bouncewire_events_consumed_total", event_type="send_result")
                >= good_count + bad_count, 60, 0.5)
            held = _offsets_while_unavailable(flow, hold_s)
            result.check(not topic_exists(ctx.bootstrap, flow.topics.dlq),
                         "the broker created the dead-letter topic on demand: inconclusive")
            create_topics(KafkaSettings(bootstrap_servers=ctx.bootstrap), [flow.topics.dlq])
            ctx.say(f"  {NAME}: dead-letter topic created")
            completed = flow.wait_committed(120, 1.0)
        delivered = flow.counts()
    dead = read_topic(ctx.bootstrap, flow.topics.dlq, len(bad), timeout=30)
    result.dlq = len(dead)
    result.delivered_unique = len(acked) - len(bad)  # the "no callback" records
    result.lost = max(len(bad) - len(dead), 0)
    result.duplicates = sum(delivered.values())
    result.check(consumed, "the consumer did not read every record")
    result.check(all(h <= f for h, f in zip(held, first_bad, strict=True)),
                 f"offsets moved past failed records: committed {held}, first failed {first_bad}")
    result.check(completed, "offsets did not complete once the topic existed")
    result.extra.update(held_offsets=held, first_failed_offsets=first_bad,
                        good_committed_while_held=held == first_bad, hold_s=hold_s)
    return result


def _next_offsets(acked: list[Acked], partitions: int) -> list[int]:
    """The offset after the last acknowledged record of each partition (0 when none)."""
    ends = [0] * partitions
    for a in acked:
        ends[a.partition] = max(ends[a.partition], a.offset + 1)
    return ends


def _offsets_while_unavailable(flow: Flow, seconds: float) -> list[int]:
    """The highest committed offsets seen (per partition) while the topic is missing."""
    highest = [0] * PARTITIONS
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        offsets = committed_offsets(flow.bootstrap, flow.group, flow.topics.send_results,
                                    PARTITIONS)
        for i, offset in enumerate(offsets):
            highest[i] = max(highest[i], offset)
        time.sleep(1.0)
    flow.ctx.say(f"  {NAME}: committed while unavailable {highest}")
    return highest
