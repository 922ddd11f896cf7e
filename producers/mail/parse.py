"""parse_message: one message's bytes → its MailReport. Pure; never raises.

The order decides what a message is: a feedback report is a complaint; a delivery-status
part (or its fields in the text) is read by rfc3464, the human-readable part filling in
replies the fields lack; otherwise the first non-standard format that recognises the text
and finds a recipient; only a message with no bounce in it can be an auto-reply; what is
left is an unsubscribe request (Subject or first line says so) or unknown.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Final

from bouncewire.producers.mail import arf, autoreply, rfc3464
from bouncewire.producers.mail.evidence import Found, recipient_report
from bouncewire.producers.mail.lhost import FORMATS
from bouncewire.producers.mail.lhost.generic import looks_like_bounce
from bouncewire.producers.mail.message import Mail, load
from bouncewire.producers.mail.original import _message_id, original_of
from bouncewire.producers.mail.report import MailKind, MailReport, RecipientReport
from bouncewire.producers.mail.scan import Region, cut, scan
from bouncewire.producers.mail.text import (
    addresses,
    date_ms,
    find_reply,
    first_address,
    header_addresses,
)

_DELAY_SUBJECT: Final = re.compile(
    r"delay|warning|still being retried|not yet been delivered|will retry|deferred"
    r"|temporary failure|\(delay\)",
    re.IGNORECASE,
)
_UNSUBSCRIBE: Final = re.compile(r"\bunsubscribe\b|\bopt[ -]?out\b|\bremove me\b", re.IGNORECASE)
_EXCLUDED_HEADERS: Final = ("from", "to", "cc", "reply-to", "sender", "return-path", "delivered-to")
_ORDER: Final[tuple[MailKind, ...]] = ("bounce", "delay", "delivered")


def parse_message(raw: bytes, *, now_ms: int | None = None) -> MailReport:
    """What one message reports, recipient by recipient. Never raises.

    `now_ms` is accepted for the edges' convenience and unused: a recipient whose message
    states no time has event_time_ms None, and the caller decides what now is.
    """
    del now_ms
    try:
        return _parse(raw if isinstance(raw, bytes) else bytes(raw))
    except Exception:  # a bug here must cost one message, never the edge that called us
        return MailReport(kind="unknown", problems=("parser_error",))


def _parse(raw: bytes) -> MailReport:
    mail = load(raw)
    original = original_of(mail)
    date = date_ms(mail.header("date"))
    base = MailReport(
        kind="unknown",
        original=original,
        message_id=_message_id(mail.header("message-id")),
        date_ms=date,
        to_header=tuple(header_addresses(mail.header("to"))),
    )
    if arf.is_feedback(mail):
        kind, complaints = arf.complaint(mail, original, date)
        return replace(base, kind=kind, recipients=tuple(complaints), format="arf")
    base = replace(base, problems=tuple(mail.problems))
    found, format_name = _bounce(mail, date, _not_recipients(mail, base))
    if found:
        reports = tuple(recipient_report(item) for item in found)
        return replace(base, kind=_overall_kind(reports), recipients=reports, format=format_name)
    if autoreply.is_auto_reply(mail):
        return replace(base, kind="auto_reply", format="rfc3834")
    if looks_like_bounce(mail):
        return _bounce_without_recipient(mail, base, date)
    plain: MailKind = "unsubscribe" if _asks_to_unsubscribe(mail) else "unknown"
    return replace(base, kind=plain, sender=first_address(mail.header("from")), format="plain")


def _not_recipients(mail: Mail, base: MailReport) -> frozenset[str]:
    """Addresses the bounce names that are not its failed recipients: its own sender and
    addressee (the original's sender), and the original's return path."""
    excluded = {a.lower() for name in _EXCLUDED_HEADERS for a in addresses(mail.header(name))}
    for known in (base.original.return_path, base.original.message_id, base.message_id):
        if known:
            excluded.add(known.strip("<>").lower())
    return frozenset(excluded)


def _bounce(mail: Mail, date: int | None, exclude: frozenset[str]) -> tuple[list[Found], str]:
    """The recipients the message reports and the name of the format that found them."""
    status_texts = mail.delivery_status or _status_in_text(mail)
    found = [item for text in status_texts for item in rfc3464.recipients(text, date)]
    if found:
        return _with_human_replies(mail, found, exclude), "rfc3464"
    kind = _message_kind(mail)
    for format_ in FORMATS:
        if format_.detect(mail):
            found = format_.read(mail, exclude, kind)
            if found:
                return [_dated(item, date) for item in found], format_.name
    return _failed_recipients_header(mail, kind, date), "x-failed-recipients"


def _status_in_text(mail: Mail) -> list[str]:
    """Delivery-status fields written into the text body (SendGrid, Facebook, old MTAs)."""
    body = mail.body
    if not any(marker.lower() in mail.lower_body for marker in rfc3464.STATUS_MARKERS):
        return []
    return [body]


def _with_human_replies(mail: Mail, found: list[Found], exclude: frozenset[str]) -> list[Found]:
    """Status fields without a quoted reply get the one the human-readable text gives the
    same recipient (Exchange, Gmail and others put the remote's words only there)."""
    if all(item.diagnosis and find_reply(item.diagnosis).code for item in found):
        return found
    human = {
        (item.email or "").lower(): item.diagnosis
        for item in scan(Region(cut(mail.body, ()), exclude))
    }
    return [_fill_diagnosis(item, human.get((item.email or "").lower())) for item in found]


def _fill_diagnosis(item: Found, text: str | None) -> Found:
    if not text or (item.diagnosis and find_reply(item.diagnosis).code):
        return item
    if find_reply(text).code is None:
        return item if item.diagnosis else replace(item, diagnosis=text)
    return replace(item, diagnosis=text)


def _dated(item: Found, date: int | None) -> Found:
    return item if item.event_time_ms is not None else replace(item, event_time_ms=date)


def _message_kind(mail: Mail) -> MailKind:
    """bounce, or delay when the message says delivery is still being tried."""
    if _DELAY_SUBJECT.search(mail.header("subject")):
        return "delay"
    return "bounce"


def _failed_recipients_header(mail: Mail, kind: MailKind, date: int | None) -> list[Found]:
    """Exim's X-Failed-Recipients when the text named nobody we could read."""
    listed = addresses(mail.header("x-failed-recipients"))
    diagnosis = cut(mail.body, ())[:2000] or None
    return [Found(email=a, diagnosis=diagnosis, kind=kind, event_time_ms=date) for a in listed]


def _overall_kind(reports: tuple[RecipientReport, ...]) -> MailKind:
    kinds = {report.kind for report in reports}
    return next((kind for kind in _ORDER if kind in kinds), reports[0].kind)


def _bounce_without_recipient(mail: Mail, base: MailReport, date: int | None) -> MailReport:
    """A bounce whose text names nobody: one recipient without an address, so the edge can
    still attribute it by the envelope (a VERP return path) with the reply the text quotes."""
    kind = _message_kind(mail)
    diagnosis = cut(mail.body, ())[:2000] or None
    report = recipient_report(Found(email=None, diagnosis=diagnosis, kind=kind, event_time_ms=date))
    return replace(base, kind=kind, recipients=(report,), format="unrecognised")


def _asks_to_unsubscribe(mail: Mail) -> bool:
    """A plain message whose Subject or first line asks to be unsubscribed (RFC 2369 mailto)."""
    if _UNSUBSCRIBE.search(mail.header("subject")):
        return True
    first_line = next((line for line in mail.body.splitlines() if line.strip()), "")
    return _UNSUBSCRIBE.search(first_line[:200]) is not None
