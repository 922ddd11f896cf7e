"""One parsed message (a MailReport) → the events it publishes. Pure: no I/O, no clock.

What each kind becomes (docs/mail.md says why):

- ``bounce`` and ``delivered`` recipients → one send result each, the evidence verbatim;
  ``classify`` decides hard, soft or none downstream, as for every other source;
- ``delay`` → counted, never published: the message may still arrive, and a soft bounce
  shown for a message that then arrives would be wrong. The final outcome (a failed DSN, or
  the MTA's expiry bounce) is what gets published;
- ``complaint`` → an unsubscribe with source ``complaint`` (unless turned off), counted always;
- mail to a valid signed ``unsubscribe`` address → an unsubscribe with source ``mailto`` for the
  address the token names; without a valid token nothing is published;
- ``auto_reply`` and ``unknown`` → counted only.

A valid signed ``bounce`` address (VERP) among the envelope recipients, the To: header or the
returned original's Return-Path names the recipient (and campaign, meta) a bounce belongs to,
whatever the text says. A token that fails verification attributes nothing: the message's own
evidence is used, and the forgery is counted.

Event ids are uuid5 of (the message's key, recipient, event kind): re-importing a mailbox, or
an MTA retrying a delivery we answered too late, gives the same ids, deduplicated downstream.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from bouncewire.producers.events import (
    MAX_TEXT_BYTES,
    SMTP_ERRORS,
    parse_send_result,
    parse_unsubscribe,
)
from bouncewire.producers.exceptions import InvalidEventError
from bouncewire.producers.mail.report import MailKind, MailReport, RecipientReport
from bouncewire.producers.signed_addresses import Purpose, is_signed_local_part, verify_address
from bouncewire.producers.unsubscribe.tokens import Claims, Keyring, TokenError
from bouncewire.schemas.classification import implied_enhanced_code

EventKind = Literal["send_result", "unsubscribe"]
# Why something in a message was counted instead of (or besides) published; bounded: these
# are metric label values.
Note = Literal[
    "delay",  # a delay notice: counted, never published
    "complaint",  # every complaint, published or not
    "complaint_unsubscribe_off",  # --no-complaint-unsubscribes
    "auto_reply",
    "unknown",
    "unsigned_unsubscribe",  # a request to an unsubscribe address without a valid token
    "no_recipient",  # a bounce or complaint naming no address we could use
    "forged_token",  # a signed-looking address that failed verification
    "unverified_token",  # a signed-looking address, but no keys to check it with
    "invalid_event",  # the evidence could not make a valid event (e.g. a garbled address)
]
NOTES: Final[tuple[Note, ...]] = (
    "delay",
    "complaint",
    "complaint_unsubscribe_off",
    "auto_reply",
    "unknown",
    "unsigned_unsubscribe",
    "no_recipient",
    "forged_token",
    "unverified_token",
    "invalid_event",
)
_EVENT_ID_NAMESPACE: Final = uuid.UUID("0c9f3a5e-6d1b-4f7a-8e2c-3b5d7f9a1c24")
_PUBLISHED_RECIPIENT_KINDS: Final = frozenset({"bounce", "delivered"})
# A DSN may give only its Status (RFC 3463): the reply class it implies, for classify, which
# reads the enhanced code beside it (the parser fills the same codes when it sees the Status;
# these cover a report that reached here without one).
_CODE_BY_STATUS_CLASS: Final = {"2": 250, "4": 450, "5": 550}
_CODE_BY_KIND: Final = {"bounce": 550, "delivered": 250}
_MAX_REMOTE_MTA_BYTES: Final = 255
# Event times outside these bounds (ms) are garbage in the message: the receipt time stands in.
_MIN_TIME_MS, _MAX_TIME_MS = 946_684_800_000, 7_258_118_400_000


@dataclass(frozen=True, slots=True)
class MailOptions:
    complaint_unsubscribes: bool = True


@dataclass(frozen=True, slots=True)
class MailEvent:
    """One record to publish: its topic kind, the mail kind it came from, the Avro record."""

    kind: EventKind
    mail_kind: MailKind
    record: dict[str, Any] = field(repr=False)


@dataclass(frozen=True, slots=True)
class Conversion:
    """A message's events and what was counted instead; `kind` is the message's own kind."""

    kind: MailKind
    events: tuple[MailEvent, ...] = ()
    notes: tuple[Note, ...] = ()


def message_key(report: MailReport, raw: bytes) -> str:
    """What identifies a message across re-reads: its Message-ID, else a hash of its bytes."""
    if report.message_id and report.message_id.strip():
        return "id:" + report.message_id.strip()
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def event_id(key: str, email: str, kind: str) -> str:
    identity = json.dumps([key, email.strip().lower(), kind], ensure_ascii=False)
    return str(uuid.uuid5(_EVENT_ID_NAMESPACE, identity))


@dataclass(frozen=True, slots=True)
class _Context:
    report: MailReport
    key: str
    now_ms: int
    notes: list[Note]


def mail_events(
    report: MailReport,
    envelope_to: Sequence[str],
    keyring: Keyring | None,
    *,
    key: str,
    now_ms: int,
    options: MailOptions = MailOptions(),
) -> Conversion:
    """The events `report` publishes, delivered to `envelope_to` (empty when unknown: a file).

    `key` is `message_key(report, raw)`; `now_ms` stands in for times the message lacks.
    """
    ctx = _Context(report, key, now_ms, [])
    addresses = (*envelope_to, *report.to_header)
    mailto = _claims(addresses, keyring, "unsubscribe", ctx.notes)
    if mailto is not None and report.kind != "auto_reply":
        events = _unsubscribe(ctx, mailto, "mailto", "unsubscribe")
    elif report.kind == "complaint":
        events = _complaint(ctx, _verp(ctx, addresses, keyring), options)
    elif report.kind in ("bounce", "delay", "delivered"):
        events = _recipients(ctx, _verp(ctx, addresses, keyring))
    else:
        unsigned = report.kind == "unsubscribe"
        ctx.notes.append("unsigned_unsubscribe" if unsigned else _note_of(report.kind))
        events = []
    return Conversion(report.kind, tuple(events), tuple(ctx.notes))


def _verp(ctx: _Context, addresses: Iterable[str], keyring: Keyring | None) -> Claims | None:
    return_path = ctx.report.original.return_path
    candidates = (*addresses, *((return_path,) if return_path else ()))
    return _claims(candidates, keyring, "bounce", ctx.notes)


def _claims(
    addresses: Iterable[str], keyring: Keyring | None, purpose: Purpose, notes: list[Note]
) -> Claims | None:
    """The claims of the first genuine `purpose` address; a failed one is counted, not used."""
    for address in addresses:
        if not is_signed_local_part(address, purpose):
            continue
        if keyring is None:
            notes.append("unverified_token")
            continue
        try:
            return verify_address(keyring, address, purpose)
        except TokenError:
            notes.append("forged_token")
    return None


def _recipients(ctx: _Context, verp: Claims | None) -> list[MailEvent]:
    recipients = ctx.report.recipients
    if verp is not None:
        chosen = _verp_recipient(recipients, verp, ctx.report.kind)
        return _recipient_events(ctx, chosen, verp.email, verp)
    events: list[MailEvent] = []
    for recipient in recipients:
        if recipient.email and recipient.email.strip():
            events.extend(_recipient_events(ctx, recipient, recipient.email, None))
        elif recipient.kind in _PUBLISHED_RECIPIENT_KINDS:
            ctx.notes.append("no_recipient")
        else:
            ctx.notes.append(_note_of(recipient.kind))
    if not recipients:
        ctx.notes.append("no_recipient" if ctx.report.kind != "delay" else "delay")
    return events


def _verp_recipient(
    recipients: Sequence[RecipientReport], verp: Claims, kind: MailKind
) -> RecipientReport:
    """The report about the token's recipient: the one naming it, else (a forwarding address,
    or no address at all) the first of the message's kind, else the message's kind bare."""
    wanted = verp.email.strip().lower()
    for recipient in recipients:
        if (recipient.email or "").strip().strip("<>").lower() == wanted:
            return recipient
    return next((r for r in recipients if r.kind == kind), RecipientReport(kind, None))


def _recipient_events(
    ctx: _Context, recipient: RecipientReport, email: str, verp: Claims | None
) -> list[MailEvent]:
    if recipient.kind not in _PUBLISHED_RECIPIENT_KINDS:
        ctx.notes.append(_note_of(recipient.kind))
        return []
    original = ctx.report.original
    campaign_id, meta = (verp.campaign_id, verp.meta) if verp else (None, None)
    obj = {
        "event_id": event_id(ctx.key, email, "send_result"),
        "email": email.strip().strip("<>"),
        "ts": _time_ms(ctx, recipient.event_time_ms) / 1000,
        **_evidence(recipient),
        "message_id": original.message_id,
        "campaign_id": campaign_id or original.campaign_id,
        "meta": meta or original.meta,
    }
    try:
        record = parse_send_result(obj, now_ms=ctx.now_ms)
    except InvalidEventError:
        ctx.notes.append("invalid_event")
        return []
    return [MailEvent("send_result", recipient.kind, record)]


def _evidence(recipient: RecipientReport) -> dict[str, Any]:
    """The reply fields, made acceptable to the send-result contract without inventing any:
    a malformed status is dropped, texts are cut at the contract's limits, and only a report
    with neither reply nor transport error gets the reply class its Status (or kind) implies,
    and one whose status is missing or generic gets the one classify's verdict implies."""
    enhanced = recipient.enhanced_code
    if enhanced is not None and _valid_enhanced(enhanced) is None:
        enhanced = None
    error = recipient.error if recipient.error in SMTP_ERRORS else None
    code = recipient.smtp_code if _valid_code(recipient.smtp_code) else None
    if code is None and error is None:
        implied = _CODE_BY_STATUS_CLASS.get(enhanced[0]) if enhanced else None
        code = implied or _CODE_BY_KIND[recipient.kind]
    message = _cut(recipient.smtp_message, MAX_TEXT_BYTES)
    # A bounce that says "user unknown" in words only: the status classify's verdict stands
    # for (the parser reads evidence, classify alone reads meaning into it).
    # The command stays out of the record (the schema has no field for it): a verdict that
    # rests on it is carried by the status it implies, so the consumer reads the same.
    command = recipient.smtp_command
    enhanced = implied_enhanced_code(code, enhanced, message, error, command=command) or enhanced
    return {
        "smtp_code": code,
        "enhanced_code": enhanced,
        "smtp_message": message,
        "error": error,
        "remote_mta": _cut(recipient.remote_mta, _MAX_REMOTE_MTA_BYTES),
    }


