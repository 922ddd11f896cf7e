"""What a callback HTTP answer means for the batch that was POSTed (pure policy).

* 2xx → DELIVERED, unless the body reports CleverTap's partial success (below) → PARTIAL.
* 408, 425, 429, 5xx, and anything outside 200..499 that is not a 3xx (1xx, >= 600) → RETRY.
  On 429 and 503 a ``Retry-After`` (delta-seconds or HTTP-date) is honoured, capped at
  ``max_retry_after_s``; otherwise ``retry_after_s`` is None and the caller's backoff applies.
* 3xx → REJECT: redirects are never followed and a redirect is not a delivery.
* Other 4xx → REJECT, except a body reporting a partial success with PROCESSED_EVENTS > 0,
  which is PARTIAL (only the unprocessed events are dead-lettered).

Partial success: a JSON object body with ``UNPROCESSED_EVENTS`` (list of entries). Each entry
is matched to at most one event, and each event to at most one entry, by email (keys ``e`` or
``email``, compared case-insensitively), narrowed by ``ts`` and by type (``type``/``event``,
legacy or v2 names) when the entry carries them. The rule is *never lose*: an entry whose email
matches events but no free candidate marks every event with that email; an entry that cannot be
placed at all (no email, unknown email, not an object) marks the whole batch; so does a body
whose counts say PROCESSED_EVENTS < TOTAL_EVENTS without a usable list. Marked events go to the
dead-letter topic (a duplicate there is recoverable, a lost unsubscribe is not).

A malformed or non-JSON body is judged by status alone.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any, Final

import orjson

from bouncewire.consumers.payloads import V2_TYPES, CallbackEvent

RETRY_STATUSES: Final = frozenset({408, 425, 429})
RETRY_AFTER_STATUSES: Final = frozenset({429, 503})

_KIND_BY_NAME: Final[Mapping[str, str]] = {
    **{kind: kind for kind in V2_TYPES},
    **{v2: kind for kind, v2 in V2_TYPES.items()},
}


class Verdict(enum.Enum):
    DELIVERED = "delivered"  # every event accepted
    PARTIAL = "partial"  # accepted except ``unprocessed``: dead-letter those
    RETRY = "retry"  # transient: re-send the same batch
    REJECT = "reject"  # permanent: dead-letter every event


@dataclass(frozen=True, slots=True)
class ResponseDecision:
    verdict: Verdict
    retry_after_s: float | None = None  # RETRY only: server-asked delay, capped
    unprocessed: tuple[int, ...] = ()  # PARTIAL only: ascending indexes into the batch's events
    reason: str = ""  # bounded label for metrics and DLQ headers (no status, no body)


def decide(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    events: Sequence[CallbackEvent],
    *,
    now: float,
    max_retry_after_s: float,
) -> ResponseDecision:
    """Judge one HTTP answer to a POST of ``events``. ``now`` is wall-clock epoch seconds."""
    if 200 <= status < 300:
        unprocessed = _unprocessed(body, events, require_progress=False)
        if unprocessed:
            return ResponseDecision(Verdict.PARTIAL, None, unprocessed, "partial_success")
        return ResponseDecision(Verdict.DELIVERED, reason="delivered")
    if 300 <= status < 400:
        return ResponseDecision(Verdict.REJECT, reason="redirect")
    if 400 <= status < 500 and status not in RETRY_STATUSES:
        unprocessed = _unprocessed(body, events, require_progress=True)
        if unprocessed:
            return ResponseDecision(Verdict.PARTIAL, None, unprocessed, "partial_success")
        return ResponseDecision(Verdict.REJECT, reason="client_error")
    retry_after = None
    if status in RETRY_AFTER_STATUSES:
        retry_after = parse_retry_after(_header(headers, "retry-after"), now)
        if retry_after is not None:
            retry_after = min(retry_after, max_retry_after_s)
    reason = "server_error" if 500 <= status < 600 else "retryable_status"
    return ResponseDecision(Verdict.RETRY, retry_after, (), reason)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)  # httpx.Headers is case-insensitive; a dict may not be
    if value is not None:
        return value
    for key, val in headers.items():
        if key.lower() == name:
            return val
    return None


_DELTA_SECONDS: Final = re.compile(r"-?\d{1,15}(?:\.\d{1,9})?")


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait per a ``Retry-After`` value (RFC 9110 §10.2.3).

    delta-seconds or an HTTP-date (relative to ``now``, wall-clock epoch seconds); a negative
    delay or a past date gives 0.0; a missing or unparsable value gives None.
    """
    if value is None:
        return None
    text = value.strip()
    if _DELTA_SECONDS.fullmatch(text):
        return max(0.0, float(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000" means UTC without a claimed zone
        when = when.replace(tzinfo=UTC)
    try:
        return max(0.0, when.timestamp() - now)
    except (OverflowError, OSError, ValueError):
        return None


# --- partial success ---------------------------------------------------------------------


def _unprocessed(
    body: bytes, events: Sequence[CallbackEvent], *, require_progress: bool
) -> tuple[int, ...]:
    report = _json_object(body)
    if report is None or not events:
        return ()
    if require_progress and not _count(report, "PROCESSED_EVENTS"):
        return ()
    entries = report.get("UNPROCESSED_EVENTS")
    if isinstance(entries, list) and entries:
        return _match_entries(entries, events)
    if entries or _shortfall(report):
        return tuple(range(len(events)))  # failures reported, but not which: all of them
    return ()


def _json_object(body: bytes) -> dict[str, Any] | None:
    if not body.lstrip()[:1] == b"{":
        return None
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _count(report: Mapping[str, Any], key: str) -> int:
    value = report.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _shortfall(report: Mapping[str, Any]) -> bool:
    total = _count(report, "TOTAL_EVENTS")
    return "PROCESSED_EVENTS" in report and _count(report, "PROCESSED_EVENTS") < total


def _match_entries(entries: list[Any], events: Sequence[CallbackEvent]) -> tuple[int, ...]:
    everything = tuple(range(len(events)))
    by_email: dict[str, list[int]] = {}
    for index, event in enumerate(events):
        by_email.setdefault(event.email.strip().lower(), []).append(index)
    marked: set[int] = set()
    for entry in entries:
        email = _entry_email(entry)
        if email is None or email not in by_email:
            return everything  # cannot tell which event failed
        picked = _pick(entry, by_email[email], events, marked)
        # No free candidate agrees with the entry: mark every event with that address.
        marked.update(by_email[email] if picked is None else (picked,))
    return tuple(sorted(marked))


def _entry_email(entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return None
    email = entry.get("e", entry.get("email"))
    return email.strip().lower() if isinstance(email, str) else None


def _pick(
    entry: dict[str, Any], candidates: list[int], events: Sequence[CallbackEvent], taken: set[int]
) -> int | None:
    """First free candidate agreeing with the entry's ts and type (when it states them)."""
    raw_ts = entry.get("ts")
    ts = raw_ts if isinstance(raw_ts, int) and not isinstance(raw_ts, bool) else None
    name = entry.get("type", entry.get("event"))
    kind = _KIND_BY_NAME.get(name) if isinstance(name, str) else None
    for index in candidates:
        event = events[index]
        if index in taken or (ts is not None and event.ts != ts):
            continue
        if kind is None or event.kind == kind:
            return index
    return None


# --- redaction ---------------------------------------------------------------------------

# scheme://[userinfo@]host[:port] then path/query/fragment: keep scheme and host only.
_URL: Final = re.compile(
    r"(?i)\b([a-z][a-z0-9+.-]{0,15}://)(?:[^\s/?#@\"'<>\\]*@)?([^\s/?#\"'<>\\]*)"
    r"([/?#][^\s\"'<>\\]*)?"
)
# Scheme-less host/path ("api.example.com/1/a/b?x=y").
_HOST_PATH: Final = re.compile(
    r"(?i)\b((?:[a-z0-9-]{1,63}\.)+[a-z]{2,63}(?::\d{1,5})?)([/?#][^\s\"'<>\\]*)"
)
# Anything shaped local@domain, "@" possibly JSON-escaped; stops at quotes and delimiters.
_EMAIL: Final = re.compile(r"(?i)[^\s\"<>()\[\],;:@\\]+(?:@|\\u0040)[^\s\"<>()\[\],;:@\\/?#]+")
_HEX: Final = re.compile(r"\b[0-9a-fA-F]{16,}\b")
_B64: Final = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")


def redact(text: str) -> str:
    """``text`` with URL paths/queries/userinfo, e-mail addresses and long hex or base64-like
    tokens replaced, for storing a response body in a dead-letter header or a log line.

    Redact before truncating (a truncated address may lose its "@")."""
    text = _URL.sub(_keep_url_host, text)
    text = _HOST_PATH.sub(lambda m: m.group(1) + "/[redacted]", text)
    text = _EMAIL.sub("[email]", text)
    text = _HEX.sub("[token]", text)
    return _B64.sub(_token_if_mixed, text)


def _keep_url_host(match: re.Match[str]) -> str:
    rest = "/[redacted]" if match.group(3) else ""
    return match.group(1) + match.group(2) + rest


def _token_if_mixed(match: re.Match[str]) -> str:
    # A long run mixing digits and letters is a token; a long plain word is not.
    token = match.group(0)
    has_digit = any(c.isdigit() for c in token)
    has_alpha = any(c.isalpha() for c in token)
    return "[token]" if has_digit and has_alpha else token
