"""A stand-in for CleverTap's Generic SMTP callback URL: a real HTTP server on loopback.

It checks every POST against the callback format of the seed spec (the legacy array and the v2
object), answers the way CleverTap does (200, 400 "More than allowed events were sent" above
1000 events, the partial-success body), and injects faults on demand: a status for the next N
requests, Retry-After, a hang, a dropped connection, random failures. Tests run it in a thread;
`make demo` and people trying things by hand run it as `bouncewire receiver`.

Callback URLs carry the account token in their query string, so nothing here ever prints or
records a query string, and emails are printed masked (`j***@example.com`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import signal
import socket
import struct
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO, cast
from urllib.parse import parse_qs, urlsplit

LEGACY_EVENT_TYPES = ("softbounce", "hardbounce", "unsubscribe")
# v2 type -> the event name used in stats (the legacy names where there is one).
V2_FAILED_TYPES = {
    "hard_bounce": "hardbounce",
    "soft_bounce": "softbounce",
    "unsubscribed": "unsubscribe",
    "spam": "spam",
}
V2_SUCCESS_TYPES = {"delivered": "delivered"}
MAX_EVENTS_PER_POST = 1000
TOO_MANY_EVENTS = "More than allowed events were sent"
UNMAPPED_EVENT = "Could not map event to any bounce type"
TOO_MANY_CONCURRENT = "Too many concurrent requests"  # CleverTap's 429 (its API request limits)
CONTROL_PATHS = ("/_control", "/_stats", "/_received")
MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_PROBLEMS = 10
# Epoch seconds reach 10**11 in the year 5138; epoch milliseconds passed it in 1973.
MILLISECONDS_THRESHOLD = 10**11
RESET_STATUS = 0  # the status recorded when the connection was dropped without an answer


# --------------------------------------------------------------------------- fault plan


_PLAN_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "status": (int,),
    "count": (int,),
    "retry_after": (str, type(None)),
    "delay_s": (int, float),
    "partial_unprocessed": (int,),
    "fail_rate": (int, float),
    "close_connection": (bool,),
    "seed": (int,),
}


@dataclass
class FaultPlan:
    """What the receiver answers; replace it at runtime with `set_faults` or `POST /_control`.

    The next `count` callbacks (-1: all of them) get the fault: first a sleep of `delay_s`, then
    a dropped connection if `close_connection`, else `status` (with `Retry-After`) if it is not
    200, else a 200 whose body lists the first `partial_unprocessed` events as unprocessed.
    Independently, any other callback fails with probability `fail_rate` (answered with
    `status`, or 503 when `status` is 2xx), drawn from an RNG seeded with `seed`.
    """

    status: int = 200
    count: int = 0
    retry_after: str | None = None
    delay_s: float = 0.0
    partial_unprocessed: int = 0
    fail_rate: float = 0.0
    close_connection: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if not 100 <= self.status <= 599:
            raise ValueError("status must be an HTTP status between 100 and 599")
        if self.count < -1:
            raise ValueError("count must be -1 (forever), 0 (no fault) or positive")
        if self.delay_s < 0 or self.partial_unprocessed < 0:
            raise ValueError("delay_s and partial_unprocessed must not be negative")
        if not 0.0 <= self.fail_rate <= 1.0:
            raise ValueError("fail_rate must be between 0 and 1")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> FaultPlan:
        """A plan from JSON; missing keys take their defaults, unknown keys are refused."""
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown fault plan keys: {', '.join(unknown)}")
        values = dict(data)
        if isinstance(values.get("retry_after"), int) and not isinstance(
            values["retry_after"], bool
        ):
            values["retry_after"] = str(values["retry_after"])  # JSON users write 2, not "2"
        for name, value in values.items():
            expected = _PLAN_FIELD_TYPES[name]
            wrong_bool = isinstance(value, bool) and bool not in expected
            if wrong_bool or not isinstance(value, expected):
                raise ValueError(f"fault plan key {name} has the wrong type")
        return cls(**values)


@dataclass(frozen=True)
class _Fault:
    """The fault drawn for one request."""

    status: int
    retry_after: str | None
    delay_s: float
    close_connection: bool
    partial_unprocessed: int
    drawn_at_random: bool

    def describe(self) -> str | None:
        parts = [f"delay {self.delay_s:g}s"] if self.delay_s > 0 else []
        if self.close_connection:
            parts.append("connection dropped")
        elif self.status != 200:
            retry = f" Retry-After {self.retry_after}" if self.retry_after else ""
            parts.append(f"status {self.status}{retry}")
        elif self.partial_unprocessed > 0:
            parts.append(f"partial success, {self.partial_unprocessed} unprocessed")
        if parts and self.drawn_at_random:
            parts.append("random")
        return ", ".join(parts) or None


class _FaultSchedule:
    """Draws the fault for each request from the current plan (thread-safe)."""

    def __init__(self, plan: FaultPlan) -> None:
        self._lock = threading.Lock()
        self.replace(plan)

    def replace(self, plan: FaultPlan) -> None:
        with self._lock:
            self._plan = plan
            self._remaining = plan.count
            # Not for security: a seeded RNG makes random faults repeatable.
            self._rng = random.Random(plan.seed)  # noqa: S311

    @property
    def plan(self) -> FaultPlan:
        with self._lock:
            return self._plan

    @property
    def remaining(self) -> int:
        with self._lock:
            return self._remaining

    def next_fault(self) -> _Fault | None:
        with self._lock:
            plan = self._plan
            if self._remaining != 0:
                self._remaining -= 1 if self._remaining > 0 else 0
                return _Fault(
                    plan.status,
                    plan.retry_after,
                    plan.delay_s,
                    plan.close_connection,
                    plan.partial_unprocessed,
                    drawn_at_random=False,
                )
            if plan.fail_rate > 0 and self._rng.random() < plan.fail_rate:
                status = plan.status if plan.status >= 300 else 503
                return _Fault(status, plan.retry_after, 0.0, False, 0, drawn_at_random=True)
        return None


# --------------------------------------------------------------------------- validation


def mask_email(email: str) -> str:
    """`jane@example.com` -> `j***@example.com`; anything without an @ -> `***`."""
    local, at, domain = email.rpartition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"


def _describe(value: Any) -> str:
    """A short, email-free rendering of a client-supplied value for a problem message."""
    if isinstance(value, str):
        text = mask_email(value) if "@" in value else value
        return repr(text if len(text) <= 24 else text[:24] + "...")
    return "null" if value is None else type(value).__name__


@dataclass(frozen=True)
class ReceivedEvent:
    """One event of a batch, normalised across the legacy and v2 shapes."""

    event: str  # softbounce | hardbounce | unsubscribe (v2 adds spam, delivered)
    email: str = field(repr=False)
    ts: int | None  # v2 events carry no time
    source: Mapping[str, Any] = field(repr=False, compare=False)  # echoed when unprocessed


@dataclass(frozen=True)
class BatchCheck:
    """The verdict on one callback body: its events and every rule it breaks."""

    payload: Any = field(repr=False)
    payload_format: str  # legacy | v2 | unknown
    events: tuple[ReceivedEvent, ...] = field(repr=False)
    problems: tuple[str, ...]
    too_many_events: bool

    @property
    def valid(self) -> bool:
        return not self.problems


class _Findings:
    """Collects problems, good events and the item count while a body is walked."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.events: list[ReceivedEvent] = []
        self.item_count = 0

    def problem(self, text: str) -> bool:
        self.problems.append(text)
        return False

    def capped_problems(self) -> tuple[str, ...]:
        if len(self.problems) <= MAX_PROBLEMS:
            return tuple(self.problems)
        extra = len(self.problems) - MAX_PROBLEMS
        return (*self.problems[:MAX_PROBLEMS], f"... and {extra} more problems")


