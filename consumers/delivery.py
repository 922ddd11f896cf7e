"""Callback delivery: one pooled httpx client, tenacity for retries, one thread per destination.

A destination's thread owns its POSTs so that backoff sleeps never block the consumer's poll
loop (which must keep polling, paused, to stay in the group). Outcomes go back to the loop
through a queue; the loop alone touches offsets and the dead-letter producer.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from urllib.parse import urlsplit

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_random_exponential,
)
from tenacity.stop import stop_base

from bouncewire.consumers.batching import Batch
from bouncewire.consumers.metrics import ConsumerMetrics
from bouncewire.consumers.payloads import CallbackEvent, Destination, PayloadFormat, build_payload
from bouncewire.consumers.responses import ResponseDecision, Verdict, decide, redact
from bouncewire.kafka_client import Secret

log = logging.getLogger(__name__)

MAX_BODY_KEPT = 1024


def url_for_logs(url: Secret) -> str:
    """Scheme and host only: CleverTap's callback path and query carry the account token."""
    parts = urlsplit(url.reveal())
    return f"{parts.scheme}://{parts.hostname or '?'}/…"


def callback_url_problem(url: str) -> str | None:
    """What is wrong with a callback URL, without repeating it (it holds a token)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "is not a URL"
    if parts.scheme not in ("http", "https"):
        return "must start with https:// (or http://)"
    if not parts.hostname:
        return "has no host"
    return None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    request_timeout_s: float = 10.0
    connect_timeout_s: float = 5.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    max_retry_after_s: float = 300.0
    max_retry_time_s: float = 900.0


def build_http_client(policy: RetryPolicy, max_connections: int = 4) -> httpx.Client:
    return httpx.Client(
        timeout=httpx.Timeout(policy.request_timeout_s, connect=policy.connect_timeout_s),
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
        # A redirect is not a delivery; CleverTap's callback URLs do not redirect.
        follow_redirects=False,
        headers={"User-Agent": "bouncewire/0.1"},
    )


class DeliveryError(RuntimeError):
    """A sender can no longer deliver (its process is gone): the consumer must stop. What was
    in flight is not committed, so it is read again on restart."""


class OutcomeKind(Enum):
    DELIVERED = "delivered"  # every event accepted
    PARTIAL = "partial"  # accepted except `failed` indexes
    REJECTED = "rejected"  # non-retryable answer: every event dead-lettered
    EXHAUSTED = "retries_exhausted"  # retry time used up: every event dead-lettered
    ABANDONED = "abandoned"  # shutdown or revoke cut it short: nothing done, offsets stay
    # A final answer not yet judged against the events (the delivery child has only the
    # payload): judge_answer() turns it into one of the kinds above.
    ANSWERED = "answered"


@dataclass(slots=True)
class Outcome:
    kind: OutcomeKind
    status: int | None = None
    body: str = ""
    attempts: int = 0
    failed: tuple[int, ...] = ()  # indexes into batch.events (PARTIAL)
    first_failure_ms: int | None = None
    last_failure_ms: int | None = None
    reason: str = ""
    content: bytes = b""  # ANSWERED: the response body, for judge_answer


def kept_body(content: bytes) -> str:
    """What of a response body goes into logs and dead-letter headers."""
    # Redact before cutting (a cut address would escape the pattern); bound the work.
    text = content[: 64 * MAX_BODY_KEPT].decode("utf-8", "replace")
    return redact(text)[:MAX_BODY_KEPT]


def final_outcome(decision: ResponseDecision, status: int, content: bytes) -> Outcome:
    """The outcome of a final (not RETRY) answer."""
    if decision.verdict is Verdict.DELIVERED:
        return Outcome(OutcomeKind.DELIVERED, status=status)
    if decision.verdict is Verdict.PARTIAL:
        return Outcome(
            OutcomeKind.PARTIAL,
            status=status,
            body=kept_body(content),
            failed=decision.unprocessed,
            reason="partial_unprocessed",
        )
    return Outcome(
        OutcomeKind.REJECTED, status=status, body=kept_body(content), reason=f"http_{status}"
    )


def judge_answer(answer: Outcome, events: Sequence[CallbackEvent]) -> Outcome:
    """An ANSWERED outcome judged against the events that were POSTed, attempts kept."""
    assert answer.status is not None
    # Only a final answer is ANSWERED, and a final answer's meaning depends on neither the
    # headers nor the clock (those only time a retry).
    decision = decide(answer.status, {}, answer.content, events, now=0.0, max_retry_after_s=0.0)
    outcome = final_outcome(decision, answer.status, answer.content)
    outcome.attempts = answer.attempts
    outcome.first_failure_ms = answer.first_failure_ms
    outcome.last_failure_ms = answer.last_failure_ms
    return outcome


class RetryableFailure(Exception):
    """An attempt that may succeed later. Carries no URL and no payload."""

    def __init__(
        self,
        reason: str,
        status: int | None = None,
        body: str = "",
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.body = body
        self.retry_after_s = retry_after_s


@dataclass(slots=True)
class _Attempts:
    count: int = 0
    first_failure_ms: int | None = None
    last_failure_ms: int | None = None
    last: RetryableFailure | None = None

    def failed(self, exc: RetryableFailure) -> None:
        now = time.time_ns() // 1_000_000
        self.first_failure_ms = self.first_failure_ms or now
        self.last_failure_ms = now
        self.last = exc


class _StopWhenSet(stop_base):
    """Stop retrying once shutdown or revoke asks for it."""

    def __init__(self, event: threading.Event) -> None:
        self._event = event

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self._event.is_set()


def status_class(status: int) -> str:
    return f"{status // 100}xx"


@dataclass
class DestinationSender:
    """Sends one destination's batches in order, one at a time, retrying each until done."""

    destination: Destination
    url: Secret
    client: httpx.Client
    policy: RetryPolicy
    fmt: PayloadFormat
    metrics: ConsumerMetrics
    completions: queue.SimpleQueue[tuple[Batch, Outcome]]
    clock: Callable[[], float] = time.monotonic
    _queue: deque[Batch] = field(default_factory=deque)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _abort: threading.Event = field(default_factory=threading.Event)
    _closing: bool = False
    active: Batch | None = None
    retrying: bool = False
    failure: str | None = None  # a thread in this process: it never goes away on its own
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"sender-{self.destination}", daemon=True
        )
        self._thread.start()

    def submit(self, batch: Batch) -> None:
        with self._cond:
            self._queue.append(batch)
            self._cond.notify()

    @property
    def backlog(self) -> int:
        """Batches queued or in flight."""
        return len(self._queue) + (1 if self.active is not None else 0)

    def in_flight(self) -> list[Batch]:
        with self._cond:
            return [*self._queue, *([self.active] if self.active else [])]

    def close(self, abort: bool) -> None:
        """Stop after the queue drains; with `abort`, cut retries short (outcome ABANDONED)."""
        with self._cond:
            self._closing = True
            if abort:
                self._abort.set()
            self._cond.notify()

    def join(self, timeout: float) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def _next(self) -> Batch | None:
        with self._cond:
            while not self._queue and not self._closing:
                self._cond.wait()
            if self._abort.is_set() or not self._queue:
                return None
            self.active = self._queue.popleft()
            return self.active

    def _run(self) -> None:
        while (batch := self._next()) is not None:
            try:
                outcome = self.deliver(batch)
            except Exception:  # a bug must not silently lose the batch: keep offsets back
                log.exception("delivery crashed", extra={"destination": self.destination})
                outcome = Outcome(OutcomeKind.ABANDONED, reason="internal_error")
            # Outcome first: whoever sees the sender idle must find the outcome queued.
            self.completions.put((batch, outcome))
            self.active = None
        with self._cond:  # whatever is still queued after an abort is abandoned
            while self._queue:
                self.completions.put((self._queue.popleft(), Outcome(OutcomeKind.ABANDONED)))

    def deliver(self, batch: Batch) -> Outcome:
        payload = self._payload(batch)
        attempts = _Attempts()
        retrying = Retrying(
            retry=retry_if_exception_type(RetryableFailure),
            wait=self._wait,
            stop=stop_after_delay(self.policy.max_retry_time_s) | _StopWhenSet(self._abort),
            sleep=self._sleep,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        try:
            outcome = retrying(self._attempt, batch, payload, attempts)
        except RetryableFailure as exc:
            kind = OutcomeKind.ABANDONED if self._abort.is_set() else OutcomeKind.EXHAUSTED
            outcome = Outcome(kind, status=exc.status, body=exc.body, reason=exc.reason)
        finally:
            self.retrying = False
        outcome.attempts = attempts.count
        outcome.first_failure_ms = attempts.first_failure_ms
        outcome.last_failure_ms = attempts.last_failure_ms
        return outcome

    # The two hooks the delivery child overrides: its batches arrive as payloads, and the
    # parent, which has the events, judges the final answer (judge_answer).
    def _payload(self, batch: Batch) -> bytes:
        return build_payload(batch.events, self.fmt)

    def _final(
        self, batch: Batch, decision: ResponseDecision, status: int, content: bytes
    ) -> Outcome:
        return final_outcome(decision, status, content)

    def _sleep(self, seconds: float) -> None:
        self._abort.wait(seconds)  # wakes at once on abort

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RetryableFailure) and exc.retry_after_s is not None:
            return min(exc.retry_after_s, self.policy.max_retry_after_s)
        # Full jitter (AWS architecture blog): uniform in [0, min(cap, initial * 2^n)].
        full_jitter = wait_random_exponential(
            multiplier=self.policy.backoff_initial_s, max=self.policy.backoff_max_s
        )
        return float(full_jitter(state))

    def _before_sleep(self, state: RetryCallState) -> None:
        self.retrying = True
        self.metrics.retries.labels(self.destination).inc()
        exc = state.outcome.exception() if state.outcome else None
        log.info(
            "callback retry",
            extra={
                "destination": self.destination,
                "attempt": state.attempt_number,
                "reason": getattr(exc, "reason", "unknown"),
                "http_status": getattr(exc, "status", None),
                "wait_s": round(state.upcoming_sleep, 2),
            },
        )

    def _attempt(self, batch: Batch, payload: bytes, attempts: _Attempts) -> Outcome:
        attempts.count += 1
        started = self.clock()
        try:
            response = self.client.post(
                self.url.reveal(), content=payload, headers={"Content-Type": "application/json"}
            )
        except httpx.TimeoutException as exc:
            self._count("timeout", started)
            failure = RetryableFailure("timeout")
            attempts.failed(failure)
            raise failure from exc
        except httpx.TransportError as exc:
            self._count("network", started)
            failure = RetryableFailure("connection_error")
            attempts.failed(failure)
            raise failure from exc
        self._count(status_class(response.status_code), started)
        return self._judge(batch, response, attempts)

    def _judge(self, batch: Batch, response: httpx.Response, attempts: _Attempts) -> Outcome:
        status, content = response.status_code, response.content
        decision = decide(
            status,
            response.headers,
            content,
            batch.events,
            now=time.time(),
            max_retry_after_s=self.policy.max_retry_after_s,
        )
        if decision.verdict is Verdict.RETRY:
            body = kept_body(content)
            failure = RetryableFailure(f"http_{status}", status, body, decision.retry_after_s)
            attempts.failed(failure)
            raise failure
        return self._final(batch, decision, status, content)

    def _count(self, status_class_label: str, started: float) -> None:
        self.metrics.callbacks.labels(self.destination, status_class_label).inc()
        self.metrics.post_latency.labels(self.destination).observe(self.clock() - started)
