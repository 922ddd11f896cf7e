"""A callback outage: 503 and 429 with Retry-After, bare 503s and stalled responses, while
events keep arriving. The consumer runs with max.poll.interval.ms = 10 s, far shorter than the
outage.

Promise: no rebalance (the member pauses its partitions and keeps polling), memory bounded
(peak RSS reported), nothing lost once CleverTap is back. A stalled POST that the receiver
finally accepts after the client timed out is re-sent: those duplicates are expected and
bounded by the stalled batches' sizes.
"""

from __future__ import annotations

import itertools
import time

from bouncewire.receiver import CallbackReceiver, FaultPlan
from reliability.harness import ConsumerProcess, Context, emails, open_flow, timed
from reliability.model import Scenario

NAME = "callback_outage"
PHASE_S = 5.0
RSS_LIMIT_MB = 250.0
# Every phase fails every request; the "stall" answers 200 only after the 2 s client timeout.
PHASES = (
    FaultPlan(status=503, count=-1, retry_after="2"),
    FaultPlan(status=429, count=-1, retry_after="1"),
    FaultPlan(delay_s=2.5, count=-1),
    FaultPlan(status=503, count=-1),
)


@timed
def run(ctx: Context) -> Scenario:
    outage_s = ctx.pick(20, 150)
    rate, batch, pending = ctx.pick(100, 100), 200, ctx.pick(1000, 5000)
    count = int(rate * (outage_s + 10))
    with open_flow(ctx, "out") as flow:
        with flow.running("--max-pending-events", str(pending), batch=batch) as consumer:
            with flow.paced(emails("out", count), rate):
                flow.wait_delivered(1, 60)
                paused = _outage(ctx, flow.receiver, consumer, outage_s)
                flow.receiver.set_faults(FaultPlan())
            published = flow.publisher.acked_emails
            flow.wait_delivered(len(published), 180, 0.5)
            rebalances = {c: consumer.metric("bouncewire_rebalance_events_total", change=c)
                          for c in ("revoked", "lost")}
            alive = consumer.proc.poll() is None
        stalled = sum(len(p.processed_events) for p in flow.receiver.received
                      if p.fault and "delay" in p.fault)
        result = Scenario.tallied(NAME, published, flow.counts(), max_duplicates=stalled)
    result.check(rebalances == {"revoked": 0.0, "lost": 0.0},
                 f"the member left the group during the outage: {rebalances}")
    result.check(alive, "the consumer process exited during the outage")
    result.check(paused, "no partition was paused during the outage")
    result.check(consumer.peak_rss_mb <= RSS_LIMIT_MB,
                 f"peak RSS {consumer.peak_rss_mb} MB above {RSS_LIMIT_MB} MB")
    result.extra.update(outage_s=outage_s, peak_rss_mb=consumer.peak_rss_mb,
                        rss_limit_mb=RSS_LIMIT_MB, max_pending_events=pending,
                        stalled_then_accepted=stalled)
    return result


def _outage(ctx: Context, receiver: CallbackReceiver, consumer: ConsumerProcess,
            seconds: float) -> bool:
    """Cycle the failure phases for `seconds`; True if partitions were seen paused."""
    ctx.say(f"  {NAME}: outage for {seconds:.0f}s")
    end = time.monotonic() + seconds
    paused = False
    for plan in itertools.cycle(PHASES):
        if time.monotonic() >= end:
            return paused
        receiver.set_faults(plan)
        phase_end = min(time.monotonic() + PHASE_S, end)
        while time.monotonic() < phase_end:
            paused = paused or consumer.metric("bouncewire_paused_partitions") > 0
            time.sleep(0.5)
    return paused
