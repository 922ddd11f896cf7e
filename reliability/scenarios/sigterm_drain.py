"""SIGTERM mid-flow, three times, each member replaced by a fresh one.

Promise: a SIGTERM stops fetching, finishes or flushes what is in flight, commits and exits 0
within the drain timeout, so the next member re-sends nothing: zero duplicates.
"""

from __future__ import annotations

from bouncewire.receiver import FaultPlan
from reliability.harness import (
    OFFSETS_BEHIND,
    Context,
    Flow,
    emails,
    open_flow,
    posts_reach,
    timed,
)
from reliability.model import Scenario
from reliability.support import wait_until

NAME = "sigterm_drain"
STOPS = 3


@timed
def run(ctx: Context) -> Scenario:
    count, rate, batch = ctx.pick(3000, 12000), ctx.pick(150, 300), ctx.pick(100, 200)
    with open_flow(ctx, "term", faults=FaultPlan(delay_s=0.1, count=-1)) as flow:
        with flow.paced(emails("term", count), rate):
            exits = [_one_member(flow, batch, f"term{i}") for i in range(STOPS)]
        with flow.running(batch=batch, name="last") as last:
            wait_until(last.ready, 60, 0.1)
            committed = flow.settle(len(flow.publisher.acked_emails), 90, 0.3)
            exits.append(last.terminate())
        result = Scenario.tallied(NAME, flow.publisher.acked_emails, flow.counts())
    result.check(exits == [0] * (STOPS + 1), f"exit codes after SIGTERM: {exits}")
    result.check(committed, OFFSETS_BEHIND)
    result.extra.update(sigterms=STOPS + 1)
    return result


def _one_member(flow: Flow, batch: int, name: str) -> int:
    """Start a member, let it join and send a few POSTs, SIGTERM it; its exit code."""
    with flow.running(batch=batch, name=name) as member:
        wait_until(member.ready, 60, 0.1)
        wait_until(posts_reach(flow.receiver, len(flow.receiver.received) + 3), 30, 0.05)
        return member.terminate()
