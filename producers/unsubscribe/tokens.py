"""Signed unsubscribe tokens: HMAC-SHA256 with key ids for rotation. Pure: no I/O.

A token is four dot-separated fields, all from the URL-safe base64 alphabet::

    1.<kid>.<payload>.<tag>

- ``1`` is the format version;
- ``kid`` names the key that signed it (``[A-Za-z0-9_-]{1,16}``);
- ``payload`` is unpadded URL-safe base64 of compact JSON ``[email, campaign_id, meta]``
  (trailing nulls dropped);
- ``tag`` is unpadded URL-safe base64 of HMAC-SHA256(key, ``"bouncewire-unsubscribe." +
  "1.<kid>.<payload>"``): the version and key id are signed too, so neither can be swapped.

The payload is signed, not encrypted: whoever holds the link can read the address in it (it is
the recipient's own mail that carries it). See docs/unsubscribe.md for the trade-off.

Verification compares the tag's text in constant time and only then decodes the payload, so a
forged token never reaches the JSON parser. Every failure is a TokenError with a short reason
code; neither the token nor any key appears in a message or repr.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from bouncewire.schemas.addresses import address_problem

VERSION: Final = "1"
# Short enough for any mail client and web server (URLs over ~2 KB get cut or refused).
MAX_TOKEN_CHARS: Final = 1800
MIN_SECRET_BYTES: Final = 16
_DOMAIN: Final = b"bouncewire-unsubscribe."
_KID: Final = re.compile(r"[A-Za-z0-9_-]{1,16}")
_TOKEN: Final = re.compile(r"[A-Za-z0-9_.-]+")
_TAG_CHARS: Final = 43  # 32 bytes in unpadded base64


class TokenError(ValueError):
    """A token (or key configuration) is unusable; `reason` is a short snake_case code."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class KeyConfigError(ValueError):
    """The signing-key configuration is wrong. Messages name entries by position, not value."""


@dataclass(frozen=True, slots=True)
class Claims:
    """What a token says: who unsubscribes, from which campaign. The address stays out of repr."""

    email: str = field(repr=False)
    campaign_id: str | None = None
    meta: str | None = field(default=None, repr=False)


class _Key:
    """One HMAC key; shows its id, never its bytes."""

    __slots__ = ("kid", "_secret")

    def __init__(self, kid: str, secret: bytes) -> None:
        self.kid = kid
        self._secret = secret

    def tag(self, signed_text: str) -> str:
        return _b64encode(self.mac(_DOMAIN, signed_text))

    def mac(self, domain: bytes, signed_text: str) -> bytes:
        """HMAC-SHA256 of `signed_text` under a purpose prefix, so a token signed for one use
        (an unsubscribe link, a return path) never verifies as another."""
        return hmac.new(self._secret, domain + signed_text.encode("ascii"), hashlib.sha256).digest()

    def __repr__(self) -> str:
        return f"_Key(kid={self.kid!r}, secret='**********')"


class Keyring:
    """Signing keys: the first signs, every one verifies (so old links outlive a rotation)."""

    __slots__ = ("_keys",)

    def __init__(self, keys: Iterable[tuple[str, bytes]]) -> None:
        self._keys: dict[str, _Key] = {}
        for position, (kid, secret) in enumerate(keys, start=1):
            _check_key(position, kid, secret, self._keys)
            self._keys[kid] = _Key(kid, secret)
        if not self._keys:
            raise KeyConfigError("no signing key configured")

    @classmethod
    def parse(cls, text: str) -> Keyring:
        """``kid1:secret1,kid2:secret2``; surrounding whitespace and newlines are ignored."""
        entries = [entry.strip() for entry in text.replace("\n", ",").split(",")]
        pairs: list[tuple[str, bytes]] = []
        for position, entry in enumerate((e for e in entries if e), start=1):
            kid, colon, secret = entry.partition(":")
            if not colon:
                raise KeyConfigError(f"key entry {position} is not of the form kid:secret")
            pairs.append((kid.strip(), secret.strip().encode("utf-8")))
        return cls(pairs)

    @property
    def signing_kid(self) -> str:
        return next(iter(self._keys))

    @property
    def kids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def key(self, kid: str) -> _Key | None:
        return self._keys.get(kid)

    def key_ignoring_case(self, kid: str) -> _Key | None:
        """The key whose id equals `kid` but for case, if exactly one does (for mail addresses,
        whose local parts some systems fold to lower case)."""
        matches = [key for key_id, key in self._keys.items() if key_id.lower() == kid.lower()]
        return matches[0] if len(matches) == 1 else None

    def __repr__(self) -> str:
        return f"Keyring(kids={list(self._keys)!r})"


