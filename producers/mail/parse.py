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
from email.message import Message
from typing import Final

from bouncewire.producers.mail import arf, autoreply, rfc3464
from bouncewire.producers.mail.evidence import Found, recipient_report
from bouncewire.producers.mail.lhost import FORMATS
from bouncewire.producers.mail.lhost.generic import looks_like_bounce
from bouncewire.producers.mail.message import Mail, from_message, load
from bouncewire.producers.mail.original import message_id_of, original_of
from bouncewire.producers.mail.report import MailKind, MailReport, RecipientReport
from bouncewire.producers.mail.scan import Region, cut, diagnoses_for
from bouncewire.producers.mail.text import (
    NO_REPLY,
    addresses,
    date_ms,
    find_reply,
    first_address,
    header_addresses,
    permanence_in_words,
)
from bouncewire.producers.smtp_commands import command_in

_DELAY_SUBJECT: Final = re.compile(
    r"delay|warning|still being retried|not yet been delivered|will retry|deferred"
    r"|temporary failure|\(delay\)",
    re.IGNORECASE,
)
# Where a notice says delivery goes on, and that it was given up (read in its first lines).
_STILL_TRYING: Final = re.compile(
    r"do not resend|(?:delivery )?attempts will continue|still (?:being )?(?:trying|retried)"
    r"|will (?:be )?retr(?:y|ied)|will keep trying|will try again|not yet been delivered"
)
_GAVE_UP: Final = re.compile(
    r"giv(?:en|ing) up|permanent|not going to try again|no further (?:delivery )?attempts"
    r"|will not be retried|could not be delivered to any"
)
_HEAD_OF_TEXT: Final = 3000
_SIEVE_DELETED: Final = re.compile(r"disposition:\s*automatic-action/[^;\n]*;\s*deleted")
_UNSUBSCRIBE: Final = re.compile(r"\bunsubscribe\b|\bopt[ -]?out\b|\bremove me\b", re.IGNORECASE)
_EXCLUDED_HEADERS: Final = ("from", "to", "cc", "reply-to", "sender", "return-path", "delivered-to")
_ORDER: Final[tuple[MailKind, ...]] = ("bounce", "delay", "delivered")


def parse_message(raw: bytes, *, now_ms: int | None = None) -> MailReport:
    """What one message reports, recipient by recipient. Never raises.

    `now_ms` is accepted for the edges' convenience and unused: a recipient whose message
    states no time has event_time_ms None, and the caller decides what now is.
    """
    del now_ms
    find_reply.cache_clear()
    try:
        return _parse(raw if isinstance(raw, bytes) else bytes(raw))
    except Exception:  # a bug here must cost one message, never the edge that called us
        return MailReport(kind="unknown", problems=("parser_error",))


def _parse(raw: bytes) -> MailReport:
    return _parse_mail(load(raw), wrapped=False)


def _parse_mail(mail: Mail, *, wrapped: bool) -> MailReport:
    original = original_of(mail)
    date = date_ms(mail.header("date"))
    base = MailReport(
        kind="unknown",
        original=original,
        message_id=message_id_of(mail.header("message-id")),
        date_ms=date,
        to_header=tuple(header_addresses(mail.header("to"))),
    )
    if arf.is_feedback(mail):
        kind, complaints = arf.complaint(mail, original, date)
        return replace(base, kind=kind, recipients=tuple(complaints), format="arf")
    base = replace(base, problems=tuple(mail.problems))
    if mail.report_type == "disposition-notification":
        if not _is_sieve_reject(mail):
            return replace(base, kind="unknown", format="mdn")  # a read receipt (RFC 8098)
        mail.delivery_status.append(mail.disposition)  # its Final-Recipient failed
    if autoreply.says_auto_reply(mail):
        return _auto_reply(mail, base)
    found, format_name = _bounce(mail, date, base)
    if found:
        reports = tuple(recipient_report(item) for item in found)
        return replace(base, kind=_overall_kind(reports), recipients=reports, format=format_name)
    # A report forwarded whole (InterScan's wrapper around a Microsoft DSN): read the report.
    if not wrapped and mail.original is not None and _is_report(mail.original):
        return _parse_mail(from_message(mail.original), wrapped=True)
    # A bounce naming nobody before the auto-reply headers: Postfix and others put
    # Auto-Submitted: auto-replied on their bounces too.
    if looks_like_bounce(mail):
        return _bounce_without_recipient(mail, base, date)
    if autoreply.is_auto_reply(mail):
        return _auto_reply(mail, base)
    plain: MailKind = "unsubscribe" if _asks_to_unsubscribe(mail) else "unknown"
    return replace(base, kind=plain, sender=first_address(mail.header("from")), format="plain")


