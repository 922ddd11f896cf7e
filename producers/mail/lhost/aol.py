"""AOL's own old notice: "Your mail to the following recipients could not be delivered because
they are not accepting mail from SENDER:" and then the recipients as bare screen names, one an
indented line, which are addresses at aol.com. (AOL's later bounces are Postfix's or Yahoo's.)
"""

import re

from bouncewire.producers.mail.evidence import Found
from bouncewire.producers.mail.lhost.base import Format, sent_by
from bouncewire.producers.mail.message import Mail
from bouncewire.producers.mail.report import MailKind
from bouncewire.producers.mail.text import clean

_LIST = re.compile(
    r"(your mail to the following recipients could not be delivered[^\n]*(?:\n[^\n]+)*?:)"
    r"[ \t]*\n((?:[ \t]+[\w.+-]+(?:@[\w.-]+)?[ \t]*\n?)+)",
    re.IGNORECASE,
)


def _detect(mail: Mail) -> bool:
    return sent_by(mail, "aol.com") and mail.mentions("following recipients could not be")


def _read(mail: Mail, exclude: frozenset[str], kind: MailKind) -> list[Found]:
    found = _LIST.search(mail.body)
    if found is None:
        return []
    reason = clean(found.group(1))
    names = (line.strip() for line in found.group(2).splitlines())
    emails = [name if "@" in name else f"{name}@aol.com" for name in names if name]
    return [
        Found(email=email, diagnosis=reason, kind=kind)
        for email in emails
        if email.lower() not in exclude
    ]


FORMAT = Format(name="aol", detect=_detect, read=_read)
