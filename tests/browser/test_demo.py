"""End to end in headless Chromium: the demo page, two analysts, the real server.

Each test opens the demo on its own graph in two browser contexts (two
"machines": separate storage, and `set_offline` cuts one of them only).
"""

from __future__ import annotations

import base64
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, WebSocketRoute, expect

from .demo_page import DemoPage

VIEWPORT = {"width": 1200, "height": 760}
DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "two-pages.png"


@pytest.fixture
def contexts(browser: Browser) -> Iterator[tuple[BrowserContext, BrowserContext]]:
    first = browser.new_context(viewport=VIEWPORT)
    second = browser.new_context(viewport=VIEWPORT)
    try:
        yield first, second
    finally:
        first.close()
        second.close()


def two_analysts(
    contexts: tuple[BrowserContext, BrowserContext], base_url: str, graph_id: str
) -> tuple[DemoPage, DemoPage]:
    return (
        DemoPage.open(contexts[0], base_url, graph_id, "alice"),
        DemoPage.open(contexts[1], base_url, graph_id, "bob"),
    )


def converged(*pages: DemoPage) -> dict[str, object]:
    """Wait until every page is live with nothing pending at the same seq; return the replica."""
    for page in pages:
        page.settled()
    seqs = [page.page.evaluate("() => collab.client.lastSeq") for page in pages]
    target = max(seqs)
    for page in pages:
        page.wait_for("collab.client.lastSeq >= arg", target)
    replicas = [page.replica() for page in pages]
    assert all(replica == replicas[0] for replica in replicas), "the pages disagree"
    return replicas[0]


def side_by_side(browser: Browser, pages: list[Page], path: Path) -> None:
    """One image of several pages next to each other, composed by the browser itself."""
    shots = [base64.b64encode(page.screenshot()).decode() for page in pages]
    width = VIEWPORT["width"]
    size = {"width": len(pages) * (width + 8), "height": VIEWPORT["height"]}
    context = browser.new_context(viewport=size)
    try:
        canvas = context.new_page()
        images = "".join(f'<img src="data:image/png;base64,{s}" width="{width}">' for s in shots)
        style = "margin:0;display:flex;gap:8px;background:#111"
        canvas.set_content(f'<body style="{style}">{images}</body>')
        canvas.wait_for_function("[...document.images].every((img) => img.complete)")
        canvas.screenshot(path=str(path))
    finally:
        context.close()


def test_an_edit_in_one_page_appears_in_the_other_with_its_author(
    browser: Browser,
    contexts: tuple[BrowserContext, BrowserContext],
    base_url: str,
    graph_id: str,
    artifacts: Path,
) -> None:
    alice, bob = two_analysts(contexts, base_url, graph_id)
    alice.click_target("o-harbor")
    bob.click_target("o-harbor")
    expect(alice.page.locator("[data-test=people]")).to_contain_text("bob → Harbor Lights Holdings")
    expect(alice.page.locator("[data-test=selected-by]")).to_contain_text("bob")

    bob.page.evaluate(
        """() => collab.store.on('change', (c) => {
            if (c.origin !== 'remote' || window.firstRemoteAt) return;
            window.firstRemoteAt = performance.timeOrigin + performance.now();
        })"""
    )
    sent_at = alice.page.evaluate("() => performance.timeOrigin + performance.now()")
    alice.add_tag("shell-company")
    expect(bob.page.locator("[data-test=tags] [data-tag=shell-company]")).to_be_visible()
    # Reported, not asserted (timing belongs to the benchmark, not to tests).
    delay_ms = bob.page.evaluate("() => window.firstRemoteAt") - sent_at
    print(f"\nbrowser to browser: {delay_ms:.0f} ms from Alice's Enter to Bob's view")

    activity = bob.page.locator("[data-test=activity]")
    expect(activity).to_contain_text("alice tagged Harbor Lights Holdings #shell-company")
    expect(bob.page.locator("[data-test=meta]")).to_contain_text("Tags: last change by alice")

    alice.highlight("#e5484d")
    alice.set_confidence("HIGH")
    expect(activity).to_contain_text("alice highlighted Harbor Lights Holdings")
    expect(bob.page.locator("[data-test=confidence]")).to_have_value("HIGH")
    replica = converged(alice, bob)
    assert replica["highlight:ENTITY:o-harbor"]["color"] == "#e5484d"  # type: ignore[index]
    assert replica["tags:ENTITY:o-harbor"]["updated_by"] == "alice"  # type: ignore[index]
    expect(bob.page.locator("[data-test=status]")).to_have_text(re.compile(r"^Live"))
    expect(bob.page.locator("[data-test=latency]")).to_contain_text("RTT")

    shot = artifacts / "two-pages.png"
    side_by_side(browser, [alice.page, bob.page], shot)
    if os.environ.get("COLLAB_UPDATE_SCREENSHOTS") == "1":  # refresh the README's picture
        DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, DOCS_SCREENSHOT)
    assert alice.errors == [] and bob.errors == []


