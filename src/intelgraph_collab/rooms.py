"""The registry of live rooms: load on first use, unload when idle.

A room stays in memory while anything holds it (a session, a REST request)
and for `idle_seconds` after the last release, then is unloaded: memory
stays flat however many graphs were ever opened. After a burst of unloads
the memory they held is given back (`memory_release.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from .fanout.base import FanOut
from .memory_release import MemoryRelease
from .metrics import Metrics
from .room import Room, RoomSettings
from .store.base import Store
from .sync.limits import Limits

log = logging.getLogger(__name__)


class Rooms:
    def __init__(
        self,
        store: Store,
        limits: Limits,
        settings: RoomSettings,
        metrics: Metrics,
        idle_seconds: float = 30.0,
        fanout: FanOut | None = None,
        memory: MemoryRelease | None = None,
    ) -> None:
        self.store = store
        self.limits = limits
        self.settings = settings
        self.metrics = metrics
        self.idle_seconds = idle_seconds
        self.fanout = fanout
        self._rooms: dict[str, Room] = {}
        self._loading: dict[str, asyncio.Future[Room]] = {}
        self._holders: dict[str, int] = {}
        self._unload_timers: dict[str, asyncio.TimerHandle] = {}
        self.memory = memory if memory is not None else MemoryRelease()
        """Told of every idle unload; frees what the unloaded rooms leave behind."""

    def __len__(self) -> int:
        return len(self._rooms)

    def loaded(self, graph_id: str) -> Room | None:
        return self._rooms.get(graph_id)

    async def acquire(self, graph_id: str) -> Room:
        """The live room of `graph_id`, loading it if needed; `release` it after."""
        self._holders[graph_id] = self._holders.get(graph_id, 0) + 1
        timer = self._unload_timers.pop(graph_id, None)
        if timer is not None:
            timer.cancel()
        try:
            room = self._rooms.get(graph_id)
            if room is not None and not room.failed:
                return room
            if room is not None:  # failed: replace it with a fresh load from the store
                await self._discard(graph_id)
            loading = self._loading.get(graph_id)
            if loading is None:
                loading = asyncio.get_running_loop().create_future()
                self._loading[graph_id] = loading
                try:
                    room = Room(
                        graph_id,
                        self.store,
                        self.limits,
                        self.settings,
                        self.metrics,
                        fanout=self.fanout,
                    )
                    await room.load()
                except BaseException as exc:
                    loading.set_exception(exc)
                    loading.exception()  # retrieved: other waiters re-raise it themselves
                    raise
                finally:
                    del self._loading[graph_id]
                self._rooms[graph_id] = room
                self.metrics.rooms.set(len(self._rooms))
                loading.set_result(room)
                return room
            return await asyncio.shield(loading)
        except BaseException:
            self.release(graph_id)
            raise

    def release(self, graph_id: str) -> None:
        count = self._holders.get(graph_id, 0) - 1
        if count > 0:
            self._holders[graph_id] = count
            return
        self._holders.pop(graph_id, None)
        if graph_id in self._rooms:
            self._arm_unload(graph_id)

    def _arm_unload(self, graph_id: str) -> None:
        loop = asyncio.get_running_loop()
        self._unload_timers[graph_id] = loop.call_later(
            self.idle_seconds, lambda: loop.create_task(self._unload_if_idle(graph_id))
        )

    @contextlib.asynccontextmanager
    async def holding(self, graph_id: str) -> AsyncIterator[Room]:
        room = await self.acquire(graph_id)
        try:
            yield room
        finally:
            self.release(graph_id)

    async def _unload_if_idle(self, graph_id: str) -> None:
        self._unload_timers.pop(graph_id, None)
        room = self._rooms.get(graph_id)
        if room is None or self._holders.get(graph_id):
            return
        if not room.idle:  # writes still committing: look again later
            self._arm_unload(graph_id)
            return
        await self._discard(graph_id)
        self.memory.unloaded()

    async def _discard(self, graph_id: str) -> None:
        room = self._rooms.pop(graph_id, None)
        self.metrics.rooms.set(len(self._rooms))
        if room is not None:
            await room.stop()

    async def close(self) -> None:
        """Stop every room after its queued writes are committed."""
        self.memory.close()
        for timer in self._unload_timers.values():
            timer.cancel()
        self._unload_timers.clear()
        for graph_id in list(self._rooms):
            await self._discard(graph_id)