_NOT_JSON = object()


def check_batch(body: bytes, content_type: str | None) -> BatchCheck:
    """Check a callback body against the seed's format (legacy array) or the v2 object."""
    findings = _Findings()
    if (content_type or "").split(";")[0].strip().lower() != "application/json":
        findings.problem("Content-Type is not application/json")
    payload = _parse_json(body, findings)
    payload_format = "unknown"
    if isinstance(payload, list):
        payload_format = "legacy"
        _check_legacy(payload, findings)
    elif isinstance(payload, dict):
        payload_format = "v2"
        _check_v2(payload, findings)
    elif payload is not _NOT_JSON:
        findings.problem("body is not a JSON array (nor a v2 object)")
    too_many = findings.item_count > MAX_EVENTS_PER_POST
    if too_many:
        findings.problems.insert(
            0, f"{TOO_MANY_EVENTS}: {findings.item_count} events, at most 1000 per POST"
        )
    return BatchCheck(
        payload if payload is not _NOT_JSON else None,
        payload_format,
        tuple(findings.events),
        findings.capped_problems(),
        too_many,
    )


def _parse_json(body: bytes, findings: _Findings) -> Any:
    try:
        # Decode explicitly: json.loads(bytes) would also take UTF-16 and UTF-32 bodies.
        return json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        findings.problem("body is not valid UTF-8 JSON")
        return _NOT_JSON