def _check_key(position: int, kid: str, secret: bytes, seen: dict[str, _Key]) -> None:
    if not _KID.fullmatch(kid):
        raise KeyConfigError(f"key entry {position}: the key id must match [A-Za-z0-9_-]{{1,16}}")
    if kid in seen:
        raise KeyConfigError(f"key entry {position}: key id {kid!r} appears twice")
    if len(secret) < MIN_SECRET_BYTES:
        raise KeyConfigError(
            f"key entry {position} ({kid!r}): the secret needs at least {MIN_SECRET_BYTES} bytes"
        )


def sign(keyring: Keyring, claims: Claims) -> str:
    """A token for `claims`, signed with the keyring's first key."""
    problem = address_problem(claims.email)
    if problem is not None:
        raise TokenError(f"invalid_address:{problem}")
    key = keyring.key(keyring.signing_kid)
    assert key is not None  # the signing kid is always in the ring
    signed_text = f"{VERSION}.{key.kid}.{_b64encode(claims_json(claims))}"
    token = f"{signed_text}.{key.tag(signed_text)}"
    if len(token) > MAX_TOKEN_CHARS:
        raise TokenError("too_long")
    return token


def verify(keyring: Keyring, token: object) -> Claims:
    """The claims of a genuine token; TokenError for anything else. Never raises otherwise."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
        raise TokenError("too_long" if isinstance(token, str) else "malformed")
    if not _TOKEN.fullmatch(token):
        raise TokenError("malformed")
    parts = token.split(".")
    if len(parts) != 4 or len(parts[3]) != _TAG_CHARS:
        raise TokenError("malformed")
    version, kid, payload, tag = parts
    if version != VERSION:
        raise TokenError("unknown_version")
    key = keyring.key(kid)
    if key is None:
        raise TokenError("unknown_key")
    if not hmac.compare_digest(key.tag(f"{version}.{kid}.{payload}"), tag):
        raise TokenError("bad_signature")
    return _claims(payload)


def claims_json(claims: Claims) -> bytes:
    """The signed payload: compact JSON ``[email, campaign_id, meta]``, trailing nulls dropped."""
    fields = [claims.email, claims.campaign_id, claims.meta]
    while fields[-1] is None:
        fields.pop()
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _claims(payload: str) -> Claims:
    try:
        return claims_from_json(_b64decode(payload))
    except binascii.Error:
        raise TokenError("bad_payload") from None


def claims_from_json(data: bytes) -> Claims:
    """Decode a payload whose signature already checked out; still defensive about its shape."""
    try:
        fields = json.loads(data.decode("utf-8"))
    except ValueError:
        raise TokenError("bad_payload") from None
    if not isinstance(fields, list) or not 1 <= len(fields) <= 3:
        raise TokenError("bad_payload")
    email, campaign_id, meta = [*fields, None, None][:3]
    if not isinstance(email, str) or not all(
        value is None or isinstance(value, str) for value in (campaign_id, meta)
    ):
        raise TokenError("bad_payload")
    return Claims(email, campaign_id, meta)


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_EVENT_ID_NAMESPACE: Final = uuid.UUID("5f0b8a52-8a35-4c1e-9d0e-6b8f3c1d2a47")
_DAY_MS: Final = 86_400_000


def daily_event_id(claims: Claims, now_ms: int) -> str:
    """One event id per (address, campaign, meta, UTC day): repeated clicks on a link, or a
    one-click POST plus the page's button, carry the same id, so consumers can drop repeats."""
    identity = json.dumps([claims.email, claims.campaign_id, claims.meta, now_ms // _DAY_MS])
    return str(uuid.uuid5(_EVENT_ID_NAMESPACE, identity))
