"""OpenSMTPD: "This is the MAILER-DAEMON, please DO NOT REPLY to this e-mail." then "An error
has occurred while attempting to deliver a message for the following list of recipients:" and
"ADDR: 550 5.1.1 ..."; the original follows "Below is a copy of the original message:".
"""

from bouncewire.producers.mail.lhost.base import Format, between
from bouncewire.producers.mail.message import Mail


def _detect(mail: Mail) -> bool:
    return mail.mentions(
        "this is the mailer-daemon, please do not reply",
        "an error has occurred while attempting to deliver a message",
        "has not been delivered after the following",
    )


FORMAT = Format(
    name="opensmtpd",
    detect=_detect,
    read=between(
        ("for the following list of recipients", "an error has occurred", "delivery to"),
        ("below is a copy of the original message",),
    ),
)
