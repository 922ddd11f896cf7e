"""The returned original: which mail failed, whatever form it came back in.

A message/rfc822 part, a text/rfc822-headers part, or (qmail, Exim, Exchange and most
non-standard bounces) its header lines pasted into the text after a marker line. The campaign
travels in an X-CleverTap-Campaign-Id header that bouncewire's senders add (the first of
CAMPAIGN_HEADERS found counts); meta in X-CleverTap_META.
"""

from __future__ import annotations

import re
from email.message import Message
from typing import Final

from bouncewire.producers.mail.message import Mail, decode_header
from bouncewire.producers.mail.report import OriginalMessage
from bouncewire.producers.mail.text import header_addresses

CAMPAIGN_HEADERS: Final = ("X-CleverTap-Campaign-Id", "X-CleverTap-Campaign", "X-Campaign-Id")
META_HEADER: Final = "X-CleverTap_META"
_WANTED: Final = frozenset(
    {"message-id", "return-path", "to", META_HEADER.lower(), *(h.lower() for h in CAMPAIGN_HEADERS)}
)
_HEADER_LINE: Final = re.compile(r"[ \t>]*([A-Za-z][A-Za-z0-9_-]{0,60})[ \t]*:[ \t]*(.*)")
# Lines that only occur in a header block: one of them makes a run of fields an original's.
_ORIGINAL_MARKS: Final = frozenset({"message-id", "return-path", "received", META_HEADER.lower()})
_MESSAGE_ID: Final = re.compile(r"<[^<>\s]+>|[^<>\s]+@[^<>\s]+")


def original_of(mail: Mail) -> OriginalMessage:
    """The returned message's identity, from whichever form it came back in."""
    if mail.original is not None:
        found = _from_message(mail.original)
        if found != OriginalMessage():
            return found
    if mail.original_headers:
        found = _from_fields(header_fields(mail.original_headers))
        if found != OriginalMessage():
            return found
    return _from_fields(header_fields(mail.body))


def _from_message(message: Message) -> OriginalMessage:
    fields = {name.lower(): decode_header(value) for name, value in message.items()}
    return _from_fields(fields)


def header_fields(text: str) -> dict[str, str]:
    """The wanted fields of the first run of header lines in `text` that is a message's.

    A run is consecutive field lines (and their folded continuations); it is an original's
    when it holds a field only messages have (Message-ID, Return-Path, Received, meta).
    """
    run: dict[str, str] = {}
    last: str | None = None
    is_original = False
    for line in text.splitlines():
        found = _HEADER_LINE.fullmatch(line)
        if found is not None:
            last = found.group(1).lower()
            is_original = is_original or last in _ORIGINAL_MARKS
            if last in _WANTED:
                run.setdefault(last, found.group(2).strip())
        elif line[:1] in (" ", "\t") and line.strip() and last is not None:
            if last in run and (last != "message-id" or not run[last]):
                run[last] = f"{run[last]} {line.strip()}"
        elif is_original:
            return run
        else:
            run, last = {}, None
    return run if is_original else {}


def _from_fields(fields: dict[str, str]) -> OriginalMessage:
    return OriginalMessage(
        message_id=_message_id(fields.get("message-id")),
        campaign_id=_first_value(fields, CAMPAIGN_HEADERS),
        meta=fields.get(META_HEADER.lower()) or None,
        return_path=next(iter(header_addresses(fields.get("return-path"))), None),
        to=next(iter(header_addresses(fields.get("to"))), None),
    )


def _first_value(fields: dict[str, str], names: tuple[str, ...]) -> str | None:
    for name in names:
        value = fields.get(name.lower())
        if value:
            return value
    return None


def _message_id(value: str | None) -> str | None:
    """The Message-ID in angle brackets, as bouncewire's senders write it; None if absent."""
    if not value:
        return None
    found = _MESSAGE_ID.search(value)
    if found is None:
        return None
    message_id = found.group(0)
    return message_id if message_id.startswith("<") else f"<{message_id}>"
