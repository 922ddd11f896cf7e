"""Ipswitch IMail Server (X-Mailer: <SMTP32 vN>): subject "Undeliverable Mail", then per
recipient its own verdict ("Invalid final delivery userid: ADDR", "Unknown user: ADDR") or the
remote's reply ("RCPT TO generated following response: 553 5.3.0 ..."); "Original message
follows." ends the error text.
"""

from bouncewire.producers.mail.lhost.base import Format, between, own_statuses
from bouncewire.producers.mail.message import Mail

# IMail's own verdicts for a local part it has no mailbox for, opening the recipient's line.
_OWN_STATUSES = (("invalid final delivery userid", "5.1.1"), ("unknown user:", "5.1.1"))


def _detect(mail: Mail) -> bool:
    return mail.header("x-mailer").lower().startswith("<smtp32 v")


FORMAT = Format(
    name="imail",
    detect=_detect,
    read=own_statuses(between((), ("original message follows",)), _OWN_STATUSES),
)
