"""The fast path's send side (`websocket/native.py`): sessions written once per
loop turn, batching, backpressure, and one broken connection not stopping
the others. The protocol is a fake here; tests/integration runs the real one."""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast

from intelgraph_collab.session import CLOSE_TRY_AGAIN, Identity
from intelgraph_collab.websocket.native import Outbox, TransportSession


class FakeTransport:
    def __init__(self) -> None:
        self.aborted = False

    def abort(self) -> None:
        self.aborted = True


class FakeProtocol:
    """What TransportSession uses of CollabWebSocketProtocol."""

    def __init__(self, *, broken: bool = False) -> None:
        self.can_write = True
        self.broken = broken
        self.writes: list[list[bytes]] = []
        self.closes: list[tuple[int, str]] = []
        self.transport = FakeTransport()

    def send_frames(self, frames: list[bytes]) -> bool:
        if self.broken:
            raise ConnectionResetError("gone")
        self.writes.append(frames)
        return True

    def send_close(self, code: int, reason: str) -> None:
        self.closes.append((code, reason))

    def messages(self) -> list[Any]:
        """Every message written, frames unwrapped (server frames: 2-byte header here)."""
        out: list[Any] = []
        for write in self.writes:
            for frame in write:
                document = json.loads(frame[2:])
                out.extend(document if isinstance(document, list) else [document])
        return out


def session(
    protocol: FakeProtocol, outbox: Outbox, *, batch: bool = True, max_queue: int = 100
) -> TransportSession:
    return TransportSession(
        Identity("c", None), cast(Any, protocol), outbox, batch=batch, max_queue=max_queue
    )


async def next_turn() -> None:
    await asyncio.sleep(0)
    await asyncio.sleep(0)


async def test_what_is_queued_in_one_turn_leaves_in_one_write() -> None:
    outbox = Outbox()
    batching, single = FakeProtocol(), FakeProtocol()
    a, b = session(batching, outbox), session(single, outbox, batch=False)
    for each in (a, b):
        each.start('{"type":"initial_state"}')
        for i in range(3):
            each.enqueue(json.dumps({"n": i}))
    await next_turn()
    assert [len(w) for w in batching.writes] == [1], "one frame: a JSON array"
    assert [len(w) for w in single.writes] == [4], "one write of four frames"
    assert (
        batching.messages()
        == single.messages()
        == [{"type": "initial_state"}] + [{"n": i} for i in range(3)]
    )


async def test_nothing_is_written_before_start_and_the_first_message_leads() -> None:
    protocol = FakeProtocol()
    s = session(protocol, Outbox())
    s.enqueue('{"n":1}')
    await next_turn()
    assert protocol.writes == []
    s.start('{"type":"catch_up"}')
    await next_turn()
    assert protocol.messages() == [{"type": "catch_up"}, {"n": 1}]


async def test_a_full_transport_holds_the_queue_until_writable_again() -> None:
    protocol = FakeProtocol()
    s = session(protocol, Outbox())
    s.start('{"n":0}')
    protocol.can_write = False
    s.enqueue('{"n":1}')
    await next_turn()
    assert protocol.writes == [] and s.queue_depth == 2
    protocol.can_write = True
    s.writable_again()
    await next_turn()
    assert protocol.messages() == [{"n": 0}, {"n": 1}]


async def test_a_reader_too_slow_for_its_queue_is_closed_1013() -> None:
    protocol = FakeProtocol()
    s = session(protocol, Outbox(), max_queue=3)
    s.start('{"n":0}')
    protocol.can_write = False
    for i in range(5):
        s.enqueue(json.dumps({"n": i}))
    assert s.closed and protocol.closes[0][0] == CLOSE_TRY_AGAIN
    protocol.can_write = True
    s.writable_again()
    await next_turn()
    assert protocol.writes == [], "nothing queued is sent after the close"


async def test_one_broken_connection_does_not_stop_the_others() -> None:
    outbox = Outbox()
    broken, fine = FakeProtocol(broken=True), FakeProtocol()
    first, second = session(broken, outbox), session(fine, outbox)
    for each in (first, second):
        each.start('{"n":0}')
    await next_turn()
    assert first.closed and broken.transport.aborted
    assert fine.messages() == [{"n": 0}]
    second.enqueue('{"n":1}')
    first.enqueue('{"n":1}')  # ignored: that session is done
    await next_turn()
    assert fine.messages() == [{"n": 0}, {"n": 1}]


async def test_flush_waits_for_the_queue_to_be_written() -> None:
    protocol = FakeProtocol()
    s = session(protocol, Outbox())
    s.start('{"n":0}')
    protocol.can_write = False
    s.enqueue('{"n":1}')
    waiting = asyncio.ensure_future(s.flush(within=5))
    await next_turn()
    assert not waiting.done()
    protocol.can_write = True
    s.writable_again()
    await asyncio.wait_for(waiting, 5)
    assert protocol.messages() == [{"n": 0}, {"n": 1}]
