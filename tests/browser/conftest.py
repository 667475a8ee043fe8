"""Fixtures of the end-to-end tests: the real server and Debian's Chromium.

One server and one browser serve the whole module (each test takes its own
graph id, so tests do not see each other's annotations). The browser is
the system's `/usr/bin/chromium` (or `COLLAB_CHROMIUM`), driven by
Playwright: no browser download. `COLLAB_E2E_URL` runs the tests against an
already running server instead of starting one.
"""

from __future__ import annotations

import os
import re
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright

from tests.support.server import start_server

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def chromium_path() -> str:
    path = os.environ.get("COLLAB_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail(f"no Chromium at {path}: run `make chromium` (Debian's chromium package)")
    return path


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("COLLAB_E2E_URL")
    if external:
        yield external.rstrip("/")
        return
    server = start_server(tmp_path_factory.mktemp("browser"))
    try:
        try:
            urllib.request.urlopen(f"{server.http_url}/", timeout=10).close()
        except urllib.error.HTTPError as refusal:
            pytest.fail(f"GET / answered {refusal.code}: the app must call web.install_demo(app)")
        yield server.http_url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture
def graph_id(request: pytest.FixtureRequest) -> str:
    """A graph of its own per test (and per run, so a reused server is fine)."""
    name = re.sub(r"[^A-Za-z0-9_.:-]", "-", request.node.name[:40])
    return f"e2e-{name}-{os.getpid()}-{id(request) % 100000}"


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