def _auto_reply(mail: Mail, base: MailReport) -> MailReport:
    """An auto-reply names who replied (its From:): a recipient of kind auto_reply, which the
    edges count and never publish (Sisimai reports the same address as `vacation`)."""
    replier = first_address(mail.header("from"))
    recipients = (RecipientReport("auto_reply", replier, event_time_ms=base.date_ms),)
    return replace(
        base, kind="auto_reply", recipients=recipients if replier else (), format="rfc3834"
    )


def _is_report(message: Message) -> bool:
    """A delivery report itself (multipart/report with a delivery-status), not an original."""
    content_type = str(message.get("content-type", "")).lower()
    return "multipart/report" in content_type and "delivery-status" in content_type


def _is_sieve_reject(mail: Mail) -> bool:
    """A Sieve "reject" (RFC 5429; Dovecot's LDA over quota): an MDN that the message was
    deleted unread by the recipient's server, saying why. A bounce, not a read receipt."""
    deleted = _SIEVE_DELETED.search(mail.disposition.lower())
    return deleted is not None or mail.mentions("was automatically rejected")


def _not_recipients(mail: Mail, base: MailReport) -> frozenset[str]:
    """Addresses the bounce names that are not its failed recipients: its own sender and
    addressee (the original's sender), and the original's return path."""
    excluded = {a.lower() for name in _EXCLUDED_HEADERS for a in addresses(mail.header(name))}
    # The original's sender, unless it wrote to itself (a test message to one's own address).
    sender = mail.original_sender
    if sender and base.original.to and sender.lower() == base.original.to.lower():
        sender = None
    known_ones = (base.original.return_path, base.original.message_id, base.message_id, sender)
    for known in known_ones:
        if known:
            excluded.add(known.strip("<>").lower())
    return frozenset(excluded)


def _bounce(mail: Mail, date: int | None, base: MailReport) -> tuple[list[Found], str]:
    """The recipients the message reports and the name of the format that found them."""
    status_texts = mail.delivery_status or _status_in_text(mail)
    original_first = mail.mentions("original address:")
    found = [
        item
        for text in status_texts
        for item in rfc3464.recipients(text, date, original_first=original_first)
    ]
    if found:
        return _with_human_replies(mail, found, base), "rfc3464"
    kind = _message_kind(mail)
    exclude = _not_recipients(mail, base)
    for format_ in FORMATS:
        if format_.detect(mail):
            found = _listed_ones(mail, format_.read(mail, exclude, kind))
            if found:
                return [_dated(item, date) for item in found], format_.name
    return _failed_recipients_header(mail, kind, date), "x-failed-recipients"


def _status_in_text(mail: Mail) -> list[str]:
    """Delivery-status fields written into the text body (SendGrid, Facebook, old MTAs)."""
    body = mail.body
    if not any(marker.lower() in mail.lower_body for marker in rfc3464.STATUS_MARKERS):
        return []
    return [body]


def _with_human_replies(mail: Mail, found: list[Found], base: MailReport) -> list[Found]:
    """Status fields without a quoted reply get the one the human-readable text gives the
    same recipient (Exchange, Gmail and others put the remote's words only there); and the
    SMTP command the reply answered, which Postfix and Sendmail name only there."""
    # The body first (cheap); the error text (cut: up to the returned original) only when the
    # body names a command at all or a recipient needs its reply.
    stated = command_in(mail.body)
    if not stated and not any(_says_little(item) for item in found):
        return found
    text = cut(mail.body, ())
    stated = command_in(text) if stated else None
    if stated and len(found) == 1:  # one recipient: the text's command is its command
        found = [replace(found[0], command=command_in(found[0].diagnosis) or stated)]
        stated = None
    wanted = [
        item.email
        for item in found
        if item.email and (_says_little(item) or (stated and not command_in(item.diagnosis)))
    ]
    if not wanted:
        return found
    human = diagnoses_for(Region(text, _not_recipients(mail, base)), wanted)
    return [_fill_diagnosis(item, human.get((item.email or "").lower())) for item in found]


