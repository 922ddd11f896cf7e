"""Lotus Notes (older than Domino's SMTP bounces): "------- Failure Reasons --------", the
reason on one line and the address on the next, then "------- Returned Message --------".
The reason comes before the address, so each recipient's diagnosis is the line above it.
"""

from bouncewire.producers.mail.evidence import Found
from bouncewire.producers.mail.lhost.base import Format, own_statuses, subject_has
from bouncewire.producers.mail.message import Mail
from bouncewire.producers.mail.report import MailKind
from bouncewire.producers.mail.scan import candidates, cut

_BEGIN = "------- failure reasons"


def _detect(mail: Mail) -> bool:
    return mail.mentions(_BEGIN) or (
        subject_has(mail, "undeliverable message") and mail.mentions("not listed in")
    )


def _read(mail: Mail, exclude: frozenset[str], kind: MailKind) -> list[Found]:
    text = cut(mail.body, (_BEGIN,), ("------- returned message",))
    found: list[Found] = []
    for address, positions in candidates(text, exclude):
        before = text[: positions[0]].rstrip().splitlines()
        reason = next((line for line in reversed(before) if line.strip()), "")
        found.append(Found(email=address, diagnosis=reason.strip("- ") or None, kind=kind))
    return found


# Notes' own verdict: its directory has no such person.
_OWN_STATUSES = (("not listed in public name & address book", "5.1.1"),)

FORMAT = Format(name="notes", detect=_detect, read=own_statuses(_read, _OWN_STATUSES))
