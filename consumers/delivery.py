"""Callback delivery: one pooled httpx client, tenacity for retries, worker threads per destination.

A destination's threads own its POSTs so that backoff sleeps never block the consumer's poll
loop (which must keep polling, paused, to stay in the group). Several POSTs are in flight per
destination, held to an adaptive limit (``concurrency.AdaptiveConcurrency``); batches may
complete out of order. Outcomes go back to the loop through a queue; the loop alone touches
offsets and the dead-letter producer.
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
from bouncewire.consumers.concurrency import (
    DEFAULT_MAX_IN_FLIGHT,
    AdaptiveConcurrency,
    Answer,
    Ticket,
    answer_for,
)
from bouncewire.consumers.metrics import ConsumerMetrics
from bouncewire.consumers.payloads import CallbackEvent, Destination, PayloadFormat, build_payload
from bouncewire.consumers.responses import ResponseDecision, Verdict, decide, redact
from bouncewire.kafka_client import Secret

log = logging.getLogger(__name__)

MAX_BODY_KEPT = 1024
SLOT_WAIT_S = 0.5  # a worker waiting for a slot rechecks abort this often


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


def build_http_client(
    policy: RetryPolicy, max_connections: int = 2 * DEFAULT_MAX_IN_FLIGHT
) -> httpx.Client:
    """One pooled client for every destination: a connection per POST in flight (two
    destinations of ``max_in_flight`` each by default), kept alive between batches."""
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
    """Sends one destination's batches, several at a time, retrying each until done.

    ``max_in_flight`` worker threads take batches in submission order; each POST (first
    attempt or retry) first takes a slot from the destination's ``AdaptiveConcurrency``, which
    holds the POSTs in flight to its adaptive limit and pauses them all after a Retry-After.
    A window keeps duplicates bounded: a batch leaves only while every batch submitted
    ``max_in_flight`` or more before it is finished, so the records delivered but not yet
    committable (behind an unfinished one) are never more than ``max_in_flight`` batches.
    """

    destination: Destination
    url: Secret
    client: httpx.Client
    policy: RetryPolicy
    fmt: PayloadFormat
    metrics: ConsumerMetrics
    completions: queue.SimpleQueue[tuple[Batch, Outcome]]
    clock: Callable[[], float] = time.monotonic
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    limiter: AdaptiveConcurrency | None = None
    _queue: deque[tuple[int, Batch]] = field(default_factory=deque)
    _active: dict[int, Batch] = field(default_factory=dict)  # sequence number -> batch
    _submitted: int = 0
    # One lock, two conditions: idle workers wait for a batch they may take (_cond), busy ones
    # for a slot (_slot). Waking only whom an event concerns matters: with notify_all on one
    # condition every answer woke all idle workers (GIL churn the loop thread paid for).
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _cond: threading.Condition = field(init=False)
    _slot: threading.Condition = field(init=False)
    _abort: threading.Event = field(default_factory=threading.Event)
    _closing: bool = False
    _retrying: int = 0  # workers waiting out a backoff
    failure: str | None = None  # a thread in this process: it never goes away on its own
    _threads: list[threading.Thread] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._cond = threading.Condition(self._lock)
        self._slot = threading.Condition(self._lock)
        if self.limiter is None:
            self.limiter = AdaptiveConcurrency(self.max_in_flight)
        self.max_in_flight = self.limiter.cap

    @property
    def _limit(self) -> AdaptiveConcurrency:
        assert self.limiter is not None
        return self.limiter

    def start(self) -> None:
        for worker in range(self.max_in_flight):
            thread = threading.Thread(
                target=self._run, name=f"sender-{self.destination}-{worker}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        self._show()

    def submit(self, batch: Batch) -> None:
        with self._cond:
            self._queue.append((self._submitted, batch))
            self._submitted += 1
            self._cond.notify()

    @property
    def retrying(self) -> bool:
        """A batch waits out a backoff, or a Retry-After pauses the destination."""
        return self._retrying > 0 or self._limit.paused_for(self.clock()) > 0

    @property
    def backlog(self) -> int:
        """Batches queued or in flight."""
        return len(self._queue) + len(self._active)

    @property
    def posts_in_flight(self) -> int:
        return self._limit.in_flight

    @property
    def concurrency_limit(self) -> int:
        return self._limit.limit

    def in_flight(self) -> list[Batch]:
        with self._cond:
            return [*(b for _, b in self._queue), *self._active.values()]

    def close(self, abort: bool) -> None:
        """Stop after the queue drains; with `abort`, cut retries short (outcome ABANDONED)."""
        with self._cond:
            self._closing = True
            if abort:
                self._abort.set()
            self._cond.notify_all()
            self._slot.notify_all()

    def join(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0.0))
        return not any(thread.is_alive() for thread in self._threads)

    def _may_take(self) -> bool:
        if not self._queue:
            return False
        oldest = min(self._active, default=self._queue[0][0])
        return self._queue[0][0] < oldest + self.max_in_flight

    def _next(self) -> tuple[int, Batch] | None:
        with self._cond:
            while not self._may_take() and not (self._closing and not self._queue):
                if self._abort.is_set():
                    return None
                self._cond.wait()
            if self._abort.is_set() or not self._queue:
                return None
            seq, batch = self._queue.popleft()
            self._active[seq] = batch
            return seq, batch

    def _run(self) -> None:
        while (taken := self._next()) is not None:
            seq, batch = taken
            try:
                outcome = self.deliver(batch)
            except Exception:  # a bug must not silently lose the batch: keep offsets back
                log.exception("delivery crashed", extra={"destination": self.destination})
                outcome = Outcome(OutcomeKind.ABANDONED, reason="internal_error")
            # Outcome first: whoever sees the sender idle must find the outcome queued.
            self.completions.put((batch, outcome))
            with self._cond:
                del self._active[seq]
                self._cond.notify()  # the window moved by one batch
        with self._cond:  # whatever is still queued after an abort is abandoned
            while self._queue:
                _, batch = self._queue.popleft()
                self.completions.put((batch, Outcome(OutcomeKind.ABANDONED)))

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
        with self._cond:
            self._retrying += 1
        try:
            self._abort.wait(seconds)  # wakes at once on abort
        finally:
            with self._cond:
                self._retrying -= 1

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
                "concurrency_limit": self._limit.limit,
            },
        )

    # --- one POST, within the destination's concurrency ------------------------------------

    def _acquire(self) -> Ticket:
        """A slot under the adaptive limit, once any Retry-After pause has passed."""
        with self._cond:
            while True:
                if self._abort.is_set():
                    raise RetryableFailure("shutdown")
                now = self.clock()
                if self._limit.may_send(now):
                    ticket = self._limit.sent(now)
                    break
                paused = self._limit.paused_for(now)
                self._slot.wait(min(paused, SLOT_WAIT_S) if paused > 0 else SLOT_WAIT_S)
        self._show()
        return ticket

    def _release(self, ticket: Ticket, answer: Answer, retry_after_s: float | None = None) -> None:
        with self._cond:
            before = self._limit.limit
            self._limit.answered(ticket, self.clock(), answer, retry_after_s)
            after = self._limit.limit
            self._slot.notify(max(after - self._limit.in_flight, 0))
        self._show()
        if after < before:  # rare (a congestion event): worth a line
            log.info(
                "callback concurrency cut",
                extra={
                    "destination": self.destination,
                    "answer": answer.value,
                    "limit_before": before,
                    "limit": after,
                    "rtt_s": round(self.clock() - ticket.sent_at, 3),
                    "retry_after_s": retry_after_s,
                },
            )

    def _show(self) -> None:
        self.metrics.concurrency.show(self.destination, self._limit.in_flight, self._limit.limit)

    def _attempt(self, batch: Batch, payload: bytes, attempts: _Attempts) -> Outcome:
        ticket = self._acquire()
        attempts.count += 1
        try:
            response = self.client.post(
                self.url.reveal(), content=payload, headers={"Content-Type": "application/json"}
            )
        except httpx.TimeoutException as exc:
            self._release(ticket, Answer.OVERLOADED)
            self._count("timeout", ticket.sent_at)
            failure = RetryableFailure("timeout")
            attempts.failed(failure)
            raise failure from exc
        except httpx.TransportError as exc:
            self._release(ticket, Answer.NEUTRAL)
            self._count("network", ticket.sent_at)
            failure = RetryableFailure("connection_error")
            attempts.failed(failure)
            raise failure from exc
        except BaseException:
            self._release(ticket, Answer.NEUTRAL)
            raise
        self._count(status_class(response.status_code), ticket.sent_at)
        return self._judge(batch, response, attempts, ticket)

    def _judge(
        self, batch: Batch, response: httpx.Response, attempts: _Attempts, ticket: Ticket
    ) -> Outcome:
        status, content = response.status_code, response.content
        decision = decide(
            status,
            response.headers,
            content,
            batch.events,
            now=time.time(),
            max_retry_after_s=self.policy.max_retry_after_s,
        )
        self._release(ticket, answer_for(status), decision.retry_after_s)
        if decision.verdict is Verdict.RETRY:
            body = kept_body(content)
            failure = RetryableFailure(f"http_{status}", status, body, decision.retry_after_s)
            attempts.failed(failure)
            raise failure
        return self._final(batch, decision, status, content)

    def _count(self, status_class_label: str, started: float) -> None:
        self.metrics.callbacks.labels(self.destination, status_class_label).inc()
        self.metrics.post_latency.labels(self.destination).observe(self.clock() - started)
