"""SIGTERM mid-flow, three times, each member replaced by a fresh one.

Promise: a SIGTERM stops fetching, finishes or flushes what is in flight, commits and exits 0
within the drain timeout, so the next member re-sends nothing: zero duplicates.
"""

from __future__ import annotations

import time

from bouncewire.receiver import CallbackReceiver, FaultPlan
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

NAME = "sigterm_drain"
STOPS = 3


def run(ctx: Context) -> Scenario:
    started = time.monotonic()
    count, batch = ctx.pick(3000, 12000), ctx.pick(200, 500)
    topics = make_topics(ctx.bootstrap, "term")
    publisher = AckedPublisher(ctx.bootstrap, topics)
    publisher.publish("send_result", [hard_bounce(a) for a in emails("term", count)])
    publisher.flush()
    group = unique("term")
    exits: list[int] = []
    with CallbackReceiver(faults=FaultPlan(delay_s=0.2, count=-1)) as receiver:
        for round_no in range(STOPS):
            member = ConsumerProcess(ctx, ctx.bootstrap, topics, group, receiver.url,
                                     "--max-batch-events", str(batch), name=f"term{round_no}")
            try:
                # Mid-flow: the member is in the group and a few POSTs of its own went out.
                wait_until(member.ready, 60, 0.1)
                wait_until(posts_reach(receiver, len(receiver.received) + 2), 60, 0.05)
                exits.append(member.terminate())
            finally:
                member.stop()
        last = ConsumerProcess(ctx, ctx.bootstrap, topics, group, receiver.url,
                               "--max-batch-events", str(batch), name="last")
        try:
            wait_until(lambda: unique_delivered(receiver) >= count, 90, 0.3)
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
