"""SendGrid: "This is an automatically generated message from SendGrid." then the address,
"Reason: 550 ..." or delivery-status fields in the text (read by the rfc3464 text pass)."""

from bouncewire.producers.mail.lhost.base import Format, between, sent_by
from bouncewire.producers.mail.message import Mail


def _detect(mail: Mail) -> bool:
    return mail.mentions("message from sendgrid") or sent_by(mail, "sendgrid.net")


FORMAT = Format(
    name="sendgrid",
    detect=_detect,
    read=between(
        ("if you require assistance", "this is an automatically generated message from sendgrid")
    ),
)
