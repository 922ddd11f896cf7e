"""RFC 8058 one-click unsubscribe: signed links, and the web service that publishes the clicks.

Public API::

    Keyring, Claims, sign, verify, TokenError, KeyConfigError   -- tokens (pure)
    public_url_problem, unsubscribe_url, header_lines           -- links (pure)
    ServiceConfig, UnsubscribeService, create_app               -- the Starlette app

The app is imported from its modules (`producers.unsubscribe.app`, `.server`; the
acknowledged publisher from `producers.acks`) so that using tokens never imports Starlette or Kafka.
"""

from bouncewire.producers.unsubscribe.links import header_lines, public_url_problem, unsubscribe_url
from bouncewire.producers.unsubscribe.tokens import (
    Claims,
    KeyConfigError,
    Keyring,
    TokenError,
    daily_event_id,
    sign,
    verify,
)

__all__ = [
    "Claims",
    "KeyConfigError",
    "Keyring",
    "TokenError",
    "daily_event_id",
    "header_lines",
    "public_url_problem",
    "sign",
    "unsubscribe_url",
    "verify",
]