def _check_legacy(batch: list[Any], findings: _Findings) -> None:
    if not batch:
        findings.problem("batch is an empty array")
    seen: set[str] = set()
    for index, element in enumerate(batch):
        where = f"element {index}"
        if not isinstance(element, dict):
            findings.problem(f"{where} is not an object")
            continue
        _check_exact_keys(where, element, ("event", "data"), findings)
        event = element.get("event")
        if event not in LEGACY_EVENT_TYPES:
            findings.problem(
                f"{where}: event {_describe(event)} is not one of softbounce, "
                "hardbounce, unsubscribe"
            )
            event = None
        elif event in seen:
            findings.problem(f"{where}: event type {event} appears more than once in the array")
        else:
            seen.add(event)
        _check_legacy_data(where, event, element.get("data"), findings)


def _check_exact_keys(
    where: str, item: Mapping[str, Any], expected: Sequence[str], findings: _Findings
) -> bool:
    if set(item) == set(expected):
        return True
    keys = ", ".join(_describe(key) for key in sorted(item)[:6])
    return findings.problem(f"{where} has keys [{keys}], expected exactly {' and '.join(expected)}")


def _check_legacy_data(where: str, event: str | None, data: Any, findings: _Findings) -> None:
    if not isinstance(data, list) or not data:
        findings.problem(f"{where}: data is not a non-empty array")
        return
    for position, item in enumerate(data):
        findings.item_count += 1
        _check_legacy_item(f"{where} data {position}", event, item, findings)


def _check_legacy_item(where: str, event: str | None, item: Any, findings: _Findings) -> None:
    if not isinstance(item, dict):
        findings.problem(f"{where} is not an object")
        return
    keys_ok = _check_exact_keys(where, item, ("e", "ts"), findings)
    email, ts = item.get("e"), item.get("ts")
    email_ok = _check_email(where, "e", email, findings)
    ts_ok = _check_ts(where, ts, findings)
    if keys_ok and email_ok and ts_ok and event is not None:
        source = {"e": email, "ts": ts, "event": event}
        findings.events.append(ReceivedEvent(event, cast(str, email), ts, source))


def _check_email(where: str, key: str, email: Any, findings: _Findings) -> bool:
    if isinstance(email, str) and email.strip():
        return True
    return findings.problem(f"{where}: {key} is not a non-empty string")


def _check_ts(where: str, ts: Any, findings: _Findings) -> bool:
    if type(ts) is not int:  # bool is an int subclass; floats are not epoch seconds here
        return findings.problem(f"{where}: ts is not an integer (epoch seconds)")
    if ts < 0:
        return findings.problem(f"{where}: ts is negative")
    if ts >= MILLISECONDS_THRESHOLD:
        return findings.problem(f"{where}: ts looks like milliseconds, expected epoch seconds")
    return True


def _check_v2(payload: dict[str, Any], findings: _Findings) -> None:
    if payload.get("version") != "v2":
        findings.problem('object body must carry "version": "v2"')
    events = payload.get("events")
    if not isinstance(events, dict):
        findings.problem('v2 body: "events" is not an object')
        return
    for kind, types in (("success", V2_SUCCESS_TYPES), ("failed", V2_FAILED_TYPES)):
        items = events.get(kind, [])
        if not isinstance(items, list):
            findings.problem(f"v2 body: events.{kind} is not an array")
            continue
        for position, item in enumerate(items):
            findings.item_count += 1
            _check_v2_item(f"events.{kind}[{position}]", item, types, findings)
    if findings.item_count == 0:
        findings.problem("v2 body has no events")


def _check_v2_item(where: str, item: Any, types: Mapping[str, str], findings: _Findings) -> None:
    if not isinstance(item, dict):
        findings.problem(f"{where} is not an object")
        return
    kind = item.get("type")
    type_ok = kind in types or findings.problem(
        f"{where}: type {_describe(kind)} is not one of {', '.join(types)}"
    )
    email_ok = _check_email(where, "email", item.get("email"), findings)
    # bouncewire sends "meta": null for events that carried no X-CleverTap_META header.
    optional_ok = all(
        isinstance(item.get(key, ""), str | None)
        or findings.problem(f"{where}: {key} is not a string or null")
        for key in ("meta", "description")
    )
    if type_ok and email_ok and optional_ok:
        findings.events.append(ReceivedEvent(types[str(kind)], item["email"], None, item))


