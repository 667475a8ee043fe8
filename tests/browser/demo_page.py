"""A page object for the demo page: what an analyst does, and what the page shows.

Actions go through the real UI (mouse on the Cytoscape canvas, typing in
the panel); state is read from the DOM, or from `window.collab` (the live
store) where the DOM cannot say it exactly (a canvas, a whole replica).
"""

from __future__ import annotations

import json
from typing import Any

from playwright.sync_api import BrowserContext, Page, expect

TIMEOUT_MS = 10_000


class DemoPage:
    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    @classmethod
    def open(cls, context: BrowserContext, base_url: str, graph_id: str, user: str) -> DemoPage:
        demo = cls(context.new_page())
        demo.page.goto(f"{base_url}/graphs/{graph_id}?user={user}")
        demo.wait_live()
        return demo

    # -- state ----------------------------------------------------------------

    def wait_live(self) -> None:
        self.page.wait_for_function(
            "window.collab && collab.client.status === 'live'", timeout=TIMEOUT_MS
        )

    def wait_for(self, expression: str, arg: Any = None) -> None:
        """Wait until a JS expression over `collab` (and `arg`) is truthy."""
        self.page.wait_for_function(
            f"(arg) => window.collab && ({expression})", arg=arg, timeout=TIMEOUT_MS
        )

    def annotation(self, annotation_id: str) -> dict[str, Any] | None:
        value: dict[str, Any] | None = self.page.evaluate(
            "(id) => collab.store.get(id) ?? null", annotation_id
        )
        return value

    def replica(self) -> dict[str, Any]:
        """Every annotation this page shows, by id."""
        value: dict[str, Any] = self.page.evaluate("() => collab.client.getAll()")
        return value

    def settled(self) -> None:
        """Live, with nothing of its own unacknowledged."""
        self.wait_for("collab.client.status === 'live' && collab.client.pendingCount === 0")

    @property
    def status(self) -> str:
        return self.page.locator("[data-test=status]").inner_text()

    # -- actions -----------------------------------------------------------------

    def click_target(self, element_id: str) -> None:
        """Click an entity or edge where Cytoscape drew it."""
        point = self.page.evaluate(
            """(id) => {
                const element = collab.graph.cy.getElementById(id);
                const box = document.getElementById('graph').getBoundingClientRect();
                const p = element.isNode()
                    ? element.renderedPosition() : element.renderedMidpoint();
                return {x: box.left + p.x, y: box.top + p.y};
            }""",
            element_id,
        )
        self.page.mouse.click(point["x"], point["y"])
        self.wait_for("collab.selected?.id === arg", element_id)

    def add_tag(self, tag: str) -> None:
        field = self.page.locator("[data-test=tag-input]")
        field.fill(tag)
        field.press("Enter")
        expect(self.page.locator(f"[data-test=tags] [data-tag={json.dumps(tag)}]")).to_be_visible()

    def set_confidence(self, value: str) -> None:
        self.page.locator("[data-test=confidence]").select_option(value)

    def highlight(self, color: str) -> None:
        self.page.locator(f"[data-test=swatches] button[data-color='{color}']").click()

    @property
    def note(self) -> Any:
        return self.page.locator("[data-test=note]")
