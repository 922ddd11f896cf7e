"""What a format module is: a name, how it recognises its messages, how it reads them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

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
