"""Shared fixtures: the real server in a subprocess; the cyclic GC off."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import ServerProcess, start_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    process = start_server(tmp_path)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def no_gc() -> Iterator[None]:
    """The cyclic GC off for the test: what must be freed is then freed by
    reference counting alone (the server makes full collections rare)."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
