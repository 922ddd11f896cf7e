"""Baseline: the least a Python producer of our records must do — parse, encode, produce.

No validation, no per-record delivery callback, `poll(0)` once per 1000 records; the same
producer settings as bouncewire's (idempotent, acks=all, linger 20 ms, lz4), so the gap to
the CLI is the price of validation, the codec's checks and the adapter.
Prints one JSON line: records, seconds, bytes.
"""

from __future__ import annotations

import argparse
import time
from io import BytesIO

import orjson
from confluent_kafka import Producer
from fastavro import schemaless_writer

from bouncewire.kafka_client._producer import PRODUCER_DEFAULTS
from bouncewire.schemas import SchemaStore


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--file", required=True)
    args = parser.parse_args()
    started = time.perf_counter()
    version = SchemaStore.load().latest("send_result")
    schema, header = version.plain, version.single_object_header
    names = [field["name"] for field in version.declaration["fields"]]
    producer = Producer({**PRODUCER_DEFAULTS, "bootstrap.servers": args.bootstrap})
    records = total_bytes = 0
    with open(args.file, "rb") as lines:
        for line in lines:
            obj = orjson.loads(line)
            record = {name: obj.get(name) for name in names}
            record["event_time"] = event_ms = int(obj["ts"] * 1000)
            buffer = BytesIO()
            buffer.write(header)
            schemaless_writer(buffer, schema, record)
            value = buffer.getvalue()
            key = obj["email"].lower().encode()
            while True:
                try:
                    producer.produce(args.topic, value, key=key, timestamp=event_ms)
                    break
                except BufferError:
                    producer.poll(0.05)
            records += 1
            total_bytes += len(value)
            if records % 1000 == 0:
                producer.poll(0)
    left = producer.flush(120)
    print(
        orjson.dumps(
            {
                "records": records - left,
                "seconds": time.perf_counter() - started,
                "bytes": total_bytes,
            }
        ).decode()
    )


if __name__ == "__main__":
    main()
