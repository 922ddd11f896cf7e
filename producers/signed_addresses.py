"""Signed mail addresses: VERP return paths and mailto unsubscribe addresses. Pure: no I/O.

An address names its recipient (and campaign and meta) in a signed local part::

    bounce+v1.<kid>.<payload>.<tag>@<domain>          return path (VERP), purpose "bounce"
    unsubscribe+v1.<kid>.<payload>.<tag>@<domain>     List-Unsubscribe mailto, purpose "unsubscribe"

- keys and rotation are the unsubscribe tokens' own `Keyring` (the first key signs, all verify);
- ``payload`` is lower-case unpadded base32 of compact JSON ``[email, campaign_id, meta]``;
  ``tag`` is 15 bytes of HMAC-SHA256 over ``"bouncewire-address.<purpose>."`` followed by
  ``"v1.<kid>.<payload>"``, also base32. Mail systems may fold a local part to lower case
  (bounce generators do), so the address uses one case only and key ids match ignoring case;
- the purpose is signed, so a return path (in every message's headers) is not an unsubscribe.

Local parts grow past RFC 5321's 64 octets with long addresses or metas; MTAs accept them in
practice (SRS addresses are longer), see docs/mail.md. Every failure is a TokenError with a short
reason; neither the address nor any key appears in a message or repr.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from typing import Final, Literal

from bouncewire.producers.unsubscribe.tokens import (
    Claims,
    Keyring,
    TokenError,
    claims_from_json,
    claims_json,
)
from bouncewire.schemas.addresses import address_problem

Purpose = Literal["bounce", "unsubscribe"]
VERSION: Final = "v1"
_TAG_BYTES: Final = 15
_TAG_CHARS: Final = 24  # 15 bytes in base32
_DOMAIN: Final = b"bouncewire-address."
# local part: <purpose>+v1.<kid>.<payload>.<tag>
_LOCAL: Final = re.compile(
    r"(?P<purpose>[a-z]+)\+v1\.(?P<kid>[a-z0-9_-]{1,16})\.(?P<payload>[a-z2-7]+)\.(?P<tag>[a-z2-7]+)"
)
MAX_LOCAL_PART_CHARS: Final = 900


def signed_address(keyring: Keyring, claims: Claims, domain: str, purpose: Purpose) -> str:
    """``<purpose>+<token>@<domain>`` naming `claims`, signed with the keyring's first key."""
    problem = address_problem(claims.email)
    if problem is not None:
        raise TokenError(f"invalid_address:{problem}")
    payload = _b32encode(claims_json(claims))
    kid = keyring.signing_kid
    signed_text = f"{VERSION}.{kid.lower()}.{payload}"
    key = keyring.key(kid)
    assert key is not None  # the signing kid is always in the ring
    tag = _b32encode(key.mac(_purpose_domain(purpose), signed_text)[:_TAG_BYTES])
    local = f"{purpose}+{signed_text}.{tag}"
    if len(local) > MAX_LOCAL_PART_CHARS:
        raise TokenError("too_long")
    return f"{local}@{domain.lower()}"


def verify_address(keyring: Keyring, address: object, purpose: Purpose) -> Claims:
    """The claims of a genuine address signed for `purpose`; TokenError for anything else."""
    if not isinstance(address, str):
        raise TokenError("malformed")
    local = address.strip().strip("<>").rpartition("@")[0].lower()
    match = _LOCAL.fullmatch(local) if len(local) <= MAX_LOCAL_PART_CHARS else None
    if match is None or len(match["tag"]) != _TAG_CHARS:
        raise TokenError("malformed")
    if match["purpose"] != purpose:
        raise TokenError("wrong_purpose")
    key = keyring.key_ignoring_case(match["kid"])
    if key is None:
        raise TokenError("unknown_key")
    signed_text = f"{VERSION}.{match['kid']}.{match['payload']}"
    expected = _b32encode(key.mac(_purpose_domain(purpose), signed_text)[:_TAG_BYTES])
    if not hmac.compare_digest(expected, match["tag"]):
        raise TokenError("bad_signature")
    try:
        return claims_from_json(_b32decode(match["payload"]))
    except binascii.Error:
        raise TokenError("bad_payload") from None


def is_signed_local_part(address: str, purpose: Purpose) -> bool:
    """Cheap shape check (no key): does `address` look like one of ours for `purpose`?"""
    local = address.strip().strip("<>").rpartition("@")[0].lower()
    return local.startswith(purpose + "+" + VERSION + ".")


def _purpose_domain(purpose: Purpose) -> bytes:
    return _DOMAIN + purpose.encode("ascii") + b"."


def _b32encode(data: bytes) -> str:
    return base64.b32encode(data).rstrip(b"=").decode("ascii").lower()


def _b32decode(text: str) -> bytes:
    return base64.b32decode(text.upper() + "=" * (-len(text) % 8))
