"""The service's HTML pages: small, no JavaScript, one form button. Pure: no I/O.

Pages show the address masked (``j***@example.com``): enough for the recipient to recognise
it, little for a cache or a shoulder. Every interpolated value is HTML-escaped.
"""

from __future__ import annotations

from html import escape
from typing import Final

CONFIRM_FIELD: Final = "confirm"

_STYLE: Final = (
    "body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;"
    "color:#222}button{font-size:1rem;padding:.6rem 1.2rem;cursor:pointer}"
    ".muted{color:#666}"
)

_LAYOUT: Final = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
<main>
<h1>{title}</h1>
{body}
</main>
</body>
</html>
"""


def _page(title: str, body: str) -> str:
    return _LAYOUT.format(title=escape(title), style=_STYLE, body=body)


def _campaign_line(campaign_id: str | None) -> str:
    if not campaign_id:
        return ""
    return f'<p class="muted">Campaign: {escape(campaign_id)}</p>\n'


def confirm_page(masked_address: str, campaign_id: str | None, action: str) -> str:
    """GET: asks first. Mail scanners prefetch links, so only the button's POST unsubscribes."""
    body = (
        f"<p>Stop sending email to <strong>{escape(masked_address)}</strong>?</p>\n"
        f"{_campaign_line(campaign_id)}"
        f'<form method="post" action="{escape(action)}">\n'
        f'<input type="hidden" name="{CONFIRM_FIELD}" value="1">\n'
        '<button type="submit" id="unsubscribe">Unsubscribe</button>\n'
        "</form>"
    )
    return _page("Unsubscribe", body)


def done_page(masked_address: str) -> str:
    body = (
        f'<p id="done"><strong>{escape(masked_address)}</strong> is unsubscribed.</p>\n'
        '<p class="muted">It can take up to two days for every list to catch up.</p>'
    )
    return _page("You are unsubscribed", body)


def invalid_page() -> str:
    body = (
        "<p>This unsubscribe link is not valid. It may have been cut or changed in transit: "
        "please use the link from the original message.</p>"
    )
    return _page("Link not valid", body)


def unavailable_page(retry_after_s: int) -> str:
    body = (
        "<p>We could not record your request just now; nothing was changed. "
        f"Please try again in {retry_after_s} seconds.</p>"
    )
    return _page("Please try again", body)
