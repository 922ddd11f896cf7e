"""Poison messages interleaved with good ones on the same partition: random bytes, empty
values, an unknown schema fingerprint, truncated Avro.

Promise: every poison record lands on the dead-letter topic, every good one is delivered,
and no poison record blocks the partition behind it.
"""

from __future__ import annotations

import random
import time

from bouncewire.receiver import CallbackReceiver
from reliability.harness import (
    AckedPublisher,
    ConsumerProcess,
    Context,
    all_committed,
    delivered_counts,
    emails,
    hard_bounce,
    make_topics,
    read_topic,
    unique,
    unique_delivered,
    wait_until,
)
from reliability.model import Scenario, tally
from schemas import Codec, SchemaStore

NAME = "poison_interleaved"
KEY = b"one-partition"


def poison_values(rng: random.Random, good: bytes) -> list[bytes]:
    """One of each kind of undecodable value."""
    return [
        rng.randbytes(rng.randint(1, 64)),
        b"",
        b"\xc3\x01" + rng.randbytes(8) + good[10:],  # unknown fingerprint
        good[: rng.randint(1, len(good) - 1)],  # truncated
    ]


def run(ctx: Context) -> Scenario:
    started = time.monotonic()
    count, every = ctx.pick(400, 4000), 10
    rng = random.Random(7)  # noqa: S311 -- reproducible garbage, not security
    codec = Codec(SchemaStore.load())
    topics = make_topics(ctx.bootstrap, "poison")
    publisher = AckedPublisher(ctx.bootstrap, topics)
    poison_count = 0
    for i, address in enumerate(emails("poison", count)):
        record = hard_bounce(address)
        publisher.publish("send_result", [record], key=KEY)
        if i % every == 0:
            for value in poison_values(rng, codec.encode("send_result", record)):
                publisher.publish_raw(topics.send_results, value, KEY)
                poison_count += 1
    publisher.flush()
    group = unique("poison")
    with CallbackReceiver() as receiver:
        consumer = ConsumerProcess(ctx, ctx.bootstrap, topics, group, receiver.url)
        try:
            wait_until(lambda: unique_delivered(receiver) >= count, 90, 0.3)
            committed = wait_until(lambda: all_committed(ctx.bootstrap, group,
                                                         topics.send_results), 60, 0.5)
        finally:
            consumer.stop()
        counts = delivered_counts(receiver)
    dead = read_topic(ctx.bootstrap, topics.dlq, poison_count, timeout=30)
    published = publisher.acked_emails
    result = Scenario(NAME, published=len(published) + poison_count, dlq=len(dead))
    result.delivered_unique, lost_good, result.duplicates = tally(published, counts)
    result.lost = lost_good + max(poison_count - len(dead), 0)
    result.check(len(dead) == poison_count,
                 f"{len(dead)} dead letters for {poison_count} poison records")
    result.check(committed, "offsets did not reach the end of the topic")
    result.extra.update(poison=poison_count, good=len(published))
    result.seconds = time.monotonic() - started
    return result
