"""m-FILTER (Japanese gateway): "-------送信に失敗した宛先-------" (the failed addresses), then
"-------エラーメッセージ-------" (the remote's reply)."""

from bouncewire.producers.mail.lhost.base import Format, between
from bouncewire.producers.mail.message import Mail


def _detect(mail: Mail) -> bool:
    return mail.mentions("m-filter", "送信に失敗した宛先")


FORMAT = Format(
    name="mfilter",
    detect=_detect,
    read=between(("送信に失敗した宛先",), ("-------送信されたメール-------",)),
)
