"""Microsoft Exchange 2003 and older: "Your message did not reach some or all of the intended
recipients." then "The following recipient(s) could not be reached:", each address "on DATE"
with the reason and "<host #5.1.1>".
"""

from bouncewire.producers.mail.lhost.base import Format, between
from bouncewire.producers.mail.message import Mail


def _detect(mail: Mail) -> bool:
    return mail.mentions(
        "did not reach some or all of the intended recipients",
        "could not be reached:",
        "did not reach the following recipient",
    )


FORMAT = Format(
    name="exchange2003",
    detect=_detect,
    read=between(
        (
            "the following recipient(s) could not be reached",
            "did not reach the following recipient",
            "did not reach some or all",
        )
    ),
)
