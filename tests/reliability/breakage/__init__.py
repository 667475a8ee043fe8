"""Servers with one reliability mechanism switched off (see sitecustomize.py)."""

from __future__ import annotations

from pathlib import Path

DIRECTORY = Path(__file__).resolve().parent


def broken_env(mechanism: str) -> dict[str, str]:
    """Environment for `start_server` that breaks `mechanism` in the server."""
    return {"PYTHONPATH": str(DIRECTORY), "COLLAB_BREAK": mechanism}
