"""The header names every source reads the campaign and CleverTap's meta from. Pure data.

One place, so what the gateway reads from CleverTap's mail, and what the mail parser finds in a
returned original, are the same headers.
"""

from __future__ import annotations

from typing import Final

META_HEADER: Final = "X-CleverTap_META"
# No header is standard for a campaign; CleverTap lets a campaign add custom headers, so this one.
CAMPAIGN_HEADER: Final = "X-Campaign-ID"
# Read in this order (names are case-insensitive); the first found counts.
CAMPAIGN_HEADERS: Final = (CAMPAIGN_HEADER, "X-CleverTap-Campaign-Id", "X-CleverTap-Campaign")