def test_a_page_that_goes_offline_edits_and_comes_back_and_both_converge(
    contexts: tuple[BrowserContext, BrowserContext],
    base_url: str,
    graph_id: str,
) -> None:
    alice, bob = two_analysts(contexts, base_url, graph_id)
    alice.click_target("a-cy4471")
    bob.click_target("a-cy4471")

    contexts[0].set_offline(True)
    alice.wait_for("collab.client.status === 'offline'")
    alice.add_tag("offline-a")
    alice.highlight("#30a46c")
    alice.note.click()
    alice.note.press_sequentially("written offline")
    expect(alice.page.locator("[data-test=status]")).to_contain_text("unsent")

    bob.add_tag("online-b")
    bob.set_confidence("MEDIUM")
    bob.settled()
    assert "online-b" not in (alice.annotation("tags:ENTITY:a-cy4471") or {}).get("tags", [])
    assert bob.annotation("note:ENTITY:a-cy4471") is None, "Alice's offline edits did leak out"

    contexts[0].set_offline(False)
    replica = converged(alice, bob)
    tags = replica["tags:ENTITY:a-cy4471"]
    assert tags["tags"] == ["offline-a", "online-b"]  # type: ignore[index]
    assert tags["confidence"] == "MEDIUM"  # type: ignore[index]
    assert replica["highlight:ENTITY:a-cy4471"]["color"] == "#30a46c"  # type: ignore[index]
    assert replica["note:ENTITY:a-cy4471"]["content"] == "written offline"  # type: ignore[index]
    expect(bob.note).to_have_value("written offline")
    expect(alice.page.locator("[data-test=status]")).to_have_text("Live")
    assert alice.errors == [] and bob.errors == []


def test_a_reload_with_queued_offline_edits_keeps_them(
    contexts: tuple[BrowserContext, BrowserContext],
    base_url: str,
    graph_id: str,
) -> None:
    # Reloading needs HTTP, so the page is offline (set_offline) to make its
    # edits, then only its collaboration socket stays cut while it reloads.
    # Playwright routes the WebSockets of pages opened after the route.
    cut = {"on": False}

    def socket_route(route: WebSocketRoute) -> None:
        if cut["on"]:
            route.close()
        else:
            route.connect_to_server()

    contexts[0].route_web_socket(re.compile(r".*/ws/collaborate/.*"), socket_route)
    alice, bob = two_analysts(contexts, base_url, graph_id)
    alice.click_target("p-marsh")
    contexts[0].set_offline(True)
    alice.wait_for("collab.client.status === 'offline'")
    alice.add_tag("kept-across-reload")
    alice.note.click()
    alice.note.press_sequentially("draft")
    alice.wait_for("collab.client.pendingCount > 0")

    cut["on"] = True
    contexts[0].set_offline(False)
    alice.page.reload()
    alice.page.wait_for_function("window.collab !== undefined")
    alice.wait_for("collab.client.pendingCount > 0")
    restored = alice.annotation("tags:ENTITY:p-marsh")
    assert restored is not None and restored["tags"] == ["kept-across-reload"]
    alice.click_target("p-marsh")
    expect(alice.page.locator("[data-test=tags] [data-tag=kept-across-reload]")).to_be_visible()
    expect(alice.note).to_have_value("draft")
    expect(alice.page.locator("[data-test=status]")).to_contain_text("unsent")
    assert bob.annotation("tags:ENTITY:p-marsh") is None, "nothing was sent before the reload"

    cut["on"] = False
    alice.page.evaluate("() => window.dispatchEvent(new Event('online'))")
    replica = converged(alice, bob)
    assert replica["tags:ENTITY:p-marsh"]["tags"] == ["kept-across-reload"]  # type: ignore[index]
    assert replica["note:ENTITY:p-marsh"]["content"] == "draft"  # type: ignore[index]
    assert alice.errors == [] and bob.errors == []


def test_two_pages_typing_into_one_note_converge_with_everything_both_typed(
    contexts: tuple[BrowserContext, BrowserContext],
    base_url: str,
    graph_id: str,
) -> None:
    alice, bob = two_analysts(contexts, base_url, graph_id)
    alice.click_target("o-crescent")
    bob.click_target("o-crescent")
    alice.note.click()
    alice.note.press_sequentially("|")
    expect(bob.note).to_have_value("|")
    bob.note.click()
    bob.note.press("Home")
    alice.note.press("End")

    typed_by_alice, typed_by_bob = "alpha beta", "12345 6789"
    for mine, theirs in zip(typed_by_alice, typed_by_bob, strict=True):
        alice.page.keyboard.type(mine)
        bob.page.keyboard.type(theirs)

    expected = f"{typed_by_bob}|{typed_by_alice}"
    expect(alice.note).to_have_value(expected)
    expect(bob.note).to_have_value(expected)
    replica = converged(alice, bob)
    assert replica["note:ENTITY:o-crescent"]["content"] == expected  # type: ignore[index]
    assert alice.errors == [] and bob.errors == []
