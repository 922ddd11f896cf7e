"""A minimal HTTP/1.1 callback sink for throughput runs: answers at once, counts, times.

`bouncewire.receiver.CallbackReceiver` validates every batch against the spec and runs on the
stdlib ThreadingHTTPServer, so at 100k events/s it would measure itself rather than the
consumer. This one is a raw asyncio protocol: keep-alive, Content-Length bodies only. It counts
a POST's events by counting their keys in the body instead of parsing it, because it shares the
cores with the consumers it measures (JSON escapes every quote inside a string, so ``{"e":``
and ``"email":`` occur once per event and nowhere else). Only a body with addresses of the form
``lat<epoch ns>@...`` (latency runs) is parsed, to read the produce time stamped into them.

Run as a process (its own GIL): ``python -m bench.fast_receiver`` prints its port on the first
line of stdout. Control, on the same port:

* ``GET /stats``           events, posts, first/last arrival (epoch ns), latency percentiles
* ``POST /reset``          forget everything counted so far
* ``POST /status/<code>``  answer every callback POST with this status from now on
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

import orjson

LATENCY_PREFIX = "lat"
_LATENCY_MARK = b'"' + LATENCY_PREFIX.encode()  # an address value starting with the prefix
_LEGACY_ITEM = b'{"e":'
_V2_ITEM = b'"email":'
_OK_BODY = b'{"status":"success"}'
_REASONS = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}


class Tally:
    """What the sink saw; `stats()` is what GET /stats returns."""

    def __init__(self) -> None:
        self.reset()
        self.status = 200

    def reset(self) -> None:
        self.events = 0
        self.posts = 0
        self.refused_posts = 0
        self.first_ns = 0
        self.last_ns = 0
        self.latencies_ns: list[int] = []
        self.arrivals: list[tuple[int, int]] = []  # (time_ns, events) per POST

    def record(self, body: bytes) -> None:
        now = time.time_ns()
        if _LATENCY_MARK in body:
            events = self._record_latencies(now, _items(orjson.loads(body)))
        else:
            events = body.count(_LEGACY_ITEM) + body.count(_V2_ITEM)
        self.events += events
        self.posts += 1
        self.first_ns = self.first_ns or now
        self.last_ns = now
        self.arrivals.append((now, events))

    def _record_latencies(self, now: int, emails: list[str]) -> int:
        for email in emails:
            stamp = email[len(LATENCY_PREFIX) : email.find("@")]
            if email.startswith(LATENCY_PREFIX) and stamp.isascii() and stamp.isdigit():
                self.latencies_ns.append(now - int(stamp))
        return len(emails)

    def stats(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "posts": self.posts,
            "refused_posts": self.refused_posts,
            "first_ns": self.first_ns,
            "last_ns": self.last_ns,
            "latency_ms": latency_summary(self.latencies_ns),
            "steady": self.steady(),
        }

    def steady(self) -> dict[str, float] | None:
        return steady(self.arrivals, self.events)


def steady(arrivals: list[tuple[int, int]], total: int) -> dict[str, float] | None:
    """Events/s between the 10th and the 90th percentile of ``arrivals`` ((time ns, events),
    in time order): the rate once every consumer holds its partitions, without the ramp-up
    (group join, rebalance) and tail."""
    low, high = total * 0.1, total * 0.9
    seen, t_low, t_high = 0, 0, 0
    for now, n in arrivals:
        seen += n
        if not t_low and seen >= low:
            t_low = now
        if seen >= high:
            t_high = now
            break
    if not total or t_high <= t_low:
        return None
    return {"rate": 0.8 * total / ((t_high - t_low) / 1e9), "seconds": (t_high - t_low) / 1e9}


def _items(payload: Any) -> list[str]:
    """The addresses of a legacy (array of groups) or v2 (object) callback body."""
    if isinstance(payload, list):
        return [item["e"] for group in payload for item in group["data"]]
    return [item["email"] for item in payload["events"]["failed"]]


def percentile(sorted_values: list[int], q: float) -> float:
    """Nearest-rank percentile of an ascending list (q in 0..100)."""
    if not sorted_values:
        return float("nan")
    rank = max(int(round(q / 100 * len(sorted_values) + 0.5)) - 1, 0)
    return float(sorted_values[min(rank, len(sorted_values) - 1)])


def latency_summary(latencies_ns: list[int]) -> dict[str, float]:
    values = sorted(latencies_ns)
    summary = {f"p{q:g}": percentile(values, q) / 1e6 for q in (50, 90, 99, 99.9)}
    summary["max"] = values[-1] / 1e6 if values else float("nan")
    summary["count"] = float(len(values))
    return summary


class _Connection(asyncio.Protocol):
    def __init__(self, tally: Tally) -> None:
        self.tally = tally
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (request := self._next_request()) is not None:
            self._answer(*request)

    def _next_request(self) -> tuple[bytes, bytes, bytes] | None:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = bytes(self.buffer[:end])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if len(self.buffer) < end + 4 + length:
            return None
        body = bytes(self.buffer[end + 4 : end + 4 + length])
        del self.buffer[: end + 4 + length]
        method, path = head.split(b" ", 2)[:2]
        return method, path, body

    def _answer(self, method: bytes, path: bytes, body: bytes) -> None:
        tally = self.tally
        if path == b"/stats":
            self._send(200, orjson.dumps(tally.stats()))
        elif path == b"/reset":
            tally.reset()
            self._send(200, b"{}")
        elif path.startswith(b"/status/"):
            tally.status = int(path.rsplit(b"/", 1)[1])
            self._send(200, b"{}")
        elif method == b"POST" and tally.status == 200:
            tally.record(body)
            self._send(200, _OK_BODY)
        elif method == b"POST":
            tally.refused_posts += 1
            self._send(tally.status, b'{"status":"fail"}')
        else:
            self._send(404, b"{}")

    def _send(self, status: int, body: bytes) -> None:
        assert self.transport is not None
        head = (
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.transport.write(head.encode("ascii") + body)


async def serve(port: int) -> None:
    tally = Tally()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Connection(tally), "127.0.0.1", port)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    try:
        asyncio.run(serve(args.port))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
