"""Consumer SIGKILLed with many batches in flight, several times, restarted each time.

The receiver answers every POST after 0.5 s, concurrently (a distant API), so with
`--max-in-flight 8` the adaptive limit climbs to 8 POSTs at once; each kill lands once the
receiver has at least 6 of them in progress. Batches finish out of order, and offsets are
committed only below the lowest unfinished record.

Promise: nothing lost; each kill re-sends at most 2 × max-in-flight × max batch events (the
window of batches in flight or finished behind an unfinished one, and as many again finished
whose commit had not landed); offsets reach the end.
"""

from __future__ import annotations

from reliability.harness import (
    OFFSETS_BEHIND,
    Context,
    Flow,
    emails,
    hard_bounce,
    open_flow,
    timed,
)
from reliability.model import Scenario
from reliability.support import wait_until

NAME = "consumer_sigkill_in_flight"
IN_FLIGHT = 8
AT_KILL = 6  # POSTs the receiver must have in progress when the kill lands
ANSWER_S = 0.5


@timed
def run(ctx: Context) -> Scenario:
    count, batch, kills = ctx.pick(4000, 20000), ctx.pick(100, 200), ctx.pick(2, 4)
    with open_flow(ctx, "inflight") as flow:
        flow.publish_now([hard_bounce(a) for a in emails("inflight", count)])
        published = len(flow.publisher.acked_emails)
        flow.receiver.latency_s = ANSWER_S
        at_kills, gauges = _kill_with_posts_in_flight(flow, batch, kills)
        flow.receiver.latency_s = 0.0
        with flow.running("--max-in-flight", str(IN_FLIGHT), batch=batch, name="final"):
            committed = flow.settle(published, 180)
        result = Scenario.tallied(NAME, flow.publisher.acked_emails, flow.counts(),
                                  max_duplicates=kills * 2 * IN_FLIGHT * batch)
    result.check(len(at_kills) == kills, f"only {len(at_kills)} of {kills} kills landed")
    result.check(all(n >= AT_KILL for n in at_kills),
                 f"kills landed with {at_kills} POSTs in progress, fewer than {AT_KILL}")
    result.check(committed, OFFSETS_BEHIND)
    result.extra.update(kills=len(at_kills), posts_in_progress_at_kills=at_kills,
                        in_flight_gauge_before_kills=gauges, max_in_flight=IN_FLIGHT,
                        max_batch_events=batch)
    return result


def _kill_with_posts_in_flight(flow: Flow, batch: int, kills: int) -> tuple[list[int], list[int]]:
    """Start a member, wait until the receiver answers >= AT_KILL POSTs at once, SIGKILL it.
    Returns the POSTs in progress at each kill and the consumer's in-flight gauge just before."""
    at_kills: list[int] = []
    gauges: list[int] = []
    for life in range(kills):
        with flow.running("--max-in-flight", str(IN_FLIGHT), batch=batch,
                          name=f"life{life}") as member:
            busy = wait_until(lambda: _in_progress(flow) >= AT_KILL, 60, 0.02)
            gauge = member.metric("bouncewire_callback_requests_in_flight", destination="bounce")
            in_progress = _in_progress(flow)
            member.kill()
            if busy:
                at_kills.append(in_progress)
                gauges.append(int(gauge))
                flow.ctx.say(f"  {NAME}: kill {life + 1} with {in_progress} POSTs in progress")
        wait_until(lambda: _in_progress(flow) == 0, 10, 0.05)  # let the orphans finish
    return at_kills, gauges


def _in_progress(flow: Flow) -> int:
    return int(flow.receiver.stats()["in_progress"])
