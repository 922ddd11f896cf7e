"""Baselines: the least a Python consumer must do — `consume()` batches, with or without the
fastavro decode of each value (the practical ceiling for any Python consumer of this topic).

Reads `--expect` records with a fresh group, no commits. Prints one JSON line: records,
seconds (first record to last, so the group join is left out), steady_seconds (from the 10th
to the 90th percentile of records, the window the bench also takes for bouncewire's
callbacks), window_cpu_seconds (process CPU from the first record to the last: start-up
left out), join_seconds.
"""

from __future__ import annotations

import argparse
import time
import uuid
from io import BytesIO

import orjson
from confluent_kafka import Consumer
from fastavro import schemaless_reader

from schemas import SINGLE_OBJECT_HEADER_SIZE, SchemaStore


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--expect", type=int, required=True)
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
    consumer.subscribe([args.topic])
    started = time.perf_counter()
    first = first_cpu = 0.0
    records = 0
    marks = {round(args.expect * 0.1): 0.0, round(args.expect * 0.9): 0.0}
    while records < args.expect:
        messages = consumer.consume(num_messages=5000, timeout=1.0)
        if messages and not first:
            first, first_cpu = time.perf_counter(), time.process_time()
        for msg in messages:
            if msg.error() is not None:
                continue
            records += 1
            if args.decode:
                stream = BytesIO(msg.value() or b"")
                stream.seek(SINGLE_OBJECT_HEADER_SIZE)
                schemaless_reader(stream, schema, None)
        for mark, at in marks.items():
            if not at and records >= mark:
                marks[mark] = time.perf_counter()
    done, window_cpu = time.perf_counter(), time.process_time() - first_cpu
    t10, t90 = marks.values()
    consumer.close()
    print(
        orjson.dumps(
            {
                "records": records,
                "seconds": done - first,
                "steady_seconds": t90 - t10,
                "window_cpu_seconds": window_cpu,
                "join_seconds": first - started,
            }
        ).decode()
    )


if __name__ == "__main__":
    main()
