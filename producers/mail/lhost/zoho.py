"""Zoho Mail: "This message was created automatically by mail delivery software." then
"ADDR Invalid Address, ERROR_CODE :550, ERROR_CODE :5.1.1 ..." from mailer-daemon@*.zoho.com."""

from bouncewire.producers.mail.lhost.base import Format, between, sent_by
from bouncewire.producers.mail.message import Mail


def _detect(mail: Mail) -> bool:
    return sent_by(mail, "zoho") or bool(mail.header("x-zohomail"))


FORMAT = Format(
    name="zoho",
    detect=_detect,
    read=between(("this message was created automatically by mail delivery software",)),
)
