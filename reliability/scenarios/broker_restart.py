"""The (single) broker SIGKILLed and restarted while events flow in and callbacks flow out.

The producer is idempotent with acks=all; only what it was told was acknowledged counts as
published. Promise: every acknowledged event is delivered; the consumer rides through.
"""

from __future__ import annotations

import time

from bouncewire.receiver import CallbackReceiver
from reliability.harness import (
    AckedPublisher,
    ConsumerProcess,
    Context,
    LocalBroker,
    all_committed,
    delivered_counts,
    emails,
    make_topics,
    paced_publisher,
    unique,
    unique_delivered,
    wait_until,
)
from reliability.model import Scenario, tally

NAME = "broker_sigkill_restart"
DOWN_S = 3.0


def run(ctx: Context) -> Scenario:
    started = time.monotonic()
    count, rate, batch = ctx.pick(1200, 6000), ctx.pick(100, 200), 100
    with LocalBroker() as broker, CallbackReceiver() as receiver:
        topics = make_topics(broker.bootstrap, "brk")
        group = unique("brk")
        # Long enough that records queued while the broker is down are retried, not dropped.
        publisher = AckedPublisher(broker.bootstrap, topics, message_timeout_ms=120_000)
        consumer = ConsumerProcess(ctx, broker.bootstrap, topics, group, receiver.url,
                                   "--max-batch-events", str(batch))
        try:
            with paced_publisher(publisher, "send_result", emails("brk", count), rate) as done:
                wait_until(lambda: unique_delivered(receiver) >= count // 4, 60)
                broker.kill()
                ctx.say(f"  {NAME}: broker killed after {unique_delivered(receiver)} delivered")
                time.sleep(DOWN_S)
                broker.up()
                ctx.say(f"  {NAME}: broker back")
                done.wait(240)
            published = publisher.acked_emails
            wait_until(lambda: unique_delivered(receiver) >= len(published), 120, 0.5)
            committed = wait_until(lambda: all_committed(broker.bootstrap, group,
                                                         topics.send_results), 60, 0.5)
            alive = consumer.proc.poll() is None
        finally:
            consumer.stop()
        counts = delivered_counts(receiver)
    result = Scenario(NAME, published=len(published), max_duplicates=2 * batch * 3)
    result.delivered_unique, result.lost, result.duplicates = tally(published, counts)
    result.check(alive, "the consumer process exited during the broker outage")
    result.check(committed, "offsets did not reach the end of the topic")
    result.extra.update(producer_gave_up=publisher.failed, attempted=count)
    result.seconds = time.monotonic() - started
    return result
