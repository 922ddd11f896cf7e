"""Amazon SES: mostly RFC 3464 from MAILER-DAEMON@...amazonses.com (read by rfc3464); the
plain variant says "The following message to <ADDR> was undeliverable." and "The reason for the
problem: 5.1.0 - Unknown address error 550-'5.1.1 ...'".
"""

from bouncewire.producers.mail.lhost.base import Format, between, sent_by
from bouncewire.producers.mail.message import Mail


def _detect(mail: Mail) -> bool:
    if mail.mentions("the following message to <", "the reason for the problem"):
        return True
    return sent_by(mail, "amazonses.com") or bool(mail.header("x-ses-outgoing"))


FORMAT = Format(
    name="amazonses",
    detect=_detect,
    read=between(
        ("the following message to", "an error occurred while trying to deliver"),
        ("------ this is a copy of the message",),
    ),
)
