"""Public URLs, unsubscribe links and the RFC 8058 header lines."""

from __future__ import annotations

import pytest

from bouncewire.producers.unsubscribe import header_lines, public_url_problem, unsubscribe_url


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://mail.example.com", True),
        ("https://mail.example.com/unsubscribe/", True),
        ("https://mail.example.com:8443", True),
        ("http://127.0.0.1:8080", True),
        ("http://localhost:8080", True),
        ("http://[::1]:8080", True),
        ("http://mail.example.com", False),
        ("ftp://mail.example.com", False),
        ("mail.example.com", False),
        ("https://", False),
        ("https://mail.example.com/?q=1", False),
        ("https://mail.example.com/#x", False),
        ("https://user:pw@mail.example.com", False),
        ("https://mail.example.com:99999", False),
    ],
)
def test_public_url_rules(url: str, ok: bool) -> None:
    assert (public_url_problem(url) is None) is ok


@pytest.mark.parametrize("base", ["https://m.example.com/x", "https://m.example.com/x/"])
def test_link_joins_base_and_token(base: str) -> None:
    assert unsubscribe_url(base, "1.k.p.t") == "https://m.example.com/x/u/1.k.p.t"


def test_header_lines() -> None:
    assert header_lines("https://m.example.com/u/T") == (
        "List-Unsubscribe: <https://m.example.com/u/T>",
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
    )