def partial_success_body(events: Sequence[ReceivedEvent], unprocessed: int) -> dict[str, Any]:
    """CleverTap's partial-success answer, listing the first `unprocessed` events as failed."""
    failed = events[:unprocessed]
    return {
        "error": f"{len(failed)} event(s) failed to process",
        "TOTAL_EVENTS": len(events),
        "PROCESSED_EVENTS": len(events) - len(failed),
        "UNPROCESSED_EVENTS": [{**e.source, "errorDescription": UNMAPPED_EVENT} for e in failed],
    }


def _invalid_batch_body(check: BatchCheck) -> dict[str, Any]:
    error = TOO_MANY_EVENTS if check.too_many_events else "invalid payload"
    return {"status": "fail", "code": 400, "error": error, "problems": list(check.problems)}


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class ReceivedPost:
    """One callback POST as received and answered. Control requests are not recorded."""

    index: int
    path: str  # without the query string
    query: str = field(repr=False)  # may hold the account token: never printed
    headers: Mapping[str, str] = field(repr=False)  # lower-cased names
    body: bytes = field(repr=False)
    payload: Any = field(repr=False)
    payload_format: str
    events: tuple[ReceivedEvent, ...] = field(repr=False)
    unprocessed: tuple[ReceivedEvent, ...] = field(repr=False)
    received_at_monotonic: float
    received_at_wall: float
    status: int  # RESET_STATUS when the connection was dropped
    valid: bool
    problems: list[str]
    fault: str | None

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300

    @property
    def processed_events(self) -> tuple[ReceivedEvent, ...]:
        """Events CleverTap would have taken: all of an accepted batch but the unprocessed."""
        # The partial-success fault always lists the first events of the batch.
        return self.events[len(self.unprocessed) :] if self.accepted else ()

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "path": shown_path(self.path),
            "status": self.status,
            "valid": self.valid,
            "problems": self.problems,
            "fault": self.fault,
            "format": self.payload_format,
            "received_at": self.received_at_wall,
            "events": [{"event": e.event, "e": e.email, "ts": e.ts} for e in self.events],
            "unprocessed": len(self.unprocessed),
        }


class _Tally:
    """Running totals for `stats()`; updated under the receiver's lock."""

    def __init__(self) -> None:
        self.posts = self.accepted = self.invalid = self.faults = self.unprocessed = 0
        self.by_status: Counter[str] = Counter()
        self.events_by_type: Counter[str] = Counter()
        self.emails: set[str] = set()
        self.event_keys: set[tuple[str, str, int | None]] = set()

    def add(self, post: ReceivedPost) -> None:
        self.posts += 1
        self.accepted += post.accepted
        self.invalid += not post.valid
        self.faults += post.fault is not None
        self.unprocessed += len(post.unprocessed) if post.accepted else 0
        self.by_status["reset" if post.status == RESET_STATUS else str(post.status)] += 1
        for event in post.processed_events:
            self.events_by_type[event.event] += 1
            self.emails.add(event.email)
            self.event_keys.add((event.event, event.email, event.ts))

    def as_dict(self) -> dict[str, Any]:
        events = sum(self.events_by_type.values())
        return {
            "posts": self.posts,
            "accepted": self.accepted,
            "invalid_batches": self.invalid,
            "faults_injected": self.faults,
            "by_status": dict(sorted(self.by_status.items())),
            "events": events,
            "events_by_type": dict(sorted(self.events_by_type.items())),
            "unique_events": len(self.event_keys),
            "duplicate_events": events - len(self.event_keys),
            "unique_emails": len(self.emails),
            "unprocessed_events": self.unprocessed,
        }


class _Echo:
    """One readable line per callback on a stream, without tokens or whole emails."""

    def __init__(self, stream: TextIO | None) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def line(self, text: str) -> None:
        if self._stream is None:
            return
        with self._lock:
            self._stream.write(f"{time.strftime('%H:%M:%S')} {text}\n")
            self._stream.flush()

    def post(self, post: ReceivedPost) -> None:
        if self._stream is not None:
            self.line(describe_post(post))


def shown_path(path: str) -> str:
    """Only the last path segment: CleverTap puts the account token in the callback path."""
    head, _, last = path.rstrip("/").rpartition("/")
    return f"/…/{last}" if head else f"/{last}"