def _says_little(item: Found) -> bool:
    """No reply code quoted, or neither the reply nor Status gives a specific enhanced code
    (Exim and Courier write Status: 5.0.0, the human text may say 5.1.1)."""
    reply = find_reply(item.diagnosis) if item.diagnosis else NO_REPLY
    if reply.code is None:
        return True
    return _generic(reply.enhanced) and _generic(item.status)


def _generic(code: str | None) -> bool:
    return code is None or code.endswith(".0.0")


def _fill_diagnosis(item: Found, text: str | None) -> Found:
    """The human text's diagnosis when it says more than the status fields' (a reply code
    where they have none, a specific enhanced code where they have X.0.0); its command."""
    if not text:
        return item
    item = replace(item, command=item.command or command_in(text))
    if not _says_little(item):
        return item
    human = find_reply(text)
    if human.code is None and human.enhanced is None:
        return item if item.diagnosis else replace(item, diagnosis=text)
    own = find_reply(item.diagnosis) if item.diagnosis else NO_REPLY
    if own.code is not None and _generic(human.enhanced):
        return item  # the status part's reply is as good as the text's
    return replace(item, diagnosis=text)


def _dated(item: Found, date: int | None) -> Found:
    return item if item.event_time_ms is not None else replace(item, event_time_ms=date)


def _message_kind(mail: Mail) -> MailKind:
    """bounce, or delay when the subject says delivery is still being tried. Only the
    subject's own words count, not the original subject it quotes after a colon
    ("Undeliverable: Warning about your account" is no delay)."""
    subject = mail.header("subject")
    own_words = subject.split(":", 1)[0] if ":" in subject else subject
    if not _DELAY_SUBJECT.search(own_words):
        return "delay" if _says_still_trying(mail) else "bounce"
    # "Warning: ADDR - User unknown!": a warning that says the failure is final is none.
    return "bounce" if permanence_in_words(subject) == 5 else "delay"


def _says_still_trying(mail: Mail) -> bool:
    """A notice under a plain subject that delivery goes on ("Please do not resend your
    original message. Delivery attempts will continue...") and says nothing of giving up."""
    head = mail.lower_body[:_HEAD_OF_TEXT]
    return _STILL_TRYING.search(head) is not None and _GAVE_UP.search(head) is None


def _listed_ones(mail: Mail, found: list[Found]) -> list[Found]:
    """Only the recipients X-Failed-Recipients lists, when it lists any: the header is the
    MTA's own list, the text may quote other addresses ("Hello SENDER," in Google Groups'
    bounces). None of them named: nothing, and the header itself is read last."""
    listed = {address.lower() for address in addresses(mail.header("x-failed-recipients"))}
    if not listed:
        return found
    return [item for item in found if (item.email or "").lower() in listed]


def _failed_recipients_header(mail: Mail, kind: MailKind, date: int | None) -> list[Found]:
    """Exim's X-Failed-Recipients when the text named nobody we could read."""
    listed = addresses(mail.header("x-failed-recipients"))
    diagnosis = cut(mail.body, ())[:2000] or None
    return [Found(email=a, diagnosis=diagnosis, kind=kind, event_time_ms=date) for a in listed]


def _overall_kind(reports: tuple[RecipientReport, ...]) -> MailKind:
    kinds = {report.kind for report in reports}
    return next((kind for kind in _ORDER if kind in kinds), reports[0].kind)


def _bounce_without_recipient(mail: Mail, base: MailReport, date: int | None) -> MailReport:
    """A bounce whose text names nobody: the returned original's To: (Verizon, IMail and
    others only return the message), else one recipient without an address, so the edge can
    still attribute it by the envelope (a VERP return path) with the reply the text quotes."""
    kind = _message_kind(mail)
    diagnosis = cut(mail.body, ())[:2000] or None
    email = base.original.to
    report = recipient_report(Found(email, diagnosis, kind, event_time_ms=date))
    return replace(base, kind=kind, recipients=(report,), format="unrecognised")


def _asks_to_unsubscribe(mail: Mail) -> bool:
    """A plain message whose Subject or first line asks to be unsubscribed (RFC 2369 mailto)."""
    if _UNSUBSCRIBE.search(mail.header("subject")):
        return True
    first_line = next((line for line in mail.body.splitlines() if line.strip()), "")
    return _UNSUBSCRIBE.search(first_line[:200]) is not None
