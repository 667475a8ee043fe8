"""What the server does with a frame a client sent: decode, then route each message.

Transport-independent: the WebSocket endpoint hands frames here and moves
bytes; the decisions (refuse, answer, hand to the room) are made here.
"""

from __future__ import annotations

import logging

from .auth import writer_for
from .logs import log_event
from .metrics import Metrics
from .ratelimit import MessageRateLimiter, Verdict
from .room import Room, encode
from .session import CLOSE_POLICY, Session
from .sync.errors import ProtocolError
from .sync.limits import Limits
from .sync.messages import ClientMessage, Ping, Presence, decode_frame

log = logging.getLogger(__name__)

PONG = encode({"type": "pong"})


def handle_frame(
    frame: str | bytes,
    session: Session,
    room: Room,
    limits: Limits,
    metrics: Metrics,
    rate: MessageRateLimiter | None = None,
) -> None:
    """Route every message of one frame, in order. Refusals go back as `error`
    messages; nothing a client sends can raise out of here. With `rate`, each
    message (each element of a batch) takes a token first."""
    if session.closed:
        return
    # The frame's first message pays before the frame is decoded: a flood
    # of big frames is refused without the cost of parsing them.
    if rate is not None and not _within_rate(rate.check(), None, session, metrics):
        return
    writer = writer_for(session.identity)
    for index, message in enumerate(decode_frame(frame, limits)):
        if index and rate is not None and not _within_rate(rate.check(), message, session, metrics):
            if session.closed:
                return
            continue
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


def handle_binary(
    session: Session, metrics: Metrics, rate: MessageRateLimiter | None = None
) -> None:
    """Binary frames are not part of the protocol: refused, and rate-limited
    like any other frame."""
    if session.closed:
        return
    if rate is not None and not _within_rate(rate.check(), None, session, metrics):
        return
    refuse(session, ProtocolError("bad_message", "binary frames are not accepted"), metrics)


def _within_rate(
    verdict: Verdict,
    message: ClientMessage | ProtocolError | None,
    session: Session,
    metrics: Metrics,
) -> bool:
    if verdict is Verdict.ALLOW:
        return True
    if verdict is Verdict.CLOSE:
        log_event(log, "rate_limit_close", logging.WARNING, client=session.client_id, code=1008)
        session.close(CLOSE_POLICY, "rate limit exceeded")
        return False
    op_id = getattr(message, "op_id", None)
    refuse(session, ProtocolError("rate_limited", "too many messages; slow down", op_id), metrics)
    return False


def refuse(session: Session, error: ProtocolError, metrics: Metrics) -> None:
    metrics.refused(error.code)
    log_event(log, "refused", client=session.client_id, code=error.code)
    session.enqueue(encode(error.to_message()))
