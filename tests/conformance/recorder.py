"""A fan-out subscriber for tests: records every call and lets a test wait for one."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from intelgraph_collab.fanout.base import PresenceEntry
from intelgraph_collab.sync.records import OpRecord


class Recorder:
    def __init__(self) -> None:
        self.records: list[OpRecord] = []
        self.resyncs = 0
        self.presence: list[PresenceEntry] = []
        self.leaves: list[str] = []
        self._changed = asyncio.Event()

    def on_records(self, records: list[OpRecord]) -> None:
        self.records.extend(records)
        self._changed.set()

    def on_resync(self) -> None:
        self.resyncs += 1
        self._changed.set()

    def on_presence(self, entry: PresenceEntry) -> None:
        self.presence.append(entry)
        self._changed.set()

    def on_presence_leave(self, client_id: str) -> None:
        self.leaves.append(client_id)
        self._changed.set()

    async def until(self, condition: Callable[[], Any], within: float = 5.0) -> None:
        """Wait until `condition()` holds, woken by each call (never a bare sleep)."""

        async def wait() -> None:
            while not condition():
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(wait(), within)
