"""Micro-benchmark of the schemas codec hot path: prints µs per encode/decode.

Run: .venv/bin/python tests/schemas/bench_codec.py [--iterations N]
(Not collected by pytest: the file name has no test_ prefix.)
"""

from __future__ import annotations

import argparse
import timeit
import uuid
from collections.abc import Callable
from functools import partial
from typing import Any

from bouncewire.schemas import Codec, SchemaStore

SEND_RESULT: dict[str, Any] = {
    "event_id": str(uuid.UUID(int=0x0B7C8A2E8F4E4A579F0E1D2C3B4A5F60)),
    "event_time": 1_735_689_600_123,
    "email": "john.doe@example.com",
    "smtp_code": 550,
    "enhanced_code": "5.1.1",
    "smtp_message": "550 5.1.1 The email account that you tried to reach does not exist.",
    "error": None,
    "message_id": "<20250101000000.abc123@mail.example.com>",
    "campaign_id": "cmp-1735689600",
    "meta": "eyJjYW1wYWlnbiI6IjQyIn0=",
    "remote_mta": "gmail-smtp-in.l.google.com",
}
UNSUBSCRIBE: dict[str, Any] = {
    "event_id": str(uuid.UUID(int=0x1B7C8A2E8F4E4A579F0E1D2C3B4A5F61)),
    "event_time": 1_735_689_600_456,
    "email": "jane@example.org",
    "source": "one_click",
    "campaign_id": "cmp-1735689600",
    "meta": None,
}


def _per_op_us(operation: Callable[[], object], iterations: int) -> float:
    best = min(timeit.repeat(operation, number=iterations, repeat=5))
    return best / iterations * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=100_000)
    iterations = parser.parse_args().iterations
    store = SchemaStore.load()
    codec = Codec(store)
    old_writer = SEND_RESULT.copy()
    del old_writer["remote_mta"]
    rows = [("send_result", SEND_RESULT), ("unsubscribe", UNSUBSCRIBE)]
    for kind, record in rows:
        data = codec.encode(kind, record)
        encode_us = _per_op_us(partial(codec.encode, kind, record), iterations)
        decode_us = _per_op_us(partial(codec.decode, data), iterations)
        print(
            f"{kind:<12} {len(data):>4} B  encode {encode_us:6.2f} µs/op  "
            f"decode {decode_us:6.2f} µs/op"
        )
    v1 = next(v for v in store.versions("send_result") if v.version == 1)
    v1_data = _write_with(v1, old_writer)
    v1_us = _per_op_us(lambda: codec.decode(v1_data), iterations)
    print(f"send_result v1 data read as latest: decode {v1_us:6.2f} µs/op")


def _write_with(version: Any, record: dict[str, Any]) -> bytes:
    import io

    from fastavro import schemaless_writer

    buffer = io.BytesIO()
    buffer.write(version.single_object_header)
    schemaless_writer(buffer, version.plain, record)
    return buffer.getvalue()


if __name__ == "__main__":
    main()