def describe_post(post: ReceivedPost) -> str:
    """`POST /bounce -> 200 hardbounce=2 softbounce=1 [j***@example.com, ...]`."""
    status = "reset" if post.status == RESET_STATUS else str(post.status)
    head = f"POST {shown_path(post.path)} -> {status}"
    if post.fault:
        head += f" FAULT injected ({post.fault})"
    if not post.valid:
        return f"{head} INVALID: {'; '.join(post.problems[:3])}"
    if not post.accepted:
        return f"{head}: {len(post.events)} events not accepted"
    counts = Counter(e.event for e in post.events)
    summary = " ".join(f"{name}={n}" for name, n in sorted(counts.items()))
    sample = ", ".join(mask_email(e.email) for e in post.events[:3])
    more = f", +{len(post.events) - 3} more" if len(post.events) > 3 else ""
    return f"{head} {summary} [{sample}{more}]"


# --------------------------------------------------------------------------- server


@dataclass(frozen=True)
class _Response:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    reset: bool = False  # drop the connection instead of answering


def _json_response(status: int, document: Any, *headers: tuple[str, str]) -> _Response:
    return _Response(status, json.dumps(document).encode(), headers)


@dataclass(frozen=True)
class _Request:
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes


class _Load:
    """Callbacks being answered right now (thread-safe): the throttle and its figures."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.active = self.peak = self.throttled = 0
        self._since = time.monotonic()
        self._area = 0.0  # integral of `active` over time, for the mean

    def _advance(self) -> None:
        now = time.monotonic()
        self._area += self.active * (now - self._since)
        self._since = now

    def enter(self, limit: int | None) -> bool:
        """Count one more callback in progress, or False (and count a throttle) at `limit`."""
        with self._lock:
            if limit is not None and self.active >= limit:
                self.throttled += 1
                return False
            self._advance()
            self.active += 1
            self.peak = max(self.peak, self.active)
            return True

    def leave(self) -> None:
        with self._lock:
            self._advance()
            self.active -= 1

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            self._advance()
            return {"in_progress": self.active, "peak_in_progress": self.peak,
                    "throttled": self.throttled, "busy_area": self._area}  # fmt: skip


class CallbackReceiver:
    """The stand-in CleverTap callback endpoint. Any path takes callbacks; see the module doc."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        faults: FaultPlan | None = None,
        record_path: Path | None = None,
        echo: TextIO | None = None,
        strict: bool = True,
        latency_s: float = 0.0,
        max_concurrent: int | None = None,
        throttle_retry_after: str | None = "1",
    ) -> None:
        """`latency_s`: every callback is answered that long after it arrived, concurrently
        (a distant API); `max_concurrent`: callbacks arriving while that many are being
        answered get 429 "Too many concurrent requests" with `throttle_retry_after`."""
        if latency_s < 0 or (max_concurrent is not None and max_concurrent < 1):
            raise ValueError("latency must not be negative and max_concurrent at least 1")
        self.latency_s = latency_s
        self.max_concurrent = max_concurrent
        self.throttle_retry_after = throttle_retry_after
        self._load = _Load()
        self.host = host
        self.port = port
        self.strict = strict
        self._schedule = _FaultSchedule(faults or FaultPlan())
        self._record_path = record_path
        self._record_file: TextIO | None = None
        self._echo = _Echo(echo)
        self._changed = threading.Condition()
        self._posts: list[ReceivedPost] = []
        self._tally = _Tally()
        self._server: _ReceiverServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # -- lifecycle

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base_url}/callback"

    def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("receiver already started")
        server = _ReceiverServer((self.host, self.port), self)
        self.port = int(server.server_address[1])
        if self._record_path is not None:
            self._record_file = self._record_path.open("a", encoding="utf-8")
        self._stopping.clear()
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            # stop() waits up to one poll interval; a short one keeps test teardowns quick,
            # and an idle select() a hundred times a second costs nothing measurable.
            kwargs={"poll_interval": 0.01},
            name="callback-receiver",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._stopping.set()  # wakes handlers sleeping on an injected delay
        server.shutdown()
        server.server_close()
        thread.join()
        self._server = self._thread = None
        with self._changed:
            if self._record_file is not None:
                self._record_file.close()
                self._record_file = None

    def __enter__(self) -> CallbackReceiver:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- faults and observations

    @property
    def faults(self) -> FaultPlan:
        return self._schedule.plan

    def set_faults(self, plan: FaultPlan) -> None:
        self._schedule.replace(plan)
        self._echo.line(f"faults set: {_describe_plan(plan)}")

    @property
    def received(self) -> list[ReceivedPost]:
        with self._changed:
            return list(self._posts)

    def received_since(self, index: int) -> list[ReceivedPost]:
        with self._changed:
            return self._posts[max(index, 0) :]

    def stats(self) -> dict[str, Any]:
        with self._changed:
            return {**self._tally.as_dict(), **self._load.as_dict()}

    def clear(self) -> None:
        """Forget every received post and total (the fault plan stays)."""
        with self._changed:
            self._posts.clear()
            self._tally = _Tally()
            self._load = _Load()

    def wait_for_events(self, n: int, timeout: float, *, unique: bool = False) -> bool:
        """Wait until `n` events were accepted (processed); `unique` ignores re-deliveries."""

        def enough() -> bool:
            count = (
                len(self._tally.event_keys) if unique else sum(self._tally.events_by_type.values())
            )
            return count >= n

        with self._changed:
            return self._changed.wait_for(enough, timeout)

    # -- request handling (called from the server's handler threads)

    def handle_callback(self, request: _Request) -> _Response:
        arrived = (time.monotonic(), time.time())
        check = check_batch(request.body, request.headers.get("content-type"))
        load = self._load
        if not load.enter(self.max_concurrent):
            retry = self.throttle_retry_after
            response = _json_response(
                429,
                {"status": "fail", "code": 429, "error": TOO_MANY_CONCURRENT},
                *((("Retry-After", retry),) if retry else ()),
            )
            return self._record(request, check, response, (), arrived, "throttled (at once)")
        try:
            fault = self._schedule.next_fault()
            delay = self.latency_s + (fault.delay_s if fault is not None else 0.0)
            if delay > 0:
                self._stopping.wait(delay)
            response, unprocessed = self._answer(check, fault)
        finally:
            load.leave()
        note = fault.describe() if fault else None
        return self._record(request, check, response, unprocessed, arrived, note)

    def _record(
        self,
        request: _Request,
        check: BatchCheck,
        response: _Response,
        unprocessed: tuple[ReceivedEvent, ...],
        arrived: tuple[float, float],
        note: str | None,
    ) -> _Response:
        with self._changed:
            post = ReceivedPost(
                len(self._posts),
                request.path,
                request.query,
                request.headers,
                request.body,
                check.payload,
                check.payload_format,
                check.events,
                unprocessed,
                *arrived,
                RESET_STATUS if response.reset else response.status,
                check.valid,
                list(check.problems),
                note,
            )
            self._keep(post)
        self._echo.post(post)
        return response

    def _answer(
        self, check: BatchCheck, fault: _Fault | None
    ) -> tuple[_Response, tuple[ReceivedEvent, ...]]:
        if fault is not None and fault.close_connection:
            return _Response(RESET_STATUS, reset=True), ()
        if fault is not None and fault.status != 200:
            document = {"status": "fail", "code": fault.status, "error": "injected fault"}
            retry = (("Retry-After", fault.retry_after),) if fault.retry_after else ()
            return _json_response(fault.status, document, *retry), ()
        if not check.valid and self.strict:
            return _json_response(400, _invalid_batch_body(check)), ()
        if fault is not None and fault.partial_unprocessed > 0 and check.events:
            body = partial_success_body(check.events, fault.partial_unprocessed)
            return _json_response(200, body), check.events[: fault.partial_unprocessed]
        return _json_response(200, {"status": "success", "processed": len(check.events)}), ()

    def _keep(self, post: ReceivedPost) -> None:
        """Store and record one post; the caller holds `_changed`."""
        self._posts.append(post)
        self._tally.add(post)
        if self._record_file is not None:
            self._record_file.write(json.dumps(post.to_json()) + "\n")
            self._record_file.flush()
        self._changed.notify_all()

    def handle_control(self, body: bytes) -> _Response:
        try:
            document = json.loads(body or b"{}")
            if not isinstance(document, dict):
                raise ValueError("the fault plan must be a JSON object")
            plan = FaultPlan.from_mapping(document)
        except (ValueError, TypeError) as exc:
            return _json_response(400, {"status": "fail", "error": str(exc)})
        self.set_faults(plan)
        return _json_response(200, {"status": "success", "faults": asdict(plan)})

    def handle_query(self, path: str, query: str) -> _Response:
        if path == "/_stats":
            return _json_response(200, self.stats())
        if path == "/_control":
            state = {"faults": asdict(self.faults), "remaining": self._schedule.remaining}
            return _json_response(200, state)
        if path == "/_received":
            try:
                since = int(parse_qs(query).get("since", ["0"])[0])
            except ValueError:
                return _json_response(400, {"status": "fail", "error": "since must be an integer"})
            return _json_response(200, [post.to_json() for post in self.received_since(since)])
        refusal = {"status": "fail", "error": "callbacks are POSTs"}
        return _json_response(405, refusal, ("Allow", "POST"))


