"""RFC 3464 delivery status notifications (and RFC 6533's message/global-delivery-status).

The status part is blocks of fields: one per message, then one per recipient. Real ones fold
Diagnostic-Code over several lines, leave out the blank line between recipients, misspell
Action, or sit in the text body of a message that is no multipart/report at all: a repeated
field, or a recipient field after Action or Status, starts the next recipient whatever the
blank lines say.
"""

from __future__ import annotations

import re
from typing import Final

from bouncewire.producers.mail.evidence import Found, status_field
from bouncewire.producers.mail.report import MailKind
from bouncewire.producers.mail.text import clean, date_ms, first_address

_FIELD: Final = re.compile(r"([A-Za-z][A-Za-z0-9-]*)[ \t]*:[ \t]*(.*)")
_RECIPIENT_FIELDS: Final = ("final-recipient", "original-recipient", "x-actual-recipient")
_ORIGINAL_FIRST: Final = ("original-recipient", "final-recipient", "x-actual-recipient")
_PER_RECIPIENT: Final = frozenset(
    {
        *_RECIPIENT_FIELDS,
        "action",
        "status",
        "remote-mta",
        "diagnostic-code",
        "last-attempt-date",
        "will-retry-until",
        "final-log-id",
    }
)
_PER_MESSAGE: Final = frozenset(
    {"reporting-mta", "arrival-date", "received-from-mta", "original-envelope-id", "dsn-gateway"}
)
# Where a status text names its fields in the body (no multipart/report): enough to try.
STATUS_MARKERS: Final = ("Final-Recipient:", "Original-Recipient:")
_ACTIONS: Final[tuple[tuple[str, MailKind], ...]] = (
    ("fail", "bounce"),
    ("expire", "bounce"),
    ("undeliver", "bounce"),
    ("delay", "delay"),
    ("defer", "delay"),
    ("deliver", "delivered"),
    ("relay", "delivered"),
    ("expand", "delivered"),
)


def field_groups(text: str) -> tuple[dict[str, str], list[dict[str, str]]]:
    """(per-message fields, one dict of fields per recipient) from a status part's text."""
    message: dict[str, str] = {}
    groups: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    last: tuple[dict[str, str], str] | None = None
    for line in text.splitlines():
        field = _field_of(line)
        if field is None:
            if line.strip() and line[:1] in (" ", "\t") and last is not None:
                target, name = last  # a folded continuation of the field before
                target[name] = f"{target[name]} {line.strip()}"
            else:
                current = None if not line.strip() else current
                last = None
            continue
        name, value = field
        if name in _PER_RECIPIENT and (current is None or _starts_new_recipient(current, name)):
            current = {}
            groups.append(current)
        target = current if current is not None and name not in _PER_MESSAGE else message
        if name not in target:
            target[name] = value
            last = (target, name)
    return message, [group for group in groups if _recipient_of(group)]


def _field_of(line: str) -> tuple[str, str] | None:
    """(lower-case name, value) of a field line. An indented line is a field only with a
    name RFC 3464 defines (some MTAs indent the whole block); else it continues the last."""
    found = _FIELD.fullmatch(line.strip())
    if found is None:
        return None
    name = found.group(1).lower()
    if line[:1] in (" ", "\t") and name not in _PER_RECIPIENT and name not in _PER_MESSAGE:
        return None
    return name, found.group(2).strip()


def _starts_new_recipient(group: dict[str, str], name: str) -> bool:
    """A field the group has already, or a recipient field after the Action or Status of a
    group that names its recipient: the next recipient began without a blank line. (Sun's
    Messaging Server writes Action and Status before the recipient fields.)"""
    if name in group:
        return True
    if name not in _RECIPIENT_FIELDS:
        return False
    order = list(group)  # fields in the order they came
    outcome = [order.index(field) for field in ("action", "status") if field in group]
    named = [order.index(field) for field in _RECIPIENT_FIELDS if field in group]
    return bool(outcome and named) and min(named) < min(outcome)


def _recipient_of(group: dict[str, str], fields: tuple[str, ...] = _RECIPIENT_FIELDS) -> str | None:
    for name in fields:
        address = first_address(group.get(name))
        if address:
            return address
    return None


def kind_of(action: str | None, status: str | None) -> MailKind:
    """The kind an Action field (or, without one, the status class) states."""
    value = (action or "").strip().lower()
    for prefix, kind in _ACTIONS:
        if value.startswith(prefix):
            return kind
    if status is not None and status.startswith("2"):
        return "delivered"
    return "bounce"


def recipients(
    text: str, date_fallback_ms: int | None, *, original_first: bool = False
) -> list[Found]:
    """Every recipient group of a status text, in order, as Found. With `original_first`,
    Original-Recipient names the recipient before Final-Recipient: the address the sender
    used, when the report says the final one is a local rewrite of it (Messaging Server's
    "Original address:" under "Recipient address: LOCAL-ALIAS")."""
    message, groups = field_groups(text)
    arrival_ms = date_ms(message.get("arrival-date")) or date_fallback_ms
    fields = _ORIGINAL_FIRST if original_first else _RECIPIENT_FIELDS
    return [_found(group, arrival_ms, fields) for group in groups]


def _found(group: dict[str, str], arrival_ms: int | None, fields: tuple[str, ...]) -> Found:
    status = status_field(group.get("status"))
    return Found(
        email=_recipient_of(group, fields),
        diagnosis=_diagnosis(group.get("diagnostic-code")),
        kind=kind_of(group.get("action"), status),
        status=status,
        remote_mta=_host(group.get("remote-mta")),
        event_time_ms=date_ms(group.get("last-attempt-date")) or arrival_ms,
    )


def _diagnosis(value: str | None) -> str | None:
    """Diagnostic-Code without its type ("smtp; 550 ..." → "550 ...")."""
    if not value:
        return None
    kind, separator, rest = value.partition(";")
    if separator and len(kind) <= 16 and " " not in kind.strip():
        value = rest
    return clean(value) or None


def _host(value: str | None) -> str | None:
    """Remote-MTA's host ("dns; mx.example.com [192.0.2.1]" → "mx.example.com")."""
    if not value:
        return None
    host = value.partition(";")[2] or value
    words = host.replace("[", " ").replace("]", " ").split()
    return words[0].rstrip(".").lower() if words else None
