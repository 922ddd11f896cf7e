"""A 3-node KRaft cluster (RF 3, min.insync.replicas 2, unclean election off): the leader of
a source partition is SIGKILLed mid-flow, then brought back.

Promise (Kafka's replication_test "hard_bounce"): every record the idempotent acks=all
producer was told was acknowledged is consumed and delivered.
"""

from __future__ import annotations

import time

from bouncewire.receiver import CallbackReceiver
from reliability.harness import (
    AckedPublisher,
    ConsumerProcess,
    Context,
    LocalCluster,
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

NAME = "cluster_leader_sigkill"


def run(ctx: Context) -> Scenario:
    started = time.monotonic()
    count, rate, batch = ctx.pick(1200, 6000), ctx.pick(100, 150), 100
    with LocalCluster() as cluster, CallbackReceiver() as receiver:
        ctx.say(f"  {NAME}: cluster up at {cluster.bootstrap}")
        topics = make_topics(cluster.bootstrap, "lead", replication=3,
                             config={"min.insync.replicas": "2"})
        group = unique("lead")
        publisher = AckedPublisher(cluster.bootstrap, topics, message_timeout_ms=120_000)
        consumer = ConsumerProcess(ctx, cluster.bootstrap, topics, group, receiver.url,
                                   "--max-batch-events", str(batch))
        try:
            with paced_publisher(publisher, "send_result", emails("lead", count), rate) as done:
                wait_until(lambda: unique_delivered(receiver) >= count // 4, 90)
                victim = cluster.leader(topics.send_results, 0)
                cluster.kill(victim)
                ctx.say(f"  {NAME}: killed leader node {victim}")
                wait_until(lambda: unique_delivered(receiver) >= count // 2, 90)
                cluster.start(victim)
                ctx.say(f"  {NAME}: node {victim} back")
                done.wait(240)
            published = publisher.acked_emails
            wait_until(lambda: unique_delivered(receiver) >= len(published), 120, 0.5)
            committed = wait_until(lambda: all_committed(cluster.bootstrap, group,
                                                         topics.send_results), 60, 0.5)
        finally:
            consumer.stop()
        counts = delivered_counts(receiver)
    result = Scenario(NAME, published=len(published), max_duplicates=2 * batch * 3)
    result.delivered_unique, result.lost, result.duplicates = tally(published, counts)
    result.check(committed, "offsets did not reach the end of the topic")
    result.extra.update(killed_node=victim, producer_gave_up=publisher.failed)
    result.seconds = time.monotonic() - started
    return result