def _describe_plan(plan: FaultPlan) -> str:
    defaults = asdict(FaultPlan())
    changed = {k: v for k, v in asdict(plan).items() if v != defaults[k]}
    return " ".join(f"{k}={v}" for k, v in changed.items()) or "none (every callback gets 200)"


class _ReceiverServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog is 5: a consumer opening its 32 connections at once (one
    # per POST in flight) would see SYNs dropped and retried a second later.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: CallbackReceiver) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.app = app
        super().__init__(address, _CallbackHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client killed mid-keep-alive (the fault suite's SIGKILLs, with several
        # connections each) resets its sockets: that is the client's business, not a trace.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _CallbackHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a pooled client expects
    # Headers and body go out in two writes; with Nagle on, a keep-alive client waits for
    # the delayed ACK (~40 ms) on every request.
    disable_nagle_algorithm = True
    server_version = "bouncewire-receiver"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: the default access log prints the query string, which holds the token."""

    @property
    def app(self) -> CallbackReceiver:
        return cast(_ReceiverServer, self.server).app

    def do_POST(self) -> None:
        target = urlsplit(self.path)
        body = self._read_body()
        if body is None:
            return
        if target.path == "/_control":
            self._respond(self.app.handle_control(body))
        elif target.path in CONTROL_PATHS:
            self._respond(_json_response(405, {"status": "fail", "error": "use GET"}))
        else:
            headers = {name.lower(): value for name, value in self.headers.items()}
            request = _Request(target.path, target.query, headers, body)
            self._respond(self.app.handle_callback(request))

    def do_GET(self) -> None:
        target = urlsplit(self.path)
        self._respond(self.app.handle_query(target.path, target.query))

    def _read_body(self) -> bytes | None:
        """The request body, or None after answering 411/413 (then the connection closes)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._respond(_json_response(411, {"status": "fail", "error": "Length Required"}))
            return None
        if not 0 <= length <= MAX_BODY_BYTES:
            self._respond(_json_response(413, {"status": "fail", "error": "body too large"}))
            return None
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes | None:
        chunks: list[bytes] = []
        total = 0
        while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
            total += size
            if total > MAX_BODY_BYTES:
                self._respond(_json_response(413, {"status": "fail", "error": "body too large"}))
                return None
            chunks.append(self.rfile.read(size))
            self.rfile.readline()  # the CRLF after each chunk
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass  # trailers
        return b"".join(chunks)

    def _respond(self, response: _Response) -> None:
        if response.reset:
            self._drop_connection()
            return
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers:
                self.send_header(name, value)
            if response.status in (411, 413):
                self.send_header("Connection", "close")
                self.close_connection = True  # the unread body would desync the stream
            self.end_headers()
            self.wfile.write(response.body)
        except OSError:  # the client gave up (e.g. timed out during an injected delay)
            self.close_connection = True

    def _drop_connection(self) -> None:
        # SO_LINGER 0 turns the close into a TCP reset, like a crashed or overloaded peer.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True


# --------------------------------------------------------------------------- command line


def add_receiver_arguments(parser: argparse.ArgumentParser) -> None:
    """The `bouncewire receiver` flags (shared with `python -m bouncewire.receiver`)."""
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    add("--port", type=int, default=8080, metavar="PORT", help="port; 0 picks a free one")
    add("--fail-status", type=int, metavar="STATUS", help="status answered to faulted requests")
    add(
        "--fail-count",
        type=int,
        metavar="N",
        help="how many requests get the fault (-1: all; default: all if a fault is set)",
    )
    add("--retry-after", metavar="VALUE", help="Retry-After sent with --fail-status (s or date)")
    add("--delay", type=float, default=0.0, metavar="SECONDS", help="hang before answering")
    add(
        "--delay-ms",
        type=int,
        default=0,
        metavar="N",
        help="answer every callback N ms after it arrived, concurrently (a distant API)",
    )
    add(
        "--max-concurrent",
        type=int,
        metavar="K",
        help="answer 429 Too many concurrent requests (with --throttle-retry-after) to "
        "callbacks arriving while K are being answered",
    )
    add("--throttle-retry-after", default="1", metavar="VALUE", help="Retry-After with 429")
    add(
        "--partial-unprocessed",
        type=int,
        default=0,
        metavar="N",
        help="answer 200 listing the first N events as UNPROCESSED_EVENTS",
    )
    add("--close-connection", action="store_true", help="drop connections without answering")
    add("--fail-rate", type=float, default=0.0, metavar="RATE", help="random failure fraction")
    add("--seed", type=int, default=0, help="seed of the random failures")
    add("--record", type=Path, metavar="FILE", help="append one JSON line per POST to FILE")
    add("--lenient", action="store_true", help="accept invalid batches instead of answering 400")
    add("--quiet", action="store_true", help="do not print each batch")


def plan_from_args(args: argparse.Namespace) -> FaultPlan:
    faulted = (
        args.fail_status is not None
        or args.delay > 0
        or args.partial_unprocessed > 0
        or args.close_connection
    )
    count = args.fail_count if args.fail_count is not None else (-1 if faulted else 0)
    return FaultPlan(
        status=args.fail_status if args.fail_status is not None else 200,
        count=count,
        retry_after=args.retry_after,
        delay_s=args.delay,
        partial_unprocessed=args.partial_unprocessed,
        fail_rate=args.fail_rate,
        close_connection=args.close_connection,
        seed=args.seed,
    )


_CONTROL_HINT = "any path takes callbacks; control: /_control /_stats /_received"


def cmd_receiver(args: argparse.Namespace) -> int:
    """Serve until SIGTERM/SIGINT, then print a summary and return 0 (2 on a bad setup)."""
    try:
        plan = plan_from_args(args)
    except ValueError as exc:
        print(f"receiver: {exc}", file=sys.stderr)
        return 2
    try:
        receiver = CallbackReceiver(
            args.host,
            args.port,
            faults=plan,
            record_path=args.record,
            echo=None if args.quiet else sys.stdout,
            strict=not args.lenient,
            latency_s=args.delay_ms / 1000,
            max_concurrent=args.max_concurrent,
            throttle_retry_after=args.throttle_retry_after or None,
        )
    except ValueError as exc:
        print(f"receiver: {exc}", file=sys.stderr)
        return 2
    # Handlers go in before the readiness line: a supervisor may signal as soon as it reads it.
    with _stop_signals() as stop:
        try:
            receiver.start()
        except OSError as exc:
            where = f"{args.host}:{args.port}"
            print(f"receiver: cannot listen on {where}: {exc.strerror}", file=sys.stderr)
            return 2
        print(
            f"receiver listening on {receiver.base_url} ({_CONTROL_HINT}); "
            f"faults: {_describe_plan(plan)}{_describe_load(args)}",
            flush=True,
        )
        while not stop.wait(0.2):  # a timed wait lets the signal handler run promptly
            pass
    receiver.stop()
    print(format_summary(receiver.stats()), flush=True)
    return 0


@contextlib.contextmanager
def _stop_signals() -> Iterator[threading.Event]:
    """Route SIGTERM and SIGINT to an Event while active; restore the old handlers after."""
    stop = threading.Event()

    def request_stop(_signum: int, _frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _describe_load(args: argparse.Namespace) -> str:
    parts = [f"answers after {args.delay_ms} ms"] if args.delay_ms else []
    if args.max_concurrent is not None:
        parts.append(f"429 above {args.max_concurrent} at once")
    return f"; {', '.join(parts)}" if parts else ""


def format_summary(stats: Mapping[str, Any]) -> str:
    by_type = " ".join(f"{k}={v}" for k, v in stats["events_by_type"].items()) or "none"
    by_status = " ".join(f"{k}={v}" for k, v in stats["by_status"].items()) or "none"
    return "\n".join(_summary_lines(stats, by_type, by_status))


def _summary_lines(stats: Mapping[str, Any], by_type: str, by_status: str) -> Iterator[str]:
    yield (
        f"receiver summary: {stats['posts']} callback POSTs, {stats['accepted']} accepted, "
        f"{stats['invalid_batches']} invalid, {stats['faults_injected']} faults injected"
    )
    yield (
        f"  events accepted: {by_type} ({stats['events']} total, {stats['unique_events']} "
        f"unique, {stats['unique_emails']} unique emails, "
        f"{stats['unprocessed_events']} returned unprocessed)"
    )
    yield f"  answers by status: {by_status}"
    yield (f"  at once: peak {stats['peak_in_progress']}, {stats['throttled']} throttled (429)")


def run_receiver(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bouncewire receiver",
        description="Stand-in CleverTap Generic SMTP callback endpoint with fault injection.",
    )
    add_receiver_arguments(parser)
    return cmd_receiver(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(run_receiver())
