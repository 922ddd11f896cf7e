"""Sendmail (and V5 sendmail) without a usable status part: "----- The following addresses had
permanent fatal errors -----", each "<addr>" with "(reason: 550 ...)", then "----- Transcript of
session follows -----" with the dialogue (">>> RCPT To:<addr>", "<<< 550 5.1.1 ...").
"""

from bouncewire.producers.mail.lhost.base import Format, between, sent_by, subject_has
from bouncewire.producers.mail.message import Mail


def _detect(mail: Mail) -> bool:
    if mail.mentions("----- the following addresses had", "----- transcript of session follows"):
        return True
    return subject_has(mail, "returned mail:") and sent_by(mail, "mailer-daemon")


FORMAT = Format(
    name="sendmail",
    detect=_detect,
    read=between(
        (
            "----- the following addresses had",
            "----- transcript of session follows",
            "the original message was received at",
        ),
        ("----- original message follows", "----- unsent message follows", "reporting-mta:"),
    ),
)
