"""The served fast path: `/ws/collaborate/{graph_id}` straight on the socket.

`intelgraph-collab serve` hands uvicorn this protocol class for WebSocket
upgrades. It is uvicorn's own websockets-sansio protocol (its handshake,
keepalive pings, close handshake, frame limits), except that a collaboration
connection never enters the ASGI stack: no per-connection task, no
`asyncio.Queue` per message, no routing or middleware per frame, and no
writer task per session. Frames read go straight to `CollabConnection`;
what the room queues is framed and written to the transport once per loop
turn for every session that has something (`Outbox`), so one commit's
broadcasts leave in one write per client. Other WebSocket paths fall
through to the ASGI app unchanged.

Backpressure: while the transport's buffer is over its high-water mark
(`pause_writing`), messages stay in the session's bounded queue, and a
reader too slow for it is closed 1013, as on any transport.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import parse_qsl, unquote

from uvicorn.config import Config
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.exceptions import InvalidState
from websockets.frames import CloseCode, Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State

from ..service import Service
from ..session import Identity, Session
from .admission import Admitted, admit
from .collab_connection import CollabConnection

log = logging.getLogger(__name__)

PATH_PREFIX = "/ws/collaborate/"


class Outbox:
    """Sessions with something queued, written out together at the next loop turn.

    A broadcast is one text for a whole audience: it is framed once per turn
    (`frame`), and the same bytes are written to every session."""

    def __init__(self) -> None:
        self._due: list[TransportSession] = []
        self._framed: dict[str, bytes] = {}

    def schedule(self, session: TransportSession) -> None:
        if not self._due:
            asyncio.get_running_loop().call_soon(self._write_all)
        self._due.append(session)

    def frame(self, text: str) -> bytes:
        """`text` as a WebSocket text frame (server to client: unmasked)."""
        framed = self._framed.get(text)
        if framed is None:
            framed = Frame(Opcode.TEXT, text.encode()).serialize(mask=False, extensions=[])
            self._framed[text] = framed
        return framed

    def _write_all(self) -> None:
        due, self._due = self._due, []
        try:
            for session in due:
                session.write_queued()
        finally:
            self._framed.clear()


class TransportSession(Session):
    """A session written by its connection's protocol, without a task."""

    def __init__(
        self,
        identity: Identity,
        protocol: CollabWebSocketProtocol,
        outbox: Outbox,
        *,
        batch: bool,
        max_queue: int,
    ) -> None:
        super().__init__(identity, batch=batch, max_queue=max_queue)
        self._protocol = protocol
        self._outbox = outbox
        self._started = False
        self._scheduled = False
        self._drained: asyncio.Future[None] | None = None
        """Made only while `flush` waits (most sessions never need one)."""

    def _wake(self) -> None:
        if self._started and not self._scheduled and self._protocol.can_write:
            self._scheduled = True
            self._outbox.schedule(self)

    def start(self, first: str) -> None:
        if self.closed:
            return
        self._queue.appendleft(first)
        self._started = True
        self._wake()

    def write_queued(self) -> None:
        """Frame everything queued and hand it to the transport in one write."""
        self._scheduled = False
        if self.closed or not self._protocol.can_write or not self._queue:
            return
        frames: list[bytes] = []
        while self._queue:
            frames.append(self._outbox.frame(self._next_frame()))
        try:
            sent = self._protocol.send_frames(frames)
        except Exception as exc:  # the transport refused the bytes: this connection is done
            log.warning("send to %s failed: %r", self.client_id, exc)
            self._protocol.transport.abort()
            sent = False
        if not sent:
            self.detach()
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def writable_again(self) -> None:
        """The transport's buffer drained below its low-water mark."""
        if self._queue:
            self._wake()

    def _send_close(self, code: int, reason: str) -> None:
        self._protocol.send_close(code, reason)

    def detach(self) -> None:
        super().detach()
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    async def flush(self, within: float) -> None:
        if not self._queue or self.closed:
            return
        self._drained = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(asyncio.shield(self._drained), within)
        except TimeoutError:
            pass


class CollabWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol with the collaboration path served natively.
    Made per service by `protocol_class`."""

    service: Service
    outbox: Outbox

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.native = False
        """This connection is a collaboration one, served here (not by the ASGI app)."""
        self.collab: CollabConnection | None = None
        """Until the connection is lost (then dropped: it refers back to us)."""
        self.can_write = True

    # -- the handshake ------------------------------------------------------

    def handle_connect(self, event: Request) -> None:
        raw_path, _, query = event.path.partition("?")
        path = unquote(raw_path)
        if not path.startswith(PATH_PREFIX):
            super().handle_connect(event)  # any other WebSocket route: the ASGI app
            return
        response = self.conn.accept(event)
        self.handshake_initiated = True
        if response.status_code != 101:  # not a valid WebSocket handshake
            self._respond_and_close(response)
            return
        params = dict(parse_qsl(query, keep_blank_values=True))

        def header(name: str) -> str | None:
            values = event.headers.get_all(name)
            return values[0] if values else None

        decision = admit(self.service, path[len(PATH_PREFIX) :], header, params.get)
        if not isinstance(decision, Admitted) and decision.before_accept:
            self._respond_and_close(self.conn.reject(403, ""))
            return
        del response.headers["Date"]  # uvicorn's default headers carry it (as in the parent)
        response.headers.update(
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in self.default_headers
        )
        self.handshake_complete = True
        self.conn.send_response(response)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.start_keepalive()
        if not isinstance(decision, Admitted):
            self.send_close(decision.code, decision.reason)
            return
        session = TransportSession(
            decision.identity,
            self,
            self.outbox,
            batch=decision.batch,
            max_queue=self.service.config.send_queue_max,
        )
        self.native = True
        self.collab = CollabConnection(self.service, decision, session)
        # Nothing is read until the session has joined its room (loading it
        # may take a store read): what the client sends meanwhile waits in
        # the socket.
        self.transport.pause_reading()
        task = self.loop.create_task(self._join())
        task.add_done_callback(self.on_task_complete)
        self.tasks.add(task)

    async def _join(self) -> None:
        collab = self.collab
        assert collab is not None
        if await collab.open() and not self.disconnected and not self.close_sent:
            self.transport.resume_reading()

    def _respond_and_close(self, response: Any) -> None:
        self.handshake_complete = True
        self.close_sent = True
        self.conn.send_response(response)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.transport.close()

    # -- frames in ----------------------------------------------------------

    def send_receive_event_to_app(self) -> None:
        if not self.native:
            super().send_receive_event_to_app()
            return
        data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)
        self.frames = []
        if self.close_sent or self.collab is None:
            return  # closing: what still arrives is read and dropped
        if self.curr_msg_data_type == "text":
            try:
                text = data.decode()
            except UnicodeDecodeError:
                self.conn.fail(CloseCode.INVALID_DATA, "invalid UTF-8")
                self.handle_parser_exception()
                return
            self.collab.receive_text(text)
        else:
            self.collab.receive_binary()

    # -- frames out (TransportSession calls these) --------------------------

    def send_frames(self, frames: list[bytes]) -> bool:
        """Write framed messages in one go. False if the connection is no longer open.

        Written beside the sans-I/O protocol object rather than through it
        (its `send_text` would frame each copy again): safe because whatever
        it queues itself (pongs, closes) is written out at once."""
        if self.close_sent or self.conn.state is not State.OPEN or self.transport.is_closing():
            return False
        self.transport.write(frames[0] if len(frames) == 1 else b"".join(frames))
        return True

    def send_close(self, code: int, reason: str) -> None:
        """Start the closing handshake; the transport closes when the client
        answers, or after `close_timeout`."""
        if self.close_sent or self.transport.is_closing():
            return
        try:
            self.conn.send_close(code, reason)
        except InvalidState:
            self.transport.close()
            return
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        self.close_timer = self.loop.call_later(self.close_timeout, self.transport.close)

    def pause_writing(self) -> None:
        super().pause_writing()
        self.can_write = False

    def resume_writing(self) -> None:
        super().resume_writing()
        self.can_write = True
        if self.collab is not None:
            session = self.collab.session
            assert isinstance(session, TransportSession)
            session.writable_again()

    # -- the end ------------------------------------------------------------

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        # Dropped, not just finished: the connection's session refers back to
        # this protocol, a cycle that would wait for the cyclic GC (rare here:
        # cli.py tunes it down) and hold the whole connection until then.
        collab, self.collab = self.collab, None
        if collab is not None:
            collab.finish()
        # websockets' sans-I/O protocol holds its parser, a generator whose
        # frame holds the protocol: another cycle. Nothing is parsed after
        # the connection is lost, so the generator is closed.
        self.conn.parser.close()


def protocol_class(service: Service) -> type[CollabWebSocketProtocol]:
    """The uvicorn `ws` protocol class serving `service`'s collaboration path."""
    return type(
        "CollabWebSocketProtocol",
        (CollabWebSocketProtocol,),
        {"service": service, "outbox": Outbox()},
    )
