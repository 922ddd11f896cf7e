"""IBM/HCL Domino: "Your message ... was not delivered to: ADDR because: User ADDR not listed
in Domino Directory"; subject "DELIVERY FAILURE: ..." or "DELIVERY_FAILURE: ...".
"""

from bouncewire.producers.mail.lhost.base import Format, between, subject_has
from bouncewire.producers.mail.message import Mail


def _detect(mail: Mail) -> bool:
    if subject_has(mail, "delivery failure:", "delivery_failure:", "delivery failure -"):
        return True
    return mail.mentions("was not delivered to:") and mail.mentions("because:")


FORMAT = Format(
    name="domino",
    detect=_detect,
    read=between(("was not delivered to:", "your message"), ("what should you do?",)),
)
