"""The returned original: which mail failed, whatever form it came back in.

A message/rfc822 part, a text/rfc822-headers part, or (qmail, Exim, Exchange and most
non-standard bounces) its header lines pasted into the text after a marker line. The campaign
and meta travel in the headers producers/headers.py names (the first of CAMPAIGN_HEADERS found
counts), the same ones the SMTP gateway reads.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final

from bouncewire.producers.headers import CAMPAIGN_HEADERS, META_HEADER
from bouncewire.producers.mail.message import Mail, decode_header, raw_headers
from bouncewire.producers.mail.report import OriginalMessage
from bouncewire.producers.mail.text import header_addresses

_WANTED: Final = frozenset(
    {
        "message-id",
        "return-path",
        "to",
        "from",
        META_HEADER.lower(),
        *(h.lower() for h in CAMPAIGN_HEADERS),
    }
)
_HEADER_LINE: Final = re.compile(r"[ \t>]*([A-Za-z][A-Za-z0-9_-]{0,60})[ \t]*:[ \t]*(.*)")
# Lines that only occur in a header block: one of them makes a run of fields an original's.
_ORIGINAL_MARKS: Final = frozenset({"message-id", "return-path", "received", META_HEADER.lower()})
_MESSAGE_ID: Final = re.compile(r"<[^<>\s]+>|[^<>\s]+@[^<>\s]+")


def original_of(mail: Mail) -> OriginalMessage:
    """The returned message's identity, from whichever form it came back in. Also notes its
    sender on `mail` (the scanner must not take it for a recipient)."""
    for fields in _field_sources(mail):
        found = _from_fields(fields)
        if found != OriginalMessage():
            mail.original_sender = next(iter(header_addresses(fields.get("from"))), None)
            return found
    return OriginalMessage()


def _field_sources(mail: Mail) -> Iterator[dict[str, str]]:
    """The original's fields: the message/rfc822 part, text/rfc822-headers, inline text."""
    if mail.original is not None:
        yield {name: decode_header(value) for name, value in raw_headers(mail.original).items()}
    if mail.original_headers:
        yield header_fields(mail.original_headers)
    yield header_fields(mail.body)


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
        message_id=message_id_of(fields.get("message-id")),
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


def message_id_of(value: str | None) -> str | None:
    """The Message-ID in angle brackets, as bouncewire's senders write it; None if absent."""
    if not value:
        return None
    found = _MESSAGE_ID.search(value)
    if found is None:
        return None
    message_id = found.group(0)
    return message_id if message_id.startswith("<") else f"<{message_id}>"
