"""Consumer SIGKILLed mid-batch five times in a row, restarted each time.

Promise: nothing lost; each kill re-sends at most what was in flight: the POST under way and
the batch delivered but whose offset commit had not landed, 2 × max batch events.
"""

from __future__ import annotations

import time

from bouncewire.receiver import CallbackReceiver, FaultPlan
from kafka_client import TopicNames
from reliability.harness import (
    AckedPublisher,
    ConsumerProcess,
    Context,
    all_committed,
    delivered_counts,
    emails,
    hard_bounce,
    make_topics,
    posts_reach,
    unique,
    unique_delivered,
    wait_until,
)
from reliability.model import Scenario, tally

NAME = "consumer_sigkill_x5"
KILLS = 5


def run(ctx: Context) -> Scenario:
    started = time.monotonic()
    count, batch = ctx.pick(3000, 20000), ctx.pick(200, 500)
    posts_per_life = ctx.pick(2, 4)
    topics = make_topics(ctx.bootstrap, "kill")
    publisher = AckedPublisher(ctx.bootstrap, topics)
    publisher.publish("send_result", [hard_bounce(a) for a in emails("kill", count)])
    publisher.flush()
    group = unique("kill")
    result = Scenario(NAME, published=len(publisher.acked_emails),
                      max_duplicates=KILLS * 2 * batch)
    with CallbackReceiver() as receiver:
        # Slow answers keep a POST in flight at almost any moment: the kill lands mid-batch.
        receiver.set_faults(FaultPlan(delay_s=0.2, count=-1))
        kills = _kill_repeatedly(ctx, receiver, topics, group, batch, posts_per_life)
        receiver.set_faults(FaultPlan())
        last = ConsumerProcess(ctx, ctx.bootstrap, topics, group, receiver.url,
                               "--max-batch-events", str(batch), name="final")
        try:
            wait_until(lambda: unique_delivered(receiver) >= result.published, 180, 0.5)
            committed = wait_until(lambda: all_committed(ctx.bootstrap, group,
                                                         topics.send_results), 60, 0.5)
        finally:
            last.stop()
        counts = delivered_counts(receiver)
    result.delivered_unique, result.lost, result.duplicates = tally(
        publisher.acked_emails, counts)
    result.check(kills == KILLS, f"only {kills} of {KILLS} kills landed before the end")
    result.check(committed, "offsets did not reach the end of the topic")
    result.extra.update(kills=kills, max_batch_events=batch)
    result.seconds = time.monotonic() - started
    return result


def _kill_repeatedly(ctx: Context, receiver: CallbackReceiver, topics: TopicNames, group: str,
                     batch: int, posts_per_life: int) -> int:
    """Start, wait for a few POSTs, SIGKILL; KILLS times. Returns the kills that landed."""
    kills = 0
    for round_no in range(KILLS):
        before = len(receiver.received)
        proc = ConsumerProcess(ctx, ctx.bootstrap, topics, group, receiver.url,
                               "--max-batch-events", str(batch), name=f"life{round_no}")
        try:
            target = before + posts_per_life
            landed = wait_until(posts_reach(receiver, target), 90, 0.02)
            if landed:
                proc.kill()
                kills += 1
                ctx.say(f"  {NAME}: kill {kills} after {len(receiver.received)} POSTs")
        finally:
            proc.stop()
    return kills
