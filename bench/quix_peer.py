"""The peer row: bouncewire's job written as a Quix Streams application, the way its
documentation shows (a custom deserializer, a StreamingDataFrame, a custom ``BatchingSink``).

Reads the send-results topic with bouncewire's own Avro codec (``Codec.decode`` in a custom
``Deserializer``), classifies each send result with the same ``classify``, drops those that
need no callback, and POSTs the rest in CleverTap's legacy array format, at most 1,000 events
per POST, from a ``BatchingSink``: Quix collects a checkpoint's records per partition and calls
``write()`` before it commits the offsets (at-least-once, as bouncewire). A non-2xx answer raises
``SinkBackpressureError``, which pauses the partition and re-reads the checkpoint later.

``commit_interval`` is 0.5 s (Quix's default is 5 s), bouncewire's default ``--linger-ms``: a
sink flushes once per checkpoint, so the default would hold every callback up to 5 s.

Runs in its own virtualenv (``.cache/quix-venv``, made by ``bench.delivery_bench``): quixstreams
3.28 requires confluent-kafka < 2.13 and bouncewire pins 2.16.1. The bench starts it as
``python -m bench.quix_peer ...``, measures at the sink from process start to the last
callback, and stops it with SIGTERM (Quix's documented way to stop an application).
"""

from __future__ import annotations

import argparse
from typing import Any

import httpx
import orjson
from quixstreams import Application
from quixstreams.models import Deserializer
from quixstreams.sinks import BatchingSink, SinkBackpressureError, SinkBatch

from bouncewire.schemas import Codec, SchemaStore
from bouncewire.schemas.classification import classify

MAX_EVENTS_PER_POST = 1000  # CleverTap answers 400 above this
_CALLBACK_TYPE = {"hard": "hardbounce", "soft": "softbounce"}


class BouncewireAvro(Deserializer):  # type: ignore[misc]
    """bouncewire's single-object Avro, decoded by its own codec."""

    def __init__(self) -> None:
        super().__init__()
        self._codec = Codec(SchemaStore.load())

    def __call__(self, value: bytes, ctx: Any) -> dict[str, Any]:
        record: dict[str, Any] = self._codec.decode(value).record
        return record


def to_callback(record: dict[str, Any]) -> dict[str, Any] | None:
    """The callback item of a send result, or None when it needs none (delivered)."""
    result = classify(
        record["email"],
        record["smtp_code"],
        record["enhanced_code"],
        record["smtp_message"],
        record["error"],
    )
    kind = _CALLBACK_TYPE.get(result.bounce)
    if kind is None:
        return None
    return {"event": kind, "e": record["email"], "ts": record["event_time"] // 1000}


class CallbackSink(BatchingSink):  # type: ignore[misc]
    """POSTs a checkpoint's callbacks in chunks of at most 1,000 events."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self._url = url
        self._client: httpx.Client | None = None

    def setup(self) -> None:
        self._client = httpx.Client(timeout=10.0)

    def write(self, batch: SinkBatch) -> None:
        assert self._client is not None
        for chunk in batch.iter_chunks(MAX_EVENTS_PER_POST):
            response = self._client.post(
                self._url,
                content=legacy_payload([item.value for item in chunk]),
                headers={"Content-Type": "application/json"},
            )
            if not response.is_success:
                raise SinkBackpressureError(retry_after=1.0)


def legacy_payload(items: list[dict[str, Any]]) -> bytes:
    groups: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        groups.setdefault(item["event"], []).append({"e": item["e"], "ts": item["ts"]})
    return orjson.dumps([{"event": kind, "data": data} for kind, data in groups.items()])


def main() -> None:
    parser = argparse.ArgumentParser(description="bouncewire's job as a Quix Streams app")
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--commit-interval", type=float, default=0.5)
    parser.add_argument("--state-dir", default="state", help="Quix's state store (unused)")
    args = parser.parse_args()
    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        commit_interval=args.commit_interval,
        auto_create_topics=False,
        state_dir=args.state_dir,
    )
    topic = app.topic(args.topic, value_deserializer=BouncewireAvro())
    sdf = app.dataframe(topic)
    sdf = sdf.apply(to_callback).filter(lambda item: item is not None)
    sdf.sink(CallbackSink(args.url))
    app.run()


if __name__ == "__main__":
    main()
