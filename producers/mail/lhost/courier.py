"""Courier MTA: "This is a delivery status notification from HOST, running the Courier mail
server" (or "... has been delayed"), each "<ADDR>:" with the dialogue ">>> RCPT TO:<ADDR>" and
"<<< 550 ..."; usually with an RFC 3464 part too.
"""

from bouncewire.producers.mail.lhost.base import Format, between, sent_by
from bouncewire.producers.mail.message import Mail


def _detect(mail: Mail) -> bool:
    return mail.mentions("running the courier mail server") or sent_by(mail, "courier mail server")


FORMAT = Format(
    name="courier",
    detect=_detect,
    read=between(
        ("the following address(es)", "has been delayed", "running the courier mail server"),
        ("reporting-mta:",),
    ),
)
