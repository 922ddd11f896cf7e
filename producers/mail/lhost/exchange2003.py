"""Microsoft Exchange 2003 and older: "Your message did not reach some or all of the intended
recipients." then "The following recipient(s) could not be reached:", each address "on DATE"
with the reason and "<host #5.1.1>".
"""

from bouncewire.producers.mail.lhost.base import Format, between, own_statuses
from bouncewire.producers.mail.message import Mail


def _detect(mail: Mail) -> bool:
    return mail.mentions(
        "did not reach some or all of the intended recipients",
        "could not be reached:",
        "did not reach the following recipient",
    )


# Exchange's own verdicts: its directory has no such recipient (MSEXCH:IMS status 000C05A6).
_OWN_STATUSES = (
    ("unknown recipient", "5.1.1"),
    ("the recipient name is not recognized", "5.1.1"),
    ("(000c05a6)", "5.1.1"),
)

FORMAT = Format(
    name="exchange2003",
    detect=_detect,
    read=own_statuses(
        between(
            (
                "the following recipient(s) could not be reached",
                "did not reach the following recipient",
                "did not reach some or all",
            )
        ),
        _OWN_STATUSES,
    ),
)
