"""One admitted collaboration connection, from joining its room to leaving it.

Transport-independent: the transport calls `open` once the handshake is
done, hands every frame it reads to `receive_text` / `receive_binary`, and
calls `finish` once when the connection is gone. Everything in between
(the room, rate limit, token expiry, metrics, logs) is decided here, the
same for the served fast path and the ASGI route.
"""

from __future__ import annotations

import asyncio
import logging
import time

from ..inbound import handle_binary, handle_frame
from ..logs import log_event
from ..ratelimit import MessageRateLimiter
from ..room import Room
from ..service import Service
from ..session import CLOSE_TRY_AGAIN, CLOSE_UNAUTHENTICATED, Session
from ..store.base import StoreUnavailable
from .admission import Admitted

log = logging.getLogger(__name__)


class CollabConnection:
    def __init__(self, service: Service, admitted: Admitted, session: Session) -> None:
        self.service = service
        self.admitted = admitted
        self.session = session
        self.room: Room | None = None
        self._rate = MessageRateLimiter(service.config.security.rate)
        self._expiry: asyncio.TimerHandle | None = None
        self._finished = False

    @property
    def graph_id(self) -> str:
        return self.admitted.graph_id

    async def open(self) -> bool:
        """Join the graph's room (loading it if needed). False if it could not
        be loaded: the session is then closed 1013 and the caller stops."""
        try:
            room = await self.service.rooms.acquire(self.graph_id)
        except StoreUnavailable as exc:  # e.g. PostgreSQL unreachable: the client retries
            log_event(
                log, "graph_unavailable", logging.WARNING, graph=self.graph_id, error=str(exc)
            )
            self.session.close(CLOSE_TRY_AGAIN, "storage unavailable; reconnect")
            return False
        if self._finished:  # the connection went away while the room loaded
            self.service.rooms.release(self.graph_id)
            return False
        self.room = room
        self.service.connected(self.session)
        self._expiry = self._close_at_expiry()
        identity = self.session.identity
        log_event(
            log, "connect", graph=self.graph_id, client=identity.client_id, user=identity.user
        )
        room.join(self.session, self.admitted.since)
        return True

    def receive_text(self, text: str | bytes) -> None:
        if self.room is not None:
            config = self.service.config
            handle_frame(
                text, self.session, self.room, config.limits, self.service.metrics, self._rate
            )

    def receive_binary(self) -> None:
        if self.room is not None:
            handle_binary(self.session, self.service.metrics, self._rate)

    def finish(self) -> None:
        """The connection is gone: leave the room, give back every slot. Idempotent."""
        if self._finished:
            return
        self._finished = True
        if self._expiry is not None:
            self._expiry.cancel()
        self.session.detach()
        if self.room is not None:
            self.room.leave(self.session)
            self.service.disconnected(self.session)
            self.service.rooms.release(self.graph_id)
            log_event(
                log,
                "disconnect",
                graph=self.graph_id,
                client=self.session.client_id,
                code=self.session.close_code,
            )
        self.admitted.release(self.service)

    def _close_at_expiry(self) -> asyncio.TimerHandle | None:
        """Close the session with 4401 when its token expires. Also closes it now
        if its user was revoked while it was connecting (revocation closes only
        the sessions registered when it ran)."""
        claims = self.admitted.claims
        if claims is None:
            return None
        if self.service.auth.revocations.revoked(claims):
            self.session.close(CLOSE_UNAUTHENTICATED, "token revoked")
            return None
        delay = max(0.0, claims.expires_at - time.time())
        loop = asyncio.get_running_loop()
        return loop.call_later(delay, self.session.close, CLOSE_UNAUTHENTICATED, "token expired")
