"""GMX and web.de (1&1): Exim's layout with "SMTP error from remote server for RCPT TO
command, host: HOST reason: 550 5.1.1 ...", from mailer-daemon@gmx.net / web.de."""

from bouncewire.producers.mail.lhost.base import Format, between, sent_by
from bouncewire.producers.mail.lhost.exim import BEGINS, ENDS
from bouncewire.producers.mail.message import Mail


def _detect(mail: Mail) -> bool:
    return sent_by(mail, "gmx.", "web.de", "1und1", "1and1", "ionos") and mail.mentions(
        "delivery software", "following address"
    )


FORMAT = Format(name="gmx", detect=_detect, read=between(BEGINS, ENDS))