def _valid_enhanced(code: str) -> str | None:
    parts = code.split(".")
    if len(parts) == 3 and code[0] in "245" and all(p.isdigit() and len(p) <= 3 for p in parts):
        return code if len(parts[0]) == 1 else None
    return None


def _valid_code(code: object) -> bool:
    return type(code) is int and 200 <= code <= 599


def _cut(text: str | None, limit: int) -> str | None:
    if text is None or len(text) * 4 <= limit:
        return text
    return text.encode("utf-8", "surrogatepass")[:limit].decode("utf-8", "ignore")


def _time_ms(ctx: _Context, event_time_ms: int | None) -> int:
    for candidate in (event_time_ms, ctx.report.date_ms):
        if candidate is not None and _MIN_TIME_MS <= candidate < _MAX_TIME_MS:
            return candidate
    return ctx.now_ms


def _complaint(ctx: _Context, verp: Claims | None, options: MailOptions) -> list[MailEvent]:
    ctx.notes.append("complaint")
    if not options.complaint_unsubscribes:
        ctx.notes.append("complaint_unsubscribe_off")
        return []
    if verp is not None:
        return _unsubscribe(ctx, verp, "complaint", "complaint")
    original = ctx.report.original
    addresses = [r.email for r in ctx.report.recipients if r.email and r.email.strip()]
    if not addresses and original.to:
        addresses = [original.to]
    if not addresses:
        ctx.notes.append("no_recipient")  # redacted (RFC 6590) and no signed return path
    unique = dict.fromkeys(a.strip().strip("<>") for a in addresses)
    claims = (Claims(a, original.campaign_id, original.meta) for a in unique)
    return [e for c in claims for e in _unsubscribe(ctx, c, "complaint", "complaint")]


def _unsubscribe(
    ctx: _Context, claims: Claims, source: str, mail_kind: MailKind
) -> list[MailEvent]:
    first = ctx.report.recipients[0].event_time_ms if ctx.report.recipients else None
    obj = {
        "event_id": event_id(ctx.key, claims.email, "unsubscribe"),
        "email": claims.email,
        "ts": _time_ms(ctx, first) / 1000,
        "source": source,
        "campaign_id": claims.campaign_id,
        "meta": claims.meta,
    }
    try:
        record = parse_unsubscribe(obj, now_ms=ctx.now_ms)
    except InvalidEventError:
        ctx.notes.append("invalid_event")
        return []
    return [MailEvent("unsubscribe", mail_kind, record)]


def _note_of(kind: MailKind) -> Note:
    if kind == "delay":
        return "delay"
    if kind == "auto_reply":
        return "auto_reply"
    return "unknown"
