"""Input records (JSON objects) → Avro records of the event contract. Pure: no I/O.

The rules follow the foundation issue: a send result must carry evidence (`smtp_code` and/or
`error`); its address may be syntactically invalid (that *is* the evidence of an "SMTP invalid
email ID") but not empty, over 1 KB, or holding control characters. An unsubscribe needs a
valid address. Unknown keys are rejected so a typo (`smtpcode`) is not silently dropped.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from bouncewire.producers.exceptions import InvalidEventError
from bouncewire.schemas.addresses import address_problem
from bouncewire.schemas.classification import implied_enhanced_code

SMTP_ERRORS = frozenset(
    {
        "timeout",
        "connection_refused",
        "connection_reset",
        "dns_failure",
        "tls_failure",
        "auth_failure",
    }
)
UNSUBSCRIBE_SOURCES = frozenset({"link", "one_click", "mailto", "api", "complaint"})
MAX_ADDRESS_BYTES = 1024
MAX_TEXT_BYTES = 64 * 1024
_ENHANCED = re.compile(r"[245]\.\d{1,3}\.\d{1,3}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Sanity bounds for event times: 2000-01-01 .. 2200-01-01, in seconds.
_MIN_TS, _MAX_TS = 946_684_800, 7_258_118_400

_OPTIONAL_TEXT = ("message_id", "campaign_id", "meta")
SEND_RESULT_KEYS = frozenset(
    {
        "event_id",
        "email",
        "ts",
        "smtp_code",
        "enhanced_code",
        "smtp_message",
        "error",
        "remote_mta",
        "smtp_command",
        *_OPTIONAL_TEXT,
    }
)
# The SMTP command a reply answered (input only: it decides, through classify, whether words
# alone make a hard bounce, and the record then carries the status that verdict implies).
# RFC 5321's commands, the ones the sources name (producers/smtp_commands.py, smtp_errors.py),
# and "CONN" for the greeting, before any command.
SMTP_COMMANDS = frozenset(
    {"CONN", "EHLO", "HELO", "STARTTLS", "AUTH", "MAIL", "RCPT", "DATA", "RSET", "QUIT",
     "XFORWARD"}
)  # fmt: skip
_UNSUBSCRIBE_TEXT = ("campaign_id", "meta")
UNSUBSCRIBE_KEYS = frozenset({"event_id", "email", "ts", "source", *_UNSUBSCRIBE_TEXT})
# (field, byte limit) of the optional texts, in the order they are checked.
_SEND_RESULT_TEXTS: tuple[tuple[str, int], ...] = (
    ("smtp_message", MAX_TEXT_BYTES),
    ("remote_mta", 255),
    *((key, MAX_TEXT_BYTES) for key in _OPTIONAL_TEXT),
)
_UNSUBSCRIBE_TEXTS = tuple((key, MAX_TEXT_BYTES) for key in _UNSUBSCRIBE_TEXT)

IdFactory = Callable[[], str]


def _new_id() -> str:
    return str(uuid.uuid4())


def parse_event_time(value: Any, now_ms: int) -> int:
    """`ts` as epoch seconds (int/float) or ISO-8601 (naive = UTC); absent → now. Returns ms."""
    if value is None:
        return now_ms
    # Exact types first: `type() is` excludes bool and costs less than isinstance of a union.
    seconds = value if type(value) is float or type(value) is int else _other_seconds(value)
    if not _MIN_TS <= seconds < _MAX_TS:
        raise InvalidEventError("ts", "is outside 2000-01-01..2200-01-01 (epoch seconds expected)")
    return round(seconds * 1000)  # round() of a float is already an int


def _other_seconds(value: Any) -> float:
    if isinstance(value, bool):
        raise InvalidEventError("ts", "must be epoch seconds or an ISO-8601 time, not a boolean")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        return _iso_seconds(value)
    raise InvalidEventError("ts", "must be epoch seconds or an ISO-8601 time")


def _iso_seconds(text: str) -> float:
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidEventError("ts", "is not a valid ISO-8601 time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _add_texts(
    record: dict[str, Any], obj: Mapping[str, Any], texts: tuple[tuple[str, int], ...]
) -> dict[str, Any]:
    """Copy the optional text fields into `record`, checked, in one loop: a helper call per
    field cost 0.9 µs per send result (of 4.8 µs for the whole validation)."""
    for key, limit in texts:
        value = obj.get(key)
        # A character is at most 4 UTF-8 bytes: short texts need no encoding to be measured.
        if value is not None and (type(value) is not str or len(value) * 4 > limit):
            _check_text(key, value, limit)
        record[key] = value
    return record


def _check_text(key: str, value: Any, limit: int) -> None:
    if not isinstance(value, str):
        raise InvalidEventError(key, "must be a string")
    if _utf8_length_over(value, limit):
        raise InvalidEventError(key, f"is longer than {limit} bytes")


def _utf8_length_over(text: str, limit: int) -> bool:
    return len(text) * 4 > limit and len(text.encode("utf-8", "surrogatepass")) > limit


_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _event_id(value: Any, new_id: IdFactory) -> str:
    if value is None:
        return new_id()
    if type(value) is str and _CANONICAL_UUID.fullmatch(value):
        return value  # already canonical: skip the uuid.UUID round trip (2 µs -> 0.4 µs)
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise InvalidEventError("event_id", "must be a UUID") from None


def _raw_address(email: Any) -> str:
    stripped = email.strip() if isinstance(email, str) else ""
    if not stripped:
        raise InvalidEventError("email", "is required and must be a non-empty string")
    if _utf8_length_over(email, MAX_ADDRESS_BYTES):
        raise InvalidEventError("email", f"is longer than {MAX_ADDRESS_BYTES} bytes")
    # Printable text holds no control character: one C call instead of a regex search.
    if not email.isprintable() and _CONTROL.search(email):
        raise InvalidEventError("email", "contains control characters")
    return stripped


def _check_keys(obj: Mapping[str, Any], allowed: frozenset[str]) -> None:
    # A JSON object is a dict: skip the slower ABC isinstance for it.
    if type(obj) is not dict and not isinstance(obj, Mapping):
        raise InvalidEventError("line", "must be a JSON object")
    if obj.keys() <= allowed:
        return
    unknown = sorted(set(obj) - allowed)
    if unknown:
        name = repr(unknown[0][:40])  # quoted: an empty or odd key stays visible
        raise InvalidEventError(name, f"is not a known field (allowed: {sorted(allowed)})")


def _smtp_code(code: Any) -> int | None:
    if code is None or (type(code) is int and 200 <= code <= 599):
        return code
    if isinstance(code, bool) or not isinstance(code, int) or not 200 <= code <= 599:
        raise InvalidEventError("smtp_code", "must be an integer from 200 to 599")
    return code


def _smtp_error(error: Any) -> str | None:
    if error is not None and (not isinstance(error, str) or error not in SMTP_ERRORS):
        raise InvalidEventError("error", f"must be one of {sorted(SMTP_ERRORS)}")
    return error


def _enhanced_code(value: Any) -> str | None:
    if value is None:
        return None
    # ASCII: its length is its UTF-8 length, no encoding needed (0.44 -> 0.3 µs).
    if type(value) is not str or not value.isascii() or len(value) > 16:
        _check_text("enhanced_code", value, 16)
    code: str = value  # _check_text let only a str through
    if not _ENHANCED.fullmatch(code):
        raise InvalidEventError("enhanced_code", "must look like 5.1.1 (RFC 3463 x.y.z)")
    return code


def parse_send_result(
    obj: Mapping[str, Any], *, now_ms: int, new_id: IdFactory = _new_id
) -> dict[str, Any]:
    """Validate one send-result input object and build its Avro record."""
    _check_keys(obj, SEND_RESULT_KEYS)
    get = obj.get
    smtp_code, error = _smtp_code(get("smtp_code")), _smtp_error(get("error"))
    if smtp_code is None and error is None:
        raise InvalidEventError("smtp_code", "or `error` is required (the SMTP evidence)")
    record = {
        "event_id": _event_id(get("event_id"), new_id),
        "event_time": parse_event_time(get("ts"), now_ms),
        "email": _raw_address(get("email")),
        "smtp_code": smtp_code,
        "enhanced_code": _enhanced_code(get("enhanced_code")),
        "error": error,
    }
    record = _add_texts(record, obj, _SEND_RESULT_TEXTS)
    if (command := get("smtp_command")) is not None:
        _fill_implied_status(record, _smtp_command(command))
    return record


def _smtp_command(value: Any) -> str:
    if not isinstance(value, str) or value.upper() not in SMTP_COMMANDS:
        raise InvalidEventError("smtp_command", f"must be one of {sorted(SMTP_COMMANDS)}")
    return value.upper()


def _fill_implied_status(record: dict[str, Any], command: str) -> None:
    """The status the reply's verdict implies given its command, as the SMTP sources record
    it: the consumer, which sees no command, then gives the same verdict."""
    implied = implied_enhanced_code(
        record["smtp_code"],
        record["enhanced_code"],
        record.get("smtp_message"),
        record["error"],
        command=command,
    )
    if implied is not None:
        record["enhanced_code"] = implied


def parse_unsubscribe(
    obj: Mapping[str, Any], *, now_ms: int, new_id: IdFactory = _new_id
) -> dict[str, Any]:
    """Validate one unsubscribe input object and build its Avro record."""
    _check_keys(obj, UNSUBSCRIBE_KEYS)
    email = _raw_address(obj.get("email"))
    problem = address_problem(email)
    if problem is not None:
        raise InvalidEventError("email", f"is not a valid address ({problem})")
    source = obj.get("source", "api")
    if not isinstance(source, str) or source not in UNSUBSCRIBE_SOURCES:
        raise InvalidEventError("source", f"must be one of {sorted(UNSUBSCRIBE_SOURCES)}")
    record = {
        "event_id": _event_id(obj.get("event_id"), new_id),
        "event_time": parse_event_time(obj.get("ts"), now_ms),
        "email": email,
        "source": source,
    }
    return _add_texts(record, obj, _UNSUBSCRIBE_TEXTS)


PARSERS: dict[str, Callable[..., dict[str, Any]]] = {
    "send_result": parse_send_result,
    "unsubscribe": parse_unsubscribe,
}
