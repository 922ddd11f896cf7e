"""The confirmation page in a real browser: headless Chromium renders the button, a mouse click
on it posts the form, and exactly one `link` unsubscribe lands on the topic."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.producers.unsubscribe.chromium_cdp import PipeBrowser, chromium_binary, dump_dom
from tests.producers.unsubscribe.unsubscribe_harness import LiveService

pytestmark = pytest.mark.integration

CHROMIUM = chromium_binary()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Debian's chromium is not installed (run deploy/scripts/install-chromium.sh as root)",
)


class FormScan(HTMLParser):
    """The forms, inputs and buttons of a page, as Chromium serialised it."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, str | None]] = []
        self.inputs: list[dict[str, str | None]] = []
        self.buttons: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {"form": self.forms, "input": self.inputs, "button": self.buttons}.get(tag)
        if found is not None:
            found.append(dict(attrs))


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[PipeBrowser]:
    assert CHROMIUM is not None
    instance = PipeBrowser(CHROMIUM, tmp_path / "profile")
    try:
        yield instance
    finally:
        instance.close()


@needs_chromium
def test_chromium_renders_the_confirmation_button(
    live_service: LiveService, tmp_path: Path
) -> None:
    assert CHROMIUM is not None
    email = f"reader.{uuid.uuid4().hex[:8]}@example.com"
    start = live_service.end_offsets()
    scan = FormScan()
    scan.feed(dump_dom(CHROMIUM, live_service.link(email, "weekly"), tmp_path / "profile"))
    assert [form.get("method") for form in scan.forms] == ["post"]
    assert [b.get("type") for b in scan.buttons] == ["submit"]
    assert {"type": "hidden", "name": "confirm", "value": "1"} in scan.inputs
    assert live_service.published_since(start) == []  # the browser's GET published nothing


@needs_chromium
def test_clicking_the_button_in_chromium_unsubscribes(
    live_service: LiveService, browser: PipeBrowser, tmp_path: Path
) -> None:
    email = f"clicker.{uuid.uuid4().hex[:8]}@example.com"
    start = live_service.end_offsets()
    browser.call("Page.enable")
    browser.call("Network.enable")
    browser.navigate(live_service.link(email, "weekly"))
    assert browser.evaluate("document.querySelector('#unsubscribe').textContent") == "Unsubscribe"
    assert live_service.published_since(start) == []
    _keep_screenshot(browser, tmp_path / "confirm.png")

    browser.click("#unsubscribe")
    browser.wait_event("Page.loadEventFired")
    assert browser.evaluate("document.getElementById('done') !== null") is True
    _keep_screenshot(browser, tmp_path / "done.png")

    posts = [e["params"] for e in browser.events
             if e.get("method") == "Network.requestWillBeSent"
             and e["params"]["request"]["method"] == "POST"]
    assert len(posts) == 1 and "redirectResponse" not in posts[0]
    records = [live_service.decode(m) for m in live_service.published_since(start)]
    assert [(r["email"], r["source"], r["campaign_id"]) for r in records] == [
        (email, "link", "weekly")]


def _keep_screenshot(browser: PipeBrowser, path: Path) -> None:
    """Screenshots land in the test's tmp dir, or in $UNSUBSCRIBE_SCREENSHOTS to look at."""
    target_dir = os.environ.get("UNSUBSCRIBE_SCREENSHOTS")
    if target_dir:
        path = Path(target_dir) / path.name
    browser.screenshot(path)
    assert path.read_bytes().startswith(b"\x89PNG")
