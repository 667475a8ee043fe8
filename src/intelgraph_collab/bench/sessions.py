"""One simulated collaborator per protocol: connect, write, observe deliveries.

Every write sets one annotation (the same shape for every protocol) whose
fields carry the writer (`bc`), its write index (`bk`) and the send time
(`bt`, microseconds of CLOCK_MONOTONIC, which every process of the machine
shares). A receiver records `now - bt` once it has decoded and applied the
write: the one-way delivery latency, defined the same way for every server.

- `IntelGraphSession`: PROTOCOL.md (acks, seq, batch=1, catch-up by since).
- `NaiveSession`: the original issue's sketch: `initial_state`, then bare
  `annotation_update` relays; no acks, no seq. Also speaks to the floor relay.
- `YjsSession`: y-websocket's sync protocol (y-websocket server,
  pycrdt-websocket) or Hocuspocus' (document name prefix, auth first); a
  write sets one key of a Y.Map "annotations" to the annotation object.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, ClassVar

import msgspec

from . import wsclient
from .collector import Collector, DeliveryTracker, now_us

_encode = msgspec.json.encode
_decode = msgspec.json.decode


def annotation(writer: int, index: int, t_us: int, ann_id: str, pad: str) -> dict[str, Any]:
    """The annotation every protocol writes: an ENTITY tag with the bench marks."""
    ann: dict[str, Any] = {
        "id": ann_id,
        "target_type": "ENTITY",
        "target_id": f"entity-{index % 1000}",
        "kind": "tag",
        "color": "#e11d48",
        "confidence": "HIGH",
        "bc": writer,
        "bk": index,
        "bt": t_us,
    }
    if pad:
        ann["text"] = pad
    return ann


class Session:
    """A collaborator. Subclasses implement the wire protocol."""

    protocol: ClassVar[str] = ""
    has_acks: ClassVar[bool] = False

    def __init__(
        self,
        index: int,
        room: str,
        collector: Collector,
        *,
        pad: int = 0,
        ids_per_writer: int = 100,
    ) -> None:
        self.index = index
        self.room = room
        self.collector = collector
        self.tracker = DeliveryTracker(collector)
        self.pad = "x" * pad
        self.ids_per_writer = ids_per_writer
        self.ws: wsclient.WsClient | None = None
        self.next_index = 0
        self.ready: asyncio.Future[None] | None = None
        self.ready_ns = 0  # when the first state message was applied
        self.state_count = 0  # annotations in the first state message
        self.on_populated: Any = None  # callback(n) for populate watchers
        self.passive = False  # receives without decoding (see go_passive)
        self.frames_ignored = 0

    # -- lifecycle ----------------------------------------------------------

    def path(self, since: int | None) -> str:
        raise NotImplementedError

    async def open(
        self,
        host: str,
        port: int,
        *,
        since: int | None = None,
        rcvbuf: int | None = None,
        limit_s: float = 30.0,
    ) -> None:
        """Connect, and return once the server's first state has been applied."""
        self.ready = asyncio.get_running_loop().create_future()
        self.ws = await wsclient.connect(
            host,
            port,
            self.path(since),
            self.on_frame,
            on_open=self._bind,
            rcvbuf=rcvbuf,
            limit_s=limit_s,
        )
        self.after_connect()
        await asyncio.wait_for(self.ready, limit_s)

    def _bind(self, ws: wsclient.WsClient) -> None:
        self.ws = ws
        ws.on_close = self._closed

    def after_connect(self) -> None:
        """Hook: what the client sends right after the handshake."""

    def _closed(self) -> None:
        ws = self.ws
        if ws is not None:
            self.collector.closes[ws.close_code or 1006] += 1
        if self.ready is not None and not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed ({ws.close_code if ws else None})"))

    def _set_ready(self, count: int) -> None:
        self.ready_ns = time.monotonic_ns()
        self.state_count = count
        if self.ready is not None and not self.ready.done():
            self.ready.set_result(None)

    def close(self) -> None:
        if self.ws is not None:
            self.ws.close()

    def go_passive(self) -> None:
        """From now on, read frames but do not decode them.

        The server's work is the same (it cannot tell); the generator's is
        not: a room of 10 where only a few clients decode lets one generator
        core drive a server to its ceiling. Latency and loss are then measured
        at the decoding clients only.
        """
        self.passive = True
        if self.ws is not None:
            self.ws.on_message = self._ignore_frame

    def _ignore_frame(self, opcode: int, payload: bytes) -> None:
        self.frames_ignored += 1

    async def aclose(self) -> None:
        """Close with the closing handshake (bounded)."""
        if self.ws is not None:
            if self.ws.transport is not None and self.ws.transport.is_reading() is False:
                self.ws.transport.resume_reading()  # a paused slow reader must see the reply
            await self.ws.aclose()

    def pause_reading(self) -> None:
        if self.ws is not None:
            self.ws.pause_reading()

    # -- traffic -----------------------------------------------------------

    def on_frame(self, opcode: int, payload: bytes) -> None:
        raise NotImplementedError

    def write(self, receivers: int) -> int:
        """Send this client's next write; returns its send time (us)."""
        raise NotImplementedError

    def write_many(self, count: int, id_prefix: str, per_frame: int) -> None:
        """Send `count` writes creating distinct annotations (populating a graph)."""
        raise NotImplementedError


