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

* ``GET /stats``           events, posts, first/last arrival (epoch ns), latency percentiles,
  POSTs refused with 429, and POSTs in progress at once (peak; mean from first to last answer)
* ``POST /reset``          forget everything counted so far
* ``POST /status/<code>``  answer every callback POST with this status from now on
* ``POST /delay/<ms>``     answer each callback POST that long after it arrived, concurrently
  (a distant API: the answers overlap, as a real API's do)
* ``POST /max-concurrent/<k>``  answer 429 with ``Retry-After: 1`` to a POST arriving while k
  are in progress (0: no limit); CleverTap limits concurrent requests per account this way

Delayed POSTs are counted when they are answered (what the consumer sees complete).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
from typing import Any

import orjson

LATENCY_PREFIX = "lat"
_LATENCY_MARK = b'"' + LATENCY_PREFIX.encode()  # an address value starting with the prefix
_LEGACY_ITEM = b'{"e":'
_V2_ITEM = b'"email":'
_OK_BODY = b'{"status":"success"}'
_REASONS = {200: "OK", 404: "Not Found", 429: "Too Many Requests", 503: "Service Unavailable"}
_THROTTLED_BODY = b'{"status":"fail","error":"Too many concurrent requests"}'
THROTTLE_RETRY_AFTER_S = 1


class Tally:
    """What the sink saw; `stats()` is what GET /stats returns."""

    def __init__(self) -> None:
        self.reset()
        self.status = 200
        self.delay_s = 0.0
        self.max_concurrent = 0

    def reset(self) -> None:
        self.events = 0
        self.posts = 0
        self.refused_posts = 0
        self.throttled_posts = 0
        self.in_progress = 0
        self.peak_in_progress = 0
        self.busy_area = 0.0  # integral of in_progress over time (ns), since the first answer
        self._busy_since = 0
        self.load_changes: list[tuple[int, int]] = []  # (time ns, in_progress from then on)
        self.throttled_at: list[int] = []  # time ns of each 429
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

    def begin(self) -> bool:
        """A callback POST starts being answered; False when it must be refused (429)."""
        if self.max_concurrent and self.in_progress >= self.max_concurrent:
            self.throttled_posts += 1
            self.throttled_at.append(time.time_ns())
            return False
        self._advance()
        self.in_progress += 1
        self.peak_in_progress = max(self.peak_in_progress, self.in_progress)
        return True

    def end(self) -> None:
        self._advance()
        self.in_progress -= 1

    def _advance(self) -> None:
        now = time.time_ns()
        if self.first_ns:  # the mean runs from the first answer on, as the rates do
            self.busy_area += self.in_progress * (now - max(self._busy_since, self.first_ns))
        self._busy_since = now
        self.load_changes.append((now, self.in_progress))

    def mean_in_progress(self) -> float:
        span = self.last_ns - self.first_ns
        return self.busy_area / span if span > 0 else float("nan")

    def steady_in_progress(self) -> float:
        """Mean POSTs in progress over the steady window (see `steady`)."""
        window = steady_window(self.arrivals, self.events)
        if window is None:
            return float("nan")
        return mean_level(self.load_changes, *window)

    def steady_in_progress_unpaused(self) -> float:
        """The same, over the parts of the window outside the Retry-After pauses the 429s
        asked for (a client that honours them sends nothing then): how near the limit it runs
        while it may send."""
        window = steady_window(self.arrivals, self.events)
        if window is None:
            return float("nan")
        pauses = pause_spans(self.throttled_at, THROTTLE_RETRY_AFTER_S * 10**9, *window)
        area = span = 0.0
        for start, end in gaps(pauses, *window):
            area += mean_level(self.load_changes, start, end) * (end - start)
            span += end - start
        return area / span if span > 0 else float("nan")

    def stats(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "posts": self.posts,
            "refused_posts": self.refused_posts,
            "throttled_posts": self.throttled_posts,
            "peak_in_progress": self.peak_in_progress,
            "mean_in_progress": self.mean_in_progress(),
            "steady_in_progress": self.steady_in_progress(),
            "steady_in_progress_unpaused": self.steady_in_progress_unpaused(),
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
    window = steady_window(arrivals, total)
    if window is None:
        return None
    t_low, t_high = window
    return {"rate": 0.8 * total / ((t_high - t_low) / 1e9), "seconds": (t_high - t_low) / 1e9}


def steady_records_rate(stats: dict[str, Any], records: int) -> float:
    """Source records/s in a run's steady window: the sink's steady callback rate scaled by
    records per callback (bounces call back, delivered results do not); NaN without one."""
    if not stats.get("steady"):
        return math.nan
    return float(stats["steady"]["rate"]) * records / float(stats["events"])


def mean_level(changes: list[tuple[int, int]], start: int, end: int) -> float:
    """Time-weighted mean over [start, end] of a level given as (time, level from then on)."""
    area, level, at = 0.0, 0, start
    for when, new_level in changes:
        if when > start:
            area += level * (min(when, end) - at)
            at = min(when, end)
        if when >= end:
            break
        level = new_level
    area += level * (end - at)
    return area / (end - start) if end > start else float("nan")


def pause_spans(
    starts: list[int], length: int, window_start: int, window_end: int
) -> list[tuple[int, int]]:
    """The pauses of `length` from `starts`, merged and clipped to [window_start, window_end]."""
    spans: list[tuple[int, int]] = []
    for begin in sorted(starts):
        low, high = max(begin, window_start), min(begin + length, window_end)
        if high <= low:
            continue
        if spans and low <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], high))
        else:
            spans.append((low, high))
    return spans


def gaps(spans: list[tuple[int, int]], window_start: int, window_end: int) -> list[tuple[int, int]]:
    """The parts of [window_start, window_end] outside the (sorted, disjoint) `spans`."""
    found, at = [], window_start
    for low, high in spans:
        if low > at:
            found.append((at, low))
        at = max(at, high)
    if window_end > at:
        found.append((at, window_end))
    return found


def steady_window(arrivals: list[tuple[int, int]], total: int) -> tuple[int, int] | None:
    """(time ns) of the 10th and the 90th percentile of the events in ``arrivals``."""
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
    return t_low, t_high


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
        elif path.startswith(b"/delay/"):
            tally.delay_s = int(path.rsplit(b"/", 1)[1]) / 1000
            self._send(200, b"{}")
        elif path.startswith(b"/max-concurrent/"):
            tally.max_concurrent = int(path.rsplit(b"/", 1)[1])
            self._send(200, b"{}")
        elif method == b"POST" and tally.status == 200:
            self._take(body)
        elif method == b"POST":
            tally.refused_posts += 1
            self._send(tally.status, b'{"status":"fail"}')
        else:
            self._send(404, b"{}")

    def _take(self, body: bytes) -> None:
        tally = self.tally
        if not tally.begin():
            retry_after = f"Retry-After: {THROTTLE_RETRY_AFTER_S}\r\n"
            self._send(429, _THROTTLED_BODY, retry_after)
        elif tally.delay_s > 0:
            asyncio.get_running_loop().call_later(tally.delay_s, self._answered, body)
        else:
            self._answered(body)

    def _answered(self, body: bytes) -> None:
        self.tally.record(body)
        self.tally.end()
        self._send(200, _OK_BODY)

    def _send(self, status: int, body: bytes, extra_headers: str = "") -> None:
        assert self.transport is not None
        if self.transport.is_closing():  # the client went away during a delay
            return
        head = (
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}\r\n{extra_headers}"
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
