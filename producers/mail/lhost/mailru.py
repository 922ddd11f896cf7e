"""Mail.ru and Yandex (Exim and Postfix derivatives with Russian text first): the English
part follows the Russian; the failed address, then "SMTP error from remote mail server ..."."""

from bouncewire.producers.mail.lhost.base import Format, between, sent_by
from bouncewire.producers.mail.lhost.exim import BEGINS, ENDS
from bouncewire.producers.mail.message import Mail


def _detect(mail: Mail) -> bool:
    return sent_by(mail, "mail.ru", "yandex.", "inbox.ru", "bk.ru", "list.ru") or mail.mentions(
        "это письмо создано автоматически", "не удалось доставить"
    )


FORMAT = Format(
    name="mailru",
    detect=_detect,
    read=between((*BEGINS, "не удалось доставить", "the mail system"), ENDS),
)
