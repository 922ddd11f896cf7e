"""Dead letters: the original record bytes plus headers saying where they came from and why.

One dead-letter record per failed source record. The source offset completes only when the
cluster acknowledged its dead letter; a refused dead letter is retried later and keeps the
source offset where it is.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bouncewire.consumers.payloads import EventRef
from bouncewire.kafka_client import KafkaProducer

log = logging.getLogger(__name__)

HEADER_PREFIX = "bouncewire."
MAX_HEADER_BODY = 1024


@dataclass(frozen=True, slots=True)
class Failure:
    """Why records are dead-lettered; shared by every record of one failed batch."""

    reason: str
    status: int | None = None
    body: str = ""  # already redacted and truncated
    attempts: int = 0
    first_failure_ms: int | None = None
    last_failure_ms: int | None = None
    destination: str = ""


@dataclass(slots=True)
class DeadLetter:
    ref: EventRef
    key: bytes | None
    value: bytes | None
    failure: Failure
    event_id: str | None = None
    tries: int = 0
    # Headers of an earlier dead letter of the same record (redrive): its history carries on.
    prior: dict[str, str] | None = None


def dead_letter_headers(letter: DeadLetter) -> list[tuple[str, bytes]]:
    """Headers of a dead-letter record; absent facts are left out rather than faked."""
    f, ref = letter.failure, letter.ref
    fields: dict[str, object | None] = {
        "source.topic": ref.topic,
        "source.partition": ref.partition,
        "source.offset": ref.offset,
        "reason": f.reason,
        "http.status": f.status,
        "response.body": f.body[:MAX_HEADER_BODY] if f.body else None,
        "attempts": f.attempts,
        "first.failure.ms": f.first_failure_ms,
        "last.failure.ms": f.last_failure_ms,
        "destination": f.destination or None,
        "event.id": letter.event_id,
    }
    if letter.prior:
        fields.update(_history(letter.prior, f))
    return [(HEADER_PREFIX + k, str(v).encode()) for k, v in fields.items() if v is not None]


def _history(prior: dict[str, str], failure: Failure) -> dict[str, object | None]:
    """A redriven record keeps its original source, first failure and attempt count."""
    kept = {k: prior.get(k) for k in ("source.topic", "source.partition", "source.offset")}
    try:
        attempts = int(prior.get("attempts", "0")) + max(failure.attempts, 1)
    except ValueError:
        attempts = max(failure.attempts, 1)
    first = prior.get("first.failure.ms") or failure.first_failure_ms
    return {
        **{k: v for k, v in kept.items() if v is not None},
        "attempts": attempts,
        "first.failure.ms": first,
    }


def parse_dead_letter_headers(headers: list[tuple[str, bytes]] | None) -> dict[str, str]:
    """The inverse, for inspect and redrive: header name (without prefix) → text."""
    return {
        k[len(HEADER_PREFIX) :]: v.decode("utf-8", "replace")
        for k, v in headers or []
        if k.startswith(HEADER_PREFIX) and v is not None
    }


class DeadLetterWriter:
    """Produces dead letters; reports each acknowledged one through `on_done(ref)`."""

    def __init__(
        self,
        producer: KafkaProducer,
        topic: str,
        on_done: Callable[[EventRef, str], None],
        on_error: Callable[[], None],
        *,
        retry_after_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._producer = producer
        self._topic = topic
        self._on_done = on_done
        self._on_error = on_error
        self._retry_after_s = retry_after_s
        self._clock = clock
        self._retry: deque[tuple[float, DeadLetter]] = deque()
        self.outstanding = 0

    def write(self, letter: DeadLetter) -> None:
        letter.tries += 1
        self.outstanding += 1
        self._producer.produce(
            self._topic,
            letter.value or b"",
            key=letter.key,
            headers=dead_letter_headers(letter),
            on_delivery=lambda err, _msg: self._delivered(letter, err),
        )

    def _delivered(self, letter: DeadLetter, err: Any) -> None:
        self.outstanding -= 1
        if err is None:
            self._on_done(letter.ref, letter.failure.reason)
            return
        self._on_error()
        log.warning(
            "dead letter not acknowledged; source offset held",
            extra={
                "code": err.name(),
                "tries": letter.tries,
                "source_topic": letter.ref.topic,
                "source_partition": letter.ref.partition,
            },
        )
        self._retry.append((self._clock() + self._retry_after_s, letter))

    def service(self) -> None:
        """Serve delivery reports and re-send dead letters whose retry time came."""
        self._producer.poll(0)
        now = self._clock()
        while self._retry and self._retry[0][0] <= now:
            self.write(self._retry.popleft()[1])

    @property
    def waiting(self) -> int:
        return self.outstanding + len(self._retry)

    def flush(self, timeout: float) -> int:
        return self._producer.flush(timeout)
