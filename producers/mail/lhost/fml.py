"""fml, the Japanese mailing-list manager: its admin address reports what it refused to
distribute (X-MLServer: fml, Message-Id "<...FML...@host>", From LIST-admin@): "Duplicated
Message-ID in <LIST@host>." (a mail loop), "Security Alert", "you are not a member". The
address it names, the list, is the one the message did not reach.
"""

from bouncewire.producers.mail.evidence import Found
from bouncewire.producers.mail.lhost.base import Format
from bouncewire.producers.mail.message import Mail
from bouncewire.producers.mail.report import MailKind
from bouncewire.producers.mail.scan import Region, cut, scan


def _detect(mail: Mail) -> bool:
    return bool(mail.header("x-mlserver")) and "fml" in mail.header("message-id").lower()


def _read(mail: Mail, exclude: frozenset[str], kind: MailKind) -> list[Found]:
    text = cut(mail.body, (), ("original mail as follows:",))
    return scan(Region(text, exclude), kind)


FORMAT = Format(name="fml", detect=_detect, read=_read)
