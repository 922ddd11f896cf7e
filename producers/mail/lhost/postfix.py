"""Postfix without a delivery-status part: "This is the mail system at host H." and, after a
line "The mail system", one "<addr>: host H[ip] said: 550 ..." per recipient. (Postfix's usual
bounce also carries an RFC 3464 part; that one is read by rfc3464.)
"""

import re

from bouncewire.producers.mail.evidence import Found
from bouncewire.producers.mail.lhost.base import Format
from bouncewire.producers.mail.message import Mail
from bouncewire.producers.mail.report import MailKind
from bouncewire.producers.mail.scan import Region, end_of_error, scan

_START = re.compile(r"^[ \t]*The (?:mail system|Postfix program)[ \t]*$", re.MULTILINE)
_MARKERS = ("this is the mail system at host", "this is the postfix program at host")


def _detect(mail: Mail) -> bool:
    return mail.mentions(*_MARKERS)


def _read(mail: Mail, exclude: frozenset[str], kind: MailKind) -> list[Found]:
    body = mail.body
    found = _START.search(body)
    start = found.end() if found else mail.lower_body.find(_MARKERS[0])
    start = max(start, 0)
    text = body[start : end_of_error(body, start, ("reporting-mta:", "final-recipient:"))]
    return scan(Region(text, exclude), kind)


FORMAT = Format(name="postfix", detect=_detect, read=_read)
