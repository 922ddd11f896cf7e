"""The bench's input: send-result JSON lines with a bounce-heavy, realistic reply mix.

Most events are bounces so that most of them take the whole path (classify, batch, POST);
replies are verbatim Gmail / Microsoft 365 / Yahoo / Postfix texts. Every address is valid so
that nothing takes the dead-letter path. Deterministic for a seed.
"""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from bouncewire.schemas.classification import classify

# (weight per 1000, reply fields)
REPLY_MIX: tuple[tuple[int, dict[str, Any]], ...] = (
    (100, {"smtp_code": 250, "enhanced_code": "2.0.0", "smtp_message": "OK queued"}),
    (
        150,
        {
            "smtp_code": 452,
            "enhanced_code": "4.2.2",
            "smtp_message": "The email account that you tried to reach is over quota.",
        },
    ),
    (
        100,
        {
            "smtp_code": 421,
            "enhanced_code": "4.7.0",
            "smtp_message": "Try again later, closing connection. (greylisted)",
        },
    ),
    (
        75,
        {
            "smtp_code": 550,
            "enhanced_code": "5.7.26",
            "smtp_message": "This mail has been blocked because the sender is unauthenticated.",
        },
    ),
    (
        300,
        {
            "smtp_code": 550,
            "enhanced_code": "5.1.1",
            "smtp_message": "The email account that you tried to reach does not exist.",
        },
    ),
    (
        75,
        {
            "smtp_code": 550,
            "smtp_message": (
                "5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup"
            ),
        },
    ),
    (
        50,
        {
            "smtp_code": 556,
            "enhanced_code": "5.1.10",
            "smtp_message": "Recipient address has null MX",
        },
    ),
    (75, {"error": "timeout"}),
    (50, {"error": "connection_refused"}),
    (25, {"error": "dns_failure"}),
)
DOMAINS = ("gmail.com", "outlook.com", "yahoo.com", "icloud.com", "example.org", "corp.test")


def send_result_line(
    rng: random.Random, ts: float, reply: dict[str, Any], email: str | None = None
) -> dict[str, Any]:
    n = rng.randrange(1_000_000)
    return {
        "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "email": email or f"user{n}@{DOMAINS[n % len(DOMAINS)]}",
        "ts": ts,
        "message_id": f"<{n}.{rng.getrandbits(32):08x}@mta.example.org>",
        "campaign_id": f"cmp-{n % 977}",
        "meta": f"acct-1234|cmp-{n % 977}",
        **reply,
    }


def write_send_results(path: Path, count: int, seed: int = 7) -> dict[str, int]:
    """Write `count` JSON lines; returns the mix as classified ({callback kind: events})."""
    rng = random.Random(seed)  # noqa: S311 -- synthetic data
    replies = [r for _, r in REPLY_MIX]
    weights = [w for w, _ in REPLY_MIX]
    picks = rng.choices(range(len(replies)), weights=weights, k=count)
    kinds = [reply_kind(r) for r in replies]
    ts = time.time()
    with open(path, "wb") as out:
        for i in picks:
            out.write(orjson.dumps(send_result_line(rng, ts, replies[i])) + b"\n")
    return dict(Counter(kinds[i] for i in picks))


def reply_kind(reply: dict[str, Any]) -> str:
    """hardbounce / softbounce / none (no callback) for one reply, as the consumer decides."""
    result = classify(
        "user@gmail.com",
        reply.get("smtp_code"),
        reply.get("enhanced_code"),
        reply.get("smtp_message"),
        reply.get("error"),
    )
    return {"hard": "hardbounce", "soft": "softbounce"}.get(result.bounce, "none")


def callbacks_expected(mix: dict[str, int]) -> int:
    return sum(n for kind, n in mix.items() if kind != "none")
