"""What the server does with a frame a client sent: decode, then route each message.

Transport-independent: the WebSocket endpoint hands frames here and moves
bytes; the decisions (refuse, answer, hand to the room) are made here.
"""

from __future__ import annotations

import logging

from .logs import log_event
from .metrics import Metrics
from .room import Room, encode
from .session import Session
from .sync.engine import Writer
from .sync.errors import ProtocolError
from .sync.limits import Limits
from .sync.messages import Ping, Presence, decode_frame

log = logging.getLogger(__name__)

PONG = encode({"type": "pong"})


def handle_frame(frame: str | bytes, session: Session, room: Room, limits: Limits, metrics: Metrics) -> None:
    """Route every message of one frame, in order. Refusals go back as `error`
    messages; nothing a client sends can raise out of here."""
    writer = Writer(session.client_id, session.identity.user)
    for message in decode_frame(frame, limits):
        if isinstance(message, ProtocolError):
            refuse(session, message, metrics)
        elif isinstance(message, Ping):
            session.enqueue(PONG)
        elif isinstance(message, Presence):
            try:
                room.set_presence(session, message.state)
            except ProtocolError as refusal:
                refuse(session, refusal, metrics)
        else:
            room.submit(message, writer, session)


def refuse(session: Session, error: ProtocolError, metrics: Metrics) -> None:
    metrics.refused(error.code)
    log_event(log, "refused", client=session.client_id, code=error.code)
    session.enqueue(encode(error.to_message()))
