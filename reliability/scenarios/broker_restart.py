"""The (single) broker SIGKILLed and restarted while events flow in and callbacks flow out.

The producer is idempotent with acks=all; only what it was told was acknowledged counts as
published. Promise: every acknowledged event is delivered; the consumer rides through.
"""

from __future__ import annotations

import time

from reliability.harness import OFFSETS_BEHIND, Context, LocalBroker, emails, open_flow, timed
from reliability.model import Scenario

NAME = "broker_sigkill_restart"
DOWN_S = 3.0


@timed
def run(ctx: Context) -> Scenario:
    count, rate, batch = ctx.pick(1200, 6000), ctx.pick(100, 200), 100
    # Long enough that records queued while the broker is down are retried, not dropped.
    with LocalBroker() as broker, open_flow(ctx, "brk", bootstrap=broker.bootstrap,
                                             message_timeout_ms=120_000) as flow:
        with flow.running(batch=batch) as consumer:
            with flow.paced(emails("brk", count), rate) as done:
                flow.wait_delivered(count // 4, 60)
                broker.kill()
                ctx.say(f"  {NAME}: broker killed after {flow.delivered()} delivered")
                time.sleep(DOWN_S)
                broker.up()
                ctx.say(f"  {NAME}: broker back")
                done.wait(240)
            published = flow.publisher.acked_emails
            committed = flow.settle(len(published), 120)
            alive = consumer.proc.poll() is None
        result = Scenario.tallied(NAME, published, flow.counts(), max_duplicates=2 * batch * 3)
    result.check(alive, "the consumer process exited during the broker outage")
    result.check(committed, OFFSETS_BEHIND)
    result.extra.update(producer_gave_up=flow.publisher.failed, attempted=count)
    return result
