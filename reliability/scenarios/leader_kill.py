"""A 3-node KRaft cluster (RF 3, min.insync.replicas 2, unclean election off): the leader of
a source partition is SIGKILLed mid-flow, then brought back.

Promise (Kafka's replication_test "hard_bounce"): every record the idempotent acks=all
producer was told was acknowledged is consumed and delivered.
"""

from __future__ import annotations

from reliability.harness import OFFSETS_BEHIND, Context, LocalCluster, emails, open_flow, timed
from reliability.model import Scenario

NAME = "cluster_leader_sigkill"


@timed
def run(ctx: Context) -> Scenario:
    count, rate, batch = ctx.pick(1200, 6000), ctx.pick(100, 150), 100
    with (LocalCluster() as cluster,
          open_flow(ctx, "lead", bootstrap=cluster.bootstrap, replication=3,
                    config={"min.insync.replicas": "2"}, message_timeout_ms=120_000) as flow):
        ctx.say(f"  {NAME}: cluster up at {cluster.bootstrap}")
        with flow.running(batch=batch):
            with flow.paced(emails("lead", count), rate) as done:
                flow.wait_delivered(count // 4, 90)
                victim = cluster.leader(flow.topics.send_results, 0)
                cluster.kill(victim)
                ctx.say(f"  {NAME}: killed leader node {victim}")
                flow.wait_delivered(count // 2, 90)
                cluster.start(victim)
                ctx.say(f"  {NAME}: node {victim} back")
                done.wait(240)
            published = flow.publisher.acked_emails
            committed = flow.settle(len(published), 120)
        result = Scenario.tallied(NAME, published, flow.counts(), max_duplicates=2 * batch * 3)
    result.check(committed, OFFSETS_BEHIND)
    result.extra.update(killed_node=victim, producer_gave_up=flow.publisher.failed)
    return result