class IntelGraphSession(Session):
    protocol = "intelgraph"
    has_acks = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent_us: list[int] = []
        self.seq = 0
        self.state: dict[str, dict[str, Any]] = {}
        self.acks = 0

    def path(self, since: int | None) -> str:
        query = f"client_id=bench-{self.index}&user=bench&batch=1"
        if since is not None:
            query += f"&since={since}"
        return f"/ws/collaborate/{self.room}?{query}"

    def write(self, receivers: int) -> int:
        k = self.next_index
        self.next_index = k + 1
        t = now_us()
        ann_id = f"w{self.index}-{k % self.ids_per_writer}"
        msg = {
            "type": "annotation_update",
            "op_id": str(k),
            "payload": annotation(self.index, k, t, ann_id, self.pad),
        }
        self.sent_us.append(t)
        assert self.ws is not None
        self.ws.send_text(_encode(msg))
        self.collector.sent(t, receivers, ack=self.has_acks and not self.passive)
        return t

    def write_many(self, count: int, id_prefix: str, per_frame: int) -> None:
        assert self.ws is not None
        batch: list[dict[str, Any]] = []
        for _ in range(count):
            k = self.next_index
            self.next_index = k + 1
            t = now_us()
            self.sent_us.append(t)
            batch.append(
                {
                    "type": "annotation_update",
                    "op_id": str(k),
                    "payload": annotation(self.index, k, t, f"{id_prefix}{k}", self.pad),
                }
            )
            if len(batch) >= per_frame:
                self.ws.send_text(_encode(batch if len(batch) > 1 else batch[0]))
                batch = []
        if batch:
            self.ws.send_text(_encode(batch if len(batch) > 1 else batch[0]))

    def on_frame(self, opcode: int, payload: bytes) -> None:
        now = time.monotonic_ns()
        msg = _decode(payload)
        if type(msg) is list:
            for m in msg:
                self._handle(m, now)
        else:
            self._handle(msg, now)

    def _handle(self, m: dict[str, Any], now: int) -> None:
        kind = m.get("type")
        if kind == "annotation_update":
            p = m["payload"]
            self.seq = m.get("seq", self.seq)
            self._apply(p)
            bt = p.get("bt")
            if bt is not None:
                self.tracker.deliver(p["bc"], p["bk"], bt, now)
                if self.on_populated is not None:
                    self.on_populated(1)
        elif kind == "ack":
            self.acks += 1
            op_id = m.get("op_id")
            self.seq = m.get("seq", self.seq)
            if op_id is not None and not m.get("duplicate"):
                self.collector.acked(self.sent_us[int(op_id)], now)
        elif kind == "annotation_delete":
            self.seq = m.get("seq", self.seq)
            self.state.pop(m.get("id", ""), None)
        elif kind == "initial_state":
            self.state = m["data"]
            self.seq = m.get("seq", 0)
            self._set_ready(len(self.state))
        elif kind == "catch_up":
            for op in m["ops"]:
                if op.get("type") == "annotation_update":
                    self._apply(op["payload"])
                elif op.get("type") == "annotation_delete":
                    self.state.pop(op.get("id", ""), None)
            self.seq = m.get("seq", self.seq)
            self._set_ready(len(m["ops"]))
        elif kind == "error":
            self.collector.error(str(m.get("code")))

    def _apply(self, p: dict[str, Any]) -> None:
        current = self.state.get(p["id"])
        if current is None:
            self.state[p["id"]] = p
        else:
            current.update(p)


class NaiveSession(IntelGraphSession):
    """The original sketch's protocol: no acks, no seq, one message per frame."""

    protocol = "naive"
    has_acks = False

    def path(self, since: int | None) -> str:
        return f"/ws/collaborate/{self.room}?client_id=bench-{self.index}"

    def write_many(self, count: int, id_prefix: str, per_frame: int) -> None:
        # The sketch reads `message["type"]` of each frame: no arrays.
        super().write_many(count, id_prefix, 1)


# -- Yjs -------------------------------------------------------------------

_SYNC = 0
_AUTH = 2
_STEP1 = 0
_STEP2 = 1
_UPDATE = 2


def var_uint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    out.append(n)
    return bytes(out)


