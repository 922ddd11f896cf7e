"""IBM/HCL Domino: "Your message ... was not delivered to: ADDR because: User ADDR not listed
in Domino Directory"; subject "DELIVERY FAILURE: ..." or "DELIVERY_FAILURE: ...".
"""

from bouncewire.producers.mail.lhost.base import Format, between, own_statuses, subject_has
from bouncewire.producers.mail.message import Mail


def _detect(mail: Mail) -> bool:
    if subject_has(mail, "delivery failure:", "delivery_failure:", "delivery failure -"):
        return True
    return mail.mentions("was not delivered to:") and mail.mentions("because:")


# Domino's own verdict: its directory has no such person.
_OWN_STATUSES = (
    ("not listed in domino directory", "5.1.1"),
    ("not listed in public name & address book", "5.1.1"),
)

FORMAT = Format(
    name="domino",
    detect=_detect,
    read=own_statuses(
        between(("was not delivered to:", "your message"), ("what should you do?",)),
        _OWN_STATUSES,
    ),
)
