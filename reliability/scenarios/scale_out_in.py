"""Consumers added and removed under load: one member, then three, then one leaves cleanly
(SIGTERM) and one crashes (SIGKILL), while events keep arriving.

Promise: nothing lost. A clean leave hands its partitions over after finishing in-flight
work (cooperative-sticky revoke), a crash re-sends at most its in-flight window: duplicates
≤ 2 × max batch events for the crash.
"""

from __future__ import annotations

from bouncewire.receiver import FaultPlan
from reliability.harness import OFFSETS_BEHIND, Context, Flow, emails, open_flow, timed
from reliability.model import Scenario

NAME = "consumers_added_removed"


@timed
def run(ctx: Context) -> Scenario:
    count, rate, batch = ctx.pick(3000, 20000), ctx.pick(150, 400), 200
    with open_flow(ctx, "scale", partitions=6,
                   faults=FaultPlan(delay_s=0.05, count=-1)) as flow:
        members = [flow.member(batch=batch, name="a")]
        try:
            with flow.paced(emails("scale", count), rate):
                _step(flow, count // 5, "adding b and c")
                members += [flow.member(batch=batch, name="b"),
                            flow.member(batch=batch, name="c")]
                _step(flow, count // 2, "b leaves (SIGTERM)")
                exit_b = members[1].terminate()
                _step(flow, 3 * count // 4, "c crashes (SIGKILL)")
                members[2].kill()
            published = flow.publisher.acked_emails
            committed = flow.settle(len(published), 120)
        finally:
            for m in members:
                m.stop()
        result = Scenario.tallied(NAME, published, flow.counts(), max_duplicates=2 * batch)
    result.check(exit_b == 0, f"the member leaving on SIGTERM exited {exit_b}")
    result.check(committed, OFFSETS_BEHIND)
    result.extra.update(members=3, partitions=6)
    return result


def _step(flow: Flow, delivered: int, then: str) -> None:
    flow.wait_delivered(delivered, 120, 0.2)
    flow.ctx.say(f"  {NAME}: {flow.delivered()} delivered, {then}")