def read_var_uint(buf: bytes, pos: int) -> tuple[int, int]:
    n = 0
    shift = 0
    while True:
        b = buf[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        if b < 0x80:
            return n, pos
        shift += 7


def var_bytes(data: bytes) -> bytes:
    return var_uint(len(data)) + data


class YjsSession(Session):
    """A Yjs client: a Y.Doc with a Y.Map "annotations", synced over y-protocols."""

    protocol = "y-websocket"
    has_acks = False
    prefix_doc_name: ClassVar[bool] = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from pycrdt import Doc, Map  # type: ignore[import-not-found,unused-ignore]  # Yjs peers only

        self.doc = Doc()
        self.map: Any = self.doc.get("annotations", type=Map)
        self._local = False  # applying our own write: send its update, observe nothing
        self._syncing = False  # applying the initial sync: observe nothing
        self.doc.observe(self._on_doc_update)
        self.map.observe(self._on_map_event)
        self._prefix = var_bytes(self.room.encode()) if self.prefix_doc_name else b""
        self._now = 0

    def path(self, since: int | None) -> str:
        return f"/{self.room}"

    def after_connect(self) -> None:
        self._send(bytes((_SYNC, _STEP1)) + var_bytes(self.doc.get_state()))

    def _send(self, body: bytes) -> None:
        assert self.ws is not None
        self.ws.send_binary(self._prefix + body)

    def _on_doc_update(self, event: Any) -> None:
        if self._local:
            self._send(bytes((_SYNC, _UPDATE)) + var_bytes(event.update))

    def _on_map_event(self, event: Any) -> None:
        if self._local or self._syncing:
            return
        now = self._now
        tracker = self.tracker
        for change in event.keys.values():
            value = change.get("newValue")
            if type(value) is dict:
                bt = value.get("bt")
                if bt is not None:
                    tracker.deliver(int(value["bc"]), int(value["bk"]), int(bt), now)
                    if self.on_populated is not None:
                        self.on_populated(1)

    def write(self, receivers: int) -> int:
        k = self.next_index
        self.next_index = k + 1
        t = now_us()
        ann_id = f"w{self.index}-{k % self.ids_per_writer}"
        self._local = True
        try:
            self.map[ann_id] = annotation(self.index, k, t, ann_id, self.pad)
        finally:
            self._local = False
        self.collector.sent(t, receivers)
        return t

    def write_many(self, count: int, id_prefix: str, per_frame: int) -> None:
        remaining = count
        while remaining > 0:
            n = min(per_frame, remaining)
            remaining -= n
            self._local = True
            try:
                with self.doc.transaction():
                    for _ in range(n):
                        k = self.next_index
                        self.next_index = k + 1
                        ann_id = f"{id_prefix}{k}"
                        self.map[ann_id] = annotation(self.index, k, now_us(), ann_id, self.pad)
            finally:
                self._local = False

    def on_frame(self, opcode: int, payload: bytes) -> None:
        self._now = time.monotonic_ns()
        pos = 0
        if self.prefix_doc_name:
            n, pos = read_var_uint(payload, 0)
            pos += n
        kind, pos = read_var_uint(payload, pos)
        if kind == _SYNC or kind == 4:  # 4: Hocuspocus' SyncReply
            sub, pos = read_var_uint(payload, pos)
            n, pos = read_var_uint(payload, pos)
            data = payload[pos : pos + n]
            if sub == _STEP1:
                self._send(bytes((_SYNC, _STEP2)) + var_bytes(self.doc.get_update(data)))
            elif sub == _STEP2:
                # The initial sync is done once it is applied to the Y.Doc,
                # the client's document (as ours is once initial_state is
                # decoded into dicts). Not observed key by key, nor converted
                # to Python objects: pycrdt's conversion of 100,000 entries
                # takes seconds, a cost of this binding, not of the server.
                self._syncing = True
                try:
                    self.doc.apply_update(data)
                finally:
                    self._syncing = False
                self._set_ready(len(self.map))
            else:
                self.doc.apply_update(data)
        elif kind == _AUTH and self.prefix_doc_name:
            sub, pos = read_var_uint(payload, pos)
            if sub == 1:  # PermissionDenied
                self.collector.error("permission-denied")


class HocuspocusSession(YjsSession):
    """Hocuspocus: every message starts with the document name; auth comes first."""

    protocol = "hocuspocus"
    prefix_doc_name = True

    def path(self, since: int | None) -> str:
        return f"/{self.room}"

    def after_connect(self) -> None:
        # Auth (type 2), subtype Token (0), an empty token: no onAuthenticate hook.
        self._send(bytes((_AUTH, 0)) + var_bytes(b""))
        super().after_connect()


SESSIONS: dict[str, type[Session]] = {
    cls.protocol: cls for cls in (IntelGraphSession, NaiveSession, YjsSession, HocuspocusSession)
}
