"""Consumer SIGKILLed mid-batch five times in a row, restarted each time.

Promise: nothing lost; each kill re-sends at most what was in flight: the POST under way and
the batch delivered but whose offset commit had not landed, 2 × max batch events. It runs with
`--max-in-flight 1` (one POST at a time, the tightest bound); `consumer_sigkill_in_flight`
kills with many POSTs in flight and checks the general bound, 2 × max-in-flight batches.
"""

from __future__ import annotations

from bouncewire.receiver import FaultPlan
from reliability.harness import (
    OFFSETS_BEHIND,
    Context,
    Flow,
    emails,
    hard_bounce,
    open_flow,
    posts_reach,
    timed,
)
from reliability.model import Scenario
from reliability.support import wait_until

NAME = "consumer_sigkill_x5"
KILLS = 5
ONE_AT_A_TIME = ("--max-in-flight", "1")


@timed
def run(ctx: Context) -> Scenario:
    count, batch = ctx.pick(3000, 20000), ctx.pick(200, 500)
    posts_per_life = ctx.pick(2, 4)
    with open_flow(ctx, "kill") as flow:
        flow.publish_now([hard_bounce(a) for a in emails("kill", count)])
        published = len(flow.publisher.acked_emails)
        # Slow answers keep a POST in flight at almost any moment: the kill lands mid-batch.
        flow.receiver.set_faults(FaultPlan(delay_s=0.2, count=-1))
        kills = _kill_repeatedly(flow, batch, posts_per_life)
        flow.receiver.set_faults(FaultPlan())
        with flow.running(*ONE_AT_A_TIME, batch=batch, name="final"):
            committed = flow.settle(published, 180)
        result = Scenario.tallied(NAME, flow.publisher.acked_emails, flow.counts(),
                                  max_duplicates=KILLS * 2 * batch)
    result.check(kills == KILLS, f"only {kills} of {KILLS} kills landed before the end")
    result.check(committed, OFFSETS_BEHIND)
    result.extra.update(kills=kills, max_batch_events=batch)
    return result


def _kill_repeatedly(flow: Flow, batch: int, posts_per_life: int) -> int:
    """Start, wait for a few POSTs, SIGKILL; KILLS times. Returns the kills that landed."""
    kills = 0
    for round_no in range(KILLS):
        target = len(flow.receiver.received) + posts_per_life
        with flow.running(*ONE_AT_A_TIME, batch=batch, name=f"life{round_no}") as member:
            if wait_until(posts_reach(flow.receiver, target), 90, 0.02):
                member.kill()
                kills += 1
                flow.ctx.say(f"  {NAME}: kill {kills} after {len(flow.receiver.received)} POSTs")
    return kills
