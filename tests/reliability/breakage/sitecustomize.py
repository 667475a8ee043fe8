"""Switch one reliability mechanism off in a server process, to prove that
the test guarding it fails without it (RELIABILITY.md, "Breaking it").

Put this directory on PYTHONPATH and name the mechanism in COLLAB_BREAK:

- `unload`: idle rooms are never unloaded;
- `slow_reader`: a session's queue grows without bound, no 1013;
- `dedupe`: resent writes are never recognised (no cache, no store lookup).

Python imports `sitecustomize` at start-up, before the server's code runs.
"""

from __future__ import annotations

import os

_BREAK = os.environ.get("COLLAB_BREAK", "")


def _apply() -> None:
    if _BREAK == "unload":
        from intelgraph_collab.rooms import Rooms

        async def never_unload(self: Rooms, graph_id: str) -> None:
            return None

        Rooms._unload_if_idle = never_unload  # type: ignore[method-assign]
    elif _BREAK == "slow_reader":
        from intelgraph_collab.session import Session

        def unbounded(self: Session, text: str) -> None:
            if not self.closed:
                self._queue.append(text)
                self._wake()

        Session.enqueue = unbounded  # type: ignore[method-assign]
    elif _BREAK == "dedupe":
        from intelgraph_collab.room import Room

        class Forgets(dict):  # type: ignore[type-arg]
            def __setitem__(self, key: object, value: object) -> None:
                return None

        async def no_lookup(self: Room, pending: object) -> dict[tuple[str, str], int]:
            return Forgets()

        Room._lookup_duplicates = no_lookup  # type: ignore[method-assign,assignment]
        Room._remember_op = lambda self, key, seq: None  # type: ignore[method-assign]
    elif _BREAK:
        raise SystemExit(f"COLLAB_BREAK={_BREAK!r}: no such mechanism")


_apply()
