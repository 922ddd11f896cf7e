"""What a format module is: a name, how it recognises its messages, how it reads them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from bouncewire.producers.mail.evidence import Found
from bouncewire.producers.mail.message import Mail
from bouncewire.producers.mail.report import MailKind
from bouncewire.producers.mail.scan import Region, cut, scan

# A reader gets the message, the addresses that are not recipients, and the kind the
# message states as a whole ("bounce" or "delay"); it returns one Found per recipient.
Reader = Callable[[Mail, frozenset[str], MailKind], list[Found]]


@dataclass(frozen=True, slots=True)
class Format:
    """One MTA or provider family's bounce format."""

    name: str
    detect: Callable[[Mail], bool]
    read: Reader


def between(begins: Sequence[str], ends: Sequence[str] = ()) -> Reader:
    """A reader for formats whose error text starts at one of `begins` (in order of
    preference) and ends at one of `ends` or the returned original: the scanner does the rest."""

    def read(mail: Mail, exclude: frozenset[str], kind: MailKind) -> list[Found]:
        text = cut(mail.body, begins, ends)
        found = scan(Region(text, exclude), kind) if text else []
        if found or not text:
            return found
        # An end marker may sit above the addresses ("a copy of the original message headers
        # is attached below"): read on to the end before giving up.
        start = mail.body.find(text)
        return scan(Region(mail.body[start:], exclude), kind)

    return read


def sent_by(mail: Mail, *phrases: str) -> bool:
    """Whether From: holds one of the lower-case `phrases` (a domain, a display name)."""
    return mail.header_has("from", *phrases)


def subject_has(mail: Mail, *phrases: str) -> bool:
    return mail.header_has("subject", *phrases)


def own_statuses(read: Reader, table: Sequence[tuple[str, str]]) -> Reader:
    """`read`, with the RFC 3463 status an MTA's own fixed texts stand for (lower-case phrase,
    status) given to recipients whose diagnosis has one and no Status field. These texts are
    the recipient's own server reporting its directory lookup (Exchange's "Unknown
    Recipient", Domino's "not listed in Domino Directory"): no remote reply, no SMTP stage,
    the same fact as a 5.1.1 at RCPT. Sisimai's format modules read them so, too."""

    def read_with_statuses(mail: Mail, exclude: frozenset[str], kind: MailKind) -> list[Found]:
        return [_with_own_status(item, table) for item in read(mail, exclude, kind)]

    return read_with_statuses


def _with_own_status(item: Found, table: Sequence[tuple[str, str]]) -> Found:
    if item.status is not None or not item.diagnosis:
        return item
    lower = item.diagnosis.lower()
    status = next((status for phrase, status in table if phrase in lower), None)
    return item if status is None else replace(item, status=status)
