"""Poison messages interleaved with good ones on the same partition: random bytes, empty
values, an unknown schema fingerprint, truncated Avro.

Promise: every poison record lands on the dead-letter topic, every good one is delivered,
and no poison record blocks the partition behind it.
"""

from __future__ import annotations

import random

from bouncewire.schemas import Codec, SchemaStore
from reliability.harness import (
    OFFSETS_BEHIND,
    Context,
    emails,
    hard_bounce,
    open_flow,
    read_topic,
    timed,
)
from reliability.model import Scenario

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


@timed
def run(ctx: Context) -> Scenario:
    count, every = ctx.pick(400, 4000), 10
    rng = random.Random(7)  # noqa: S311 -- reproducible garbage, not security
    codec = Codec(SchemaStore.load())
    with open_flow(ctx, "poison") as flow:
        poison_count = 0
        for i, address in enumerate(emails("poison", count)):
            record = hard_bounce(address)
            flow.publisher.publish("send_result", [record], key=KEY)
            if i % every == 0:
                for value in poison_values(rng, codec.encode("send_result", record)):
                    flow.publisher.publish_raw(flow.topics.send_results, value, KEY)
                    poison_count += 1
        flow.publisher.flush()
        with flow.running():
            committed = flow.settle(count, 90, 0.3)
        published = flow.publisher.acked_emails
        result = Scenario.tallied(NAME, published, flow.counts())
    dead = read_topic(ctx.bootstrap, flow.topics.dlq, poison_count, timeout=30)
    result.published += poison_count
    result.dlq = len(dead)
    result.lost += max(poison_count - len(dead), 0)
    result.check(len(dead) == poison_count,
                 f"{len(dead)} dead letters for {poison_count} poison records")
    result.check(committed, OFFSETS_BEHIND)
    result.extra.update(poison=poison_count, good=len(published))
    return result
