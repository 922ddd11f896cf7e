"""Event-to-callback latency at fixed offered loads.

A paced producer (bouncewire's own KafkaProducer: linger 20 ms, acks=all) stamps each event
with the wall clock at `produce()` in its address (`lat<epoch ns>@gmail.com`, a hard bounce so
every event is POSTed); the sink subtracts it from the arrival time. One consumer process
serves every load; it is warmed up (group joined, first batch delivered) before measuring.
"""

from __future__ import annotations

import random
import time
import uuid
from typing import Any

from bench.common import BenchEnv, Sink
from bench.consumer_bench import ConsumerRun, consumers
from bouncewire.kafka_client import KafkaProducer, KafkaSettings
from bouncewire.producers.publisher import record_key
from bouncewire.schemas import Codec, SchemaStore

TICK_S = 0.005
_REPLY = {
    "smtp_code": 550,
    "enhanced_code": "5.1.1",
    "smtp_message": "The email account that you tried to reach does not exist.",
}


class PacedProducer:
    def __init__(self, env: BenchEnv, topic: str) -> None:
        self.topic = topic
        self.codec = Codec(SchemaStore.load())
        self.producer = KafkaProducer(KafkaSettings(bootstrap_servers=env.bootstrap))
        self.rng = random.Random(3)  # noqa: S311 -- synthetic data

    def send_one(self) -> None:
        now_ns = time.time_ns()
        email = f"lat{now_ns}@gmail.com"
        record: dict[str, object] = {
            "event_id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "event_time": now_ns // 1_000_000,
            "email": email,
            "meta": "bench",
            **_REPLY,
        }
        self.producer.produce(
            self.topic,
            self.codec.encode("send_result", record),
            key=record_key(email),
            timestamp_ms=now_ns // 1_000_000,
        )

    def offer(self, rate: float, seconds: float) -> int:
        """Produce `rate` events/s for `seconds`; returns how many were produced."""
        start = time.monotonic()
        sent = 0
        while (elapsed := time.monotonic() - start) < seconds:
            due = int(rate * elapsed) - sent
            for _ in range(due):
                self.send_one()
            sent += max(due, 0)
            time.sleep(max(TICK_S - (time.monotonic() - start - elapsed), 0.0))
        self.producer.flush(30)
        return sent


def latencies(
    env: BenchEnv, sink: Sink, topic: str, rates: list[float], seconds: float
) -> list[dict[str, Any]]:
    producer = PacedProducer(env, topic)
    results = []
    sink.reset()
    with consumers(ConsumerRun(env, sink, topic)) as run:
        run.start()
        for _ in range(10):
            producer.send_one()
        producer.producer.flush(30)
        if sink.wait_for_events(10, timeout=60)["events"] < 10:
            raise RuntimeError("the consumer delivered no warm-up callback within 60 s")
        for rate in rates:
            sink.reset()
            sent = producer.offer(rate, seconds)
            stats = sink.wait_for_events(sent, timeout=120)
            achieved = sent / seconds
            results.append(
                {
                    "offered_rate": rate,
                    "achieved_offer_rate": achieved,
                    "sent": sent,
                    "received": stats["events"],
                    **stats["latency_ms"],
                }
            )
    return results
