"""SIGTERM mid-flow, three times, each member replaced by a fresh one.

Promise: a SIGTERM stops fetching, finishes or flushes what is in flight, commits and exits 0
within the drain timeout, so the next member re-sends nothing: zero duplicates.
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
    make_topics,
    paced_publisher,
    posts_reach,
    unique,
    unique_reach,
    wait_until,
)
from reliability.model import Scenario, tally

NAME = "sigterm_drain"
STOPS = 3


def run(ctx: Context) -> Scenario:
    started = time.monotonic()
    count, rate, batch = ctx.pick(3000, 12000), ctx.pick(150, 300), ctx.pick(100, 200)
    topics = make_topics(ctx.bootstrap, "term")
    publisher = AckedPublisher(ctx.bootstrap, topics)
    group = unique("term")
    with CallbackReceiver(faults=FaultPlan(delay_s=0.1, count=-1)) as receiver:
        with paced_publisher(publisher, "send_result", emails("term", count), rate):
            exits = [_one_member(ctx, topics, group, receiver, batch, f"term{i}")
                     for i in range(STOPS)]
        last = ConsumerProcess(ctx, ctx.bootstrap, topics, group, receiver.url,
                               "--max-batch-events", str(batch), name="last")
        try:
            wait_until(last.ready, 60, 0.1)
            wait_until(unique_reach(receiver, len(publisher.acked_emails)), 90, 0.3)
            committed = wait_until(lambda: all_committed(ctx.bootstrap, group,
                                                         topics.send_results), 60, 0.5)
            exits.append(last.terminate())
        finally:
            last.stop()
        counts = delivered_counts(receiver)
    result = Scenario(NAME, published=len(publisher.acked_emails), max_duplicates=0)
    result.delivered_unique, result.lost, result.duplicates = tally(
        publisher.acked_emails, counts)
    result.check(exits == [0] * (STOPS + 1), f"exit codes after SIGTERM: {exits}")
    result.check(committed, "offsets did not reach the end of the topic")
    result.extra.update(sigterms=STOPS + 1)
    result.seconds = time.monotonic() - started
    return result


def _one_member(ctx: Context, topics: TopicNames, group: str, receiver: CallbackReceiver,
                batch: int, name: str) -> int:
    """Start a member, let it join and send a few POSTs, SIGTERM it; its exit code."""
    member = ConsumerProcess(ctx, ctx.bootstrap, topics, group, receiver.url,
                             "--max-batch-events", str(batch), name=name)
    try:
        wait_until(member.ready, 60, 0.1)
        wait_until(posts_reach(receiver, len(receiver.received) + 3), 30, 0.05)
        return member.terminate()
    finally:
        member.stop()
