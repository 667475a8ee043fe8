"""A room's sessions, grouped by what they may see.

Sessions of one clearance form one audience: a broadcast is viewed and
encoded once per audience, not once per session, and each audience keeps
its own `prev` chain (the seq of the last write announced to it), so
writes hidden from it are never announced, not even as a gap.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec

from .session import Session
from .sync.records import OpRecord
from .sync.views import Clearance, view_of, visible_to

_encoder = msgspec.json.Encoder()


def encode(message: dict[str, Any]) -> str:
    return _encoder.encode(message).decode()


@dataclass
class Audience:
    clearance: Clearance
    last_seen: int
    """The seq of the last write announced to this audience (their `prev`)."""
    sessions: set[Session] = field(default_factory=set)


class Audiences:
    def __init__(self) -> None:
        self._by_clearance: dict[Clearance, Audience] = {}

    def __bool__(self) -> bool:
        return bool(self._by_clearance)

    def __iter__(self) -> Iterator[Audience]:
        return iter(self._by_clearance.values())

    @property
    def sessions(self) -> list[Session]:
        return [s for audience in self._by_clearance.values() for s in audience.sessions]

    def add(self, session: Session, head: int) -> None:
        """Add `session`, whose state is at `head` (a new audience starts its
        `prev` chain there: every member has applied at least that much)."""
        clearance = session.identity.clearance
        audience = self._by_clearance.get(clearance)
        if audience is None:
            audience = self._by_clearance[clearance] = Audience(clearance, head)
        audience.sessions.add(session)

    def remove(self, session: Session) -> None:
        clearance = session.identity.clearance
        audience = self._by_clearance.get(clearance)
        if audience is not None:
            audience.sessions.discard(session)
            if not audience.sessions:
                del self._by_clearance[clearance]

    def clear(self) -> None:
        self._by_clearance.clear()

    def broadcast(self, record: OpRecord, writer: Session | None) -> None:
        """Queue `record` for every session that may see it, except its writer
        (whose ack stands in its place), encoded once per audience."""
        for audience in self._by_clearance.values():
            if not visible_to(record, audience.clearance):
                continue
            message = view_of(record, audience.clearance, audience.last_seen)
            audience.last_seen = record.seq
            if message is None:
                continue
            text = encode(message)
            for session in audience.sessions:
                if session is not writer:
                    session.enqueue(text)

    def send_to_others(self, client_id: str, text: str) -> None:
        """Queue `text` for every session but those of `client_id`."""
        for audience in self._by_clearance.values():
            for session in audience.sessions:
                if session.client_id != client_id:
                    session.enqueue(text)

    def send_per_audience(
        self, client_id: str, message_for: Callable[[Clearance], dict[str, Any]]
    ) -> None:
        """Queue, for every session but those of `client_id`, the message its
        audience may see (built and encoded once per audience)."""
        for audience in self._by_clearance.values():
            text = encode(message_for(audience.clearance))
            for session in audience.sessions:
                if session.client_id != client_id:
                    session.enqueue(text)
