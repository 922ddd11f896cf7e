"""Consumers added and removed under load: one member, then three, then one leaves cleanly
(SIGTERM) and one crashes (SIGKILL), while events keep arriving.

Promise: nothing lost. A clean leave hands its partitions over after finishing in-flight
work (cooperative-sticky revoke), a crash re-sends at most its in-flight window: duplicates
≤ 2 × max batch events for the crash.
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
    make_topics,
    paced_publisher,
    unique,
    unique_delivered,
    wait_until,
)
from reliability.model import Scenario, tally

NAME = "consumers_added_removed"


def run(ctx: Context) -> Scenario:
    started = time.monotonic()
    count, rate, batch = ctx.pick(3000, 20000), ctx.pick(150, 400), 200
    topics = make_topics(ctx.bootstrap, "scale", partitions=6)
    group = unique("scale")
    publisher = AckedPublisher(ctx.bootstrap, topics)
    with CallbackReceiver() as receiver:
        receiver.set_faults(FaultPlan(delay_s=0.05, count=-1))

        def member(name: str) -> ConsumerProcess:
            return ConsumerProcess(ctx, ctx.bootstrap, topics, group, receiver.url,
                                   "--max-batch-events", str(batch), name=name)

        members = [member("a")]
        try:
            with paced_publisher(publisher, "send_result", emails("scale", count), rate):
                _step(ctx, receiver, count // 5, "adding b and c")
                members += [member("b"), member("c")]
                _step(ctx, receiver, count // 2, "b leaves (SIGTERM)")
                exit_b = members[1].terminate()
                _step(ctx, receiver, 3 * count // 4, "c crashes (SIGKILL)")
                members[2].kill()
            published = publisher.acked_emails
            wait_until(lambda: unique_delivered(receiver) >= len(published), 120, 0.5)
            committed = wait_until(lambda: all_committed(ctx.bootstrap, group,
                                                         topics.send_results, 6), 60, 0.5)
        finally:
            for m in members:
                m.stop()
        counts = delivered_counts(receiver)
    result = Scenario(NAME, published=len(published), max_duplicates=2 * batch)
    result.delivered_unique, result.lost, result.duplicates = tally(published, counts)
    result.check(exit_b == 0, f"the member leaving on SIGTERM exited {exit_b}")
    result.check(committed, "offsets did not reach the end of the topic")
    result.extra.update(members=3, partitions=6)
    result.seconds = time.monotonic() - started
    return result


def _step(ctx: Context, receiver: CallbackReceiver, delivered: int, then: str) -> None:
    wait_until(lambda: unique_delivered(receiver) >= delivered, 120, 0.2)
    ctx.say(f"  {NAME}: {unique_delivered(receiver)} delivered, {then}")
