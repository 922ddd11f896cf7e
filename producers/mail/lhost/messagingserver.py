"""Oracle Communications / Sun Java System Messaging Server: "This report relates to a message
you sent with the following header fields:", then per recipient "Recipient address: ADDR",
"Reason: ...", "Diagnostic code: smtp;550 5.1.1 ..." and "Remote system: dns;HOST".
"""

from bouncewire.producers.mail.lhost.base import Format, between
from bouncewire.producers.mail.message import Mail


def _detect(mail: Mail) -> bool:
    return mail.mentions("this report relates to a message you sent")


FORMAT = Format(
    name="messagingserver",
    detect=_detect,
    read=between(
        (
            "your message cannot be delivered to the following recipients",
            "your message has been delayed",
            "recipient address:",
        ),
    ),
)
