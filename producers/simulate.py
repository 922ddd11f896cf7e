"""Realistic synthetic traffic for demos and benchmarks: delivered mail, soft and hard bounces,
connection-level errors, invalid addresses and unsubscribes, at a steady rate."""

from __future__ import annotations

import hashlib
import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

# (weight, input fields) — replies as Gmail, Microsoft 365, Yahoo and Postfix send them.
_SEND_RESULTS: tuple[tuple[int, dict[str, Any]], ...] = (
    (820, {"smtp_code": 250, "enhanced_code": "2.0.0", "smtp_message": "OK queued"}),
    (
        30,
        {
            "smtp_code": 452,
            "enhanced_code": "4.2.2",
            "smtp_message": "The email account that you tried to reach is over quota.",
        },
    ),
    (
        20,
        {
            "smtp_code": 421,
            "enhanced_code": "4.7.0",
            "smtp_message": "Try again later, closing connection. (greylisted)",
        },
    ),
    (
        15,
        {
            "smtp_code": 550,
            "enhanced_code": "5.7.26",
            "smtp_message": "This mail has been blocked because the sender is unauthenticated.",
        },
    ),
    (
        40,
        {
            "smtp_code": 550,
            "enhanced_code": "5.1.1",
            "smtp_message": "The email account that you tried to reach does not exist.",
        },
    ),
    (
        10,
        {
            "smtp_code": 550,
            "smtp_message": "5.1.10 RESOLVER.ADR.RecipientNotFound; "
            "Recipient not found by SMTP address lookup",
        },
    ),
    (
        5,
        {
            "smtp_code": 556,
            "enhanced_code": "5.1.10",
            "smtp_message": "Recipient address has null MX",
        },
    ),
    (15, {"error": "timeout"}),
    (10, {"error": "connection_refused"}),
    (5, {"error": "dns_failure"}),
)
_DOMAINS = ("gmail.com", "outlook.com", "yahoo.com", "icloud.com", "example.org", "corp.test")
_UNSUBSCRIBE_SHARE = 0.04
_INVALID_ADDRESS_SHARE = 0.01


@dataclass(frozen=True, slots=True)
class SimulatedEvent:
    kind: str  # "send_result" | "unsubscribe"
    fields: dict[str, Any]  # an input object, as a JSON line would carry it


class TrafficGenerator:
    """Deterministic for a given seed; addresses are drawn from a fixed population."""

    def __init__(self, seed: int = 1, population: int = 50_000) -> None:
        self._rng = random.Random(seed)  # noqa: S311 -- synthetic data, not security
        self._population = population
        weights = [w for w, _ in _SEND_RESULTS]
        self._results = [r for _, r in _SEND_RESULTS]
        self._cum = [sum(weights[: i + 1]) for i in range(len(weights))]

    def _address(self) -> str:
        n = self._rng.randrange(self._population)
        if self._rng.random() < _INVALID_ADDRESS_SHARE:
            return f"user{n}@@{_DOMAINS[n % len(_DOMAINS)]}"
        return f"user{n}@{_DOMAINS[n % len(_DOMAINS)]}"

    def next_event(self, now_s: float) -> SimulatedEvent:
        event_id = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        common = {
            "event_id": event_id,
            "ts": now_s,
            "campaign_id": "demo-campaign",
            "meta": f"demo-meta-{self._rng.randrange(100)}",
        }
        if self._rng.random() < _UNSUBSCRIBE_SHARE:
            email = self._address().replace("@@", "@")
            return SimulatedEvent("unsubscribe", {**common, "email": email, "source": "link"})
        pick = self._rng.choices(self._results, cum_weights=self._cum)[0]
        return SimulatedEvent("send_result", {**common, "email": self._address(), **pick})

    def events(self, now_s: Callable[[], float] = time.time) -> Iterator[SimulatedEvent]:
        while True:
            yield self.next_event(now_s())


def paced(
    events: Iterator[SimulatedEvent],
    rate: float,
    duration_s: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    tick_s: float = 0.05,
) -> Iterator[list[SimulatedEvent]]:
    """Chunks of events released every tick so that `rate` events/s are offered on average."""
    start = clock()
    sent = 0
    while (elapsed := clock() - start) < duration_s:
        due = int(rate * elapsed) - sent
        if due > 0:
            chunk = [next(events) for _ in range(due)]
            sent += due
            yield chunk
        sleep(tick_s)


def simulated_reply(address: str) -> str:
    """The RCPT reply a receiving server would give `address`: one of the weighted replies
    above (transport failures left out), the same one every time for the same address."""
    replies = [(weight, fields) for weight, fields in _SEND_RESULTS if "smtp_code" in fields]
    total = sum(weight for weight, _ in replies)
    point = int.from_bytes(hashlib.sha256(address.lower().encode()).digest()[:8], "big") % total
    for weight, fields in replies:
        if point < weight:
            return _reply_line(fields)
        point -= weight
    raise AssertionError("unreachable: point < total")


def _reply_line(fields: dict[str, Any]) -> str:
    enhanced = fields.get("enhanced_code")
    text = f"{enhanced} {fields['smtp_message']}" if enhanced else fields["smtp_message"]
    return f"{fields['smtp_code']} {text}"
