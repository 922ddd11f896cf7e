"""Baselines: the least a Python consumer must do — `consume()` batches, with or without the
fastavro decode of each value (the practical ceiling for any Python consumer of this topic).

Reads `--expect` records with a fresh group, no commits; or, with `--partition P`, the whole of
that partition by assignment (two such processes are the bare loop's own 1-vs-2 scaling).
Prints one JSON line: records, seconds (first record to last, so the group join is left out),
window_cpu_seconds (process CPU from the first record to the last: start-up left out),
join_seconds, first_at and last_at (`time.monotonic()`, which is machine-wide: two processes'
spans can be joined), arrivals (monotonic ns and records of each `consume()` batch: the bench
takes the steady window from them the way the sink counts callbacks, and merges two loops').
"""

from __future__ import annotations

import argparse
import time
import uuid
from io import BytesIO

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from fastavro import schemaless_reader

from bouncewire.schemas import SINGLE_OBJECT_HEADER_SIZE, SchemaStore


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--expect", type=int, help="records to read (the whole topic)")
    parser.add_argument("--partition", type=int, help="read this partition whole, by assignment")
    parser.add_argument("--decode", action="store_true")
    args = parser.parse_args()
    schema = SchemaStore.load().latest("send_result").plain
    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": f"bare-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    if args.partition is None:
        consumer.subscribe([args.topic])
    else:
        low, high = consumer.get_watermark_offsets(TopicPartition(args.topic, args.partition))
        args.expect = high - low
        consumer.assign([TopicPartition(args.topic, args.partition, OFFSET_BEGINNING)])
    # time.monotonic(): machine-wide, so two loops' first_at/last_at can be joined.
    started = time.monotonic()
    first = first_cpu = 0.0
    records = 0
    arrivals: list[tuple[int, int]] = []  # (monotonic ns, records) per consume() batch, done
    while records < args.expect:
        messages = consumer.consume(num_messages=5000, timeout=1.0)
        if messages and not first:
            first, first_cpu = time.monotonic(), time.process_time()
        before = records
        for msg in messages:
            if msg.error() is not None:
                continue
            records += 1
            if args.decode:
                stream = BytesIO(msg.value() or b"")
                stream.seek(SINGLE_OBJECT_HEADER_SIZE)
                schemaless_reader(stream, schema, None)
        if records > before:
            arrivals.append((time.monotonic_ns(), records - before))
    done, window_cpu = time.monotonic(), time.process_time() - first_cpu
    consumer.close()
    print(
        orjson.dumps(
            {
                "records": records,
                "seconds": done - first,
                "window_cpu_seconds": window_cpu,
                "join_seconds": first - started,
                "first_at": first,
                "last_at": done,
                "arrivals": arrivals,
            }
        ).decode()
    )


if __name__ == "__main__":
    main()
