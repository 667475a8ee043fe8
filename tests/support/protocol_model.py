"""A sans-I/O model of a correct protocol client, for the reliability tests.

`ModelClient` holds what a client of PROTOCOL.md must hold to never lose or
duplicate a write: the confirmed graph state (built only from what the
server sent, and from its own acked writes reproduced with the protocol's
rules), the writes sent but not yet acked (resent with the same `op_id`
after every reconnect), and, per text field, the OT client state of ot.js
(one op in flight, later edits composed in a buffer, remote ops transformed
past both). It does no I/O: the driver (the in-process simulator, or a
websocket transport in the fault tests) calls `open`/`close`/`receive`,
sends what `take_outbox` returns, and reconnects when `needs_resync` is set.

It also records what the history checker needs to judge the server: every
ack with its seq, every refusal, and the intent of every text op (the
characters it inserts and the characters it meant to delete; every inserted
character in a run is unique, see `CharSource`). Anything the server sends
that a correct server never would is recorded in `violations`.
"""

from __future__ import annotations

from dataclasses import dataclass

from intelgraph_collab.sync import text_ot
from intelgraph_collab.sync.annotation import iso_utc
from intelgraph_collab.sync.text_ot import Op

from .fold_rules import Annotations, Message, apply_broadcast, apply_own_update, text_effect

WRITE_TYPES = ("annotation_update", "annotation_delete", "text_op")
TEXT_FIELDS = ("content", "text")


@dataclass(frozen=True)
class TextIntent:
    inserted: str
    """Every character the op inserts (each unique in the run)."""
    deleted: frozenset[str]
    """The characters of the text at its base that the op deletes."""


@dataclass
class Pending:
    """A write sent (or to be sent) and not yet acked or refused."""

    op_id: str
    message: Message
    """As first sent: resent as is (text ops may be resent transformed)."""
    attached: bool = True
    """Text ops: the op's effect is part of the local OT state of its field."""


@dataclass
class FieldSync:
    """The OT client state of one text field (ot.js: awaiting / buffer)."""

    awaiting: str | None = None
    """op_id of the op in flight."""
    in_flight: Op | None = None
    """The op in flight, transformed past every remote op applied since it was sent."""
    buffer: Op | None = None
    """Local edits made while an op was in flight, composed."""


@dataclass
class ClientStats:
    writes: int = 0
    resends: int = 0
    acks: int = 0
    duplicate_acks: int = 0
    refusals: int = 0
    gaps: int = 0
    initial_states: int = 0
    catch_ups: int = 0
    own_ops_seen: int = 0
    detached_resyncs: int = 0
    refusals_overturned: int = 0


class ModelClient:
    def __init__(self, client_id: str, user: str | None = None) -> None:
        self.client_id = client_id
        self.user = user
        self.annotations: Annotations = {}
        self.seq = 0
        self.has_state = False
        self.connected = False
        self.synced = False
        """The first message of the current connection has been applied."""
        self.needs_resync = False
        """Our state cannot take what comes next: reconnect (with `since`)."""
        self.pending: dict[str, Pending] = {}
        self.acked: dict[str, int] = {}
        self.refused: dict[str, str] = {}
        self.sent: dict[str, Message] = {}
        """Every write ever sent, by op_id (what the checker compares the log to)."""
        self.intents: dict[str, TextIntent] = {}
        self.fields: dict[tuple[str, str], FieldSync] = {}
        self.violations: list[str] = []
        self.stats = ClientStats()
        self.outbox: list[Message] = []
        self._next_op = 0
        self.detect_gaps = True
        """Resync on a gap in `prev` (switched off only to prove it matters)."""
        self.resend_transformed = False
        """Resend an in-flight text op transformed to our latest seq (True) or
        exactly as first sent (False): both are valid; the simulator mixes them."""

    # -- connection lifecycle ---------------------------------------------

    def open(self, full: bool = False) -> int | None:
        """A new connection: the `since` to connect with (None: initial_state).
        Every pending write is queued for resending, ahead of anything new."""
        self.connected = True
        self.synced = False
        self.needs_resync = False
        self.outbox = []
        for pending in self.pending.values():
            self.outbox.append(self._resend_form(pending))
            self.stats.resends += 1
        return None if full or not self.has_state else self.seq

    def close(self) -> None:
        self.connected = False
        self.synced = False

    def take_outbox(self) -> list[Message]:
        out, self.outbox = self.outbox, []
        return out

    def resend(self, op_id: str) -> Message | None:
        """Send a pending write again on the live connection (a client whose
        ack timer fired): the server must apply it at most once."""
        pending = self.pending.get(op_id)
        if pending is None or not self.connected:
            return None
        self.stats.resends += 1
        message = self._resend_form(pending)
        self.outbox.append(message)
        return message

    def _resend_form(self, pending: Pending) -> Message:
        message = pending.message
        if message["type"] == "text_op" and pending.attached and self.resend_transformed:
            sync = self.fields.get((message["id"], message["field"]))
            if sync is not None and sync.awaiting == pending.op_id and sync.in_flight is not None:
                return {**message, "base": self.seq, "ops": sync.in_flight}
        return message

    # -- writing ----------------------------------------------------------

    def next_op_id(self) -> str:
        self._next_op += 1
        return f"{self.client_id}.{self._next_op}"

    def _send(self, message: Message) -> str:
        op_id = message["op_id"]
        self.pending[op_id] = Pending(op_id, message)
        self.sent[op_id] = message
        self.stats.writes += 1
        if self.connected:
            self.outbox.append(message)
        return op_id

    def update(self, payload: Message, recreate: bool = False) -> str:
        message: Message = {
            "type": "annotation_update",
            "op_id": self.next_op_id(),
            "payload": payload,
        }
        if recreate:
            message["recreate"] = True
        return self._send(message)

    def delete(self, annotation_id: str) -> str:
        return self._send(
            {"type": "annotation_delete", "op_id": self.next_op_id(), "id": annotation_id}
        )

    def local_text(self, annotation_id: str, name: str) -> str | None:
        """The text a user sees: confirmed + in-flight op + buffer (None: not editable now)."""
        annotation = self.annotations.get(annotation_id)
        if annotation is None:
            return None
        text = annotation.get(name) or ""
        if not isinstance(text, str):
            return None
        sync = self.fields.get((annotation_id, name))
        if sync is not None:
            if sync.in_flight is not None:
                text = text_ot.apply(text, sync.in_flight)
            if sync.buffer is not None:
                text = text_ot.apply(text, sync.buffer)
        return text

    def may_edit_text(self, annotation_id: str, name: str) -> bool:
        """Not while our own replacement or deletion of it is unacked (a text
        op based before it would be refused), nor while an op of ours on it
        is in flight detached from our state."""
        for pending in self.pending.values():
            message = pending.message
            if message["type"] == "annotation_delete" and message["id"] == annotation_id:
                return False
            if message["type"] == "annotation_update" and message["payload"]["id"] == annotation_id:
                if message.get("recreate") or name in message["payload"]:
                    return False
            if message["type"] == "text_op" and not pending.attached:
                if (message["id"], message["field"]) == (annotation_id, name):
                    return False
        return self.local_text(annotation_id, name) is not None

    def edit_text(self, annotation_id: str, name: str, op: Op) -> None:
        """A local edit (spanning `local_text`): shown at once, sent when nothing
        of ours is in flight on this field."""
        sync = self.fields.setdefault((annotation_id, name), FieldSync())
        sync.buffer = op if sync.buffer is None else text_ot.compose(sync.buffer, op)
        self._flush_text(annotation_id, name)

    def _flush_text(self, annotation_id: str, name: str) -> None:
        sync = self.fields.get((annotation_id, name))
        if sync is None or sync.awaiting is not None or sync.buffer is None:
            return
        if not (self.connected and self.synced):
            return
        op, sync.buffer = sync.buffer, None
        base_text = self.annotations[annotation_id].get(name) or ""
        op_id = self.next_op_id()
        self.intents[op_id] = TextIntent(*text_effect(base_text, op))
        sync.awaiting, sync.in_flight = op_id, op
        self._send(
            {
                "type": "text_op",
                "op_id": op_id,
                "id": annotation_id,
                "field": name,
                "base": self.seq,
                "ops": op,
            }
        )

    def _flush_all_text(self) -> None:
        for annotation_id, name in list(self.fields):
            self._flush_text(annotation_id, name)

    # -- receiving --------------------------------------------------------

    def receive(self, message: Message) -> None:
        """Apply one message from the server (frames already unpacked)."""
        if self.needs_resync or not self.connected:
            return
        kind = message.get("type")
        if not self.synced and kind not in ("initial_state", "catch_up", "presence", "pong"):
            self.violations.append(f"{self.client_id}: {kind} before the first message")
        if kind == "initial_state":
            self._initial_state(message)
        elif kind == "catch_up":
            self._catch_up(message)
        elif kind == "ack":
            self._ack(message)
        elif kind == "error":
            self._error(message)
        elif kind in WRITE_TYPES:
            self._write(message)
        self._flush_all_text()

    def _initial_state(self, message: Message) -> None:
        if self.synced:
            self.violations.append(f"{self.client_id}: a second first message")
        self.stats.initial_states += 1
        self.annotations = {key: dict(value) for key, value in message["data"].items()}
        self.seq = message["seq"]
        self.has_state = self.synced = True
        # Our in-flight text ops were made on a state we no longer hold: keep
        # them pending (the server dedupes or applies them; see _ack), drop
        # the unsent buffers.
        for pending in self.pending.values():
            pending.attached = False
        self.fields.clear()

    def _catch_up(self, message: Message) -> None:
        if self.synced:
            self.violations.append(f"{self.client_id}: a second first message")
        self.stats.catch_ups += 1
        self.synced = self.has_state = True
        for op in message["ops"]:
            self._write(op)
            if self.needs_resync:
                return
        if message["seq"] < self.seq:
            self.violations.append(
                f"{self.client_id}: catch_up to {message['seq']} behind {self.seq}"
            )
        self.seq = max(self.seq, message["seq"])

    def _write(self, message: Message) -> None:
        seq, prev = message["seq"], message["prev"]
        if prev > self.seq and self.detect_gaps:
            self.stats.gaps += 1
            self.needs_resync = True
            return
        if seq <= self.seq:
            self.violations.append(f"{self.client_id}: seq {seq} again (applied {self.seq})")
            return
        op_id = message.get("op_id")
        own = message.get("client_id") == self.client_id
        pending = self.pending.get(op_id) if own else None
        if own and op_id in self.refused:
            self._overturned(op_id, seq)
        if pending is not None:
            self.stats.own_ops_seen += 1
            self._settle(pending, seq)
            if message["type"] == "text_op" and pending.attached:
                self._own_text_applied(pending, seq, message["ts"], message["ops"])
                return
        self._apply_remote(message)
        self.seq = seq

    def _apply_remote(self, message: Message) -> None:
        kind = message["type"]
        if kind == "text_op":
            sync = self.fields.get((message["id"], message["field"]))
            if sync is not None:
                remote: Op = message["ops"]
                if sync.in_flight is not None:
                    remote, sync.in_flight = text_ot.transform(remote, sync.in_flight)
                if sync.buffer is not None:
                    _, sync.buffer = text_ot.transform(remote, sync.buffer)
        elif kind == "annotation_delete":
            self._replaced(message["id"], None)
        else:
            payload = message["payload"]
            self._replaced(payload["id"], None if message.get("recreate") else set(payload))
        apply_broadcast(self.annotations, message)

    def _replaced(self, annotation_id: str, names: set[str] | None) -> None:
        """Text fields replaced whole (names None: the whole annotation): our
        OT state on them is void; an op of ours in flight will be refused."""
        for key in [key for key in self.fields if key[0] == annotation_id]:
            if names is None or key[1] in names:
                sync = self.fields.pop(key)
                if sync.awaiting is not None and sync.awaiting in self.pending:
                    self.pending[sync.awaiting].attached = False

    def _own_text_applied(self, pending: Pending, seq: int, ts: int, ops: Op | None) -> None:
        message = pending.message
        key = (message["id"], message["field"])
        sync = self.fields[key]
        assert sync.in_flight is not None
        if ops is not None and text_ot.normalize(ops) != text_ot.normalize(sync.in_flight):
            self.violations.append(
                f"{self.client_id}: own text op {pending.op_id} applied as {ops}, "
                f"expected {sync.in_flight}"
            )
        annotation = self.annotations[key[0]]
        annotation[key[1]] = text_ot.apply(annotation.get(key[1]) or "", sync.in_flight)
        annotation.update(updated_by=self.user, updated_at=iso_utc(ts), seq=seq)
        sync.awaiting = sync.in_flight = None
        self.seq = seq
        if sync.buffer is None:
            del self.fields[key]

    def _overturned(self, op_id: str, seq: int) -> None:
        """One copy of a write was refused, another one (sent before the
        refusal came back, or still in flight on a dropped connection)
        applied: the write did take effect, once."""
        del self.refused[op_id]
        self.stats.refusals_overturned += 1
        self._record_ack(op_id, seq)

    def _settle(self, pending: Pending, seq: int) -> None:
        self.pending.pop(pending.op_id, None)
        self._record_ack(pending.op_id, seq)

    def _record_ack(self, op_id: str, seq: int) -> None:
        known = self.acked.get(op_id)
        if known is not None and known != seq:
            self.violations.append(f"{self.client_id}: {op_id} acked as {known} and as {seq}")
        self.acked[op_id] = seq

    def _ack(self, message: Message) -> None:
        op_id, seq = message.get("op_id"), message["seq"]
        self.stats.acks += 1
        if message.get("duplicate"):
            self.stats.duplicate_acks += 1
        pending = self.pending.get(op_id) if isinstance(op_id, str) else None
        if pending is None:
            if isinstance(op_id, str) and op_id in self.acked:
                self._record_ack(op_id, seq)
            elif isinstance(op_id, str) and op_id in self.refused:
                self._overturned(op_id, seq)
                if not message.get("duplicate"):
                    # Applied only now: fetch it as our own op in a catch_up.
                    self.needs_resync = True
            elif isinstance(op_id, str):
                self.violations.append(f"{self.client_id}: ack of {op_id}, never sent")
            return
        if message.get("duplicate"):
            # Applied before this copy arrived: our first message covered it
            # (an own op in a catch_up or broadcast settles it earlier).
            if seq > self.seq and self.detect_gaps:
                self.stats.gaps += 1  # we missed the frame that carried it
                self.needs_resync = True
                return
            if pending.message["type"] == "text_op" and pending.attached:
                self.violations.append(
                    f"{self.client_id}: duplicate ack of {op_id} at {seq}, never seen"
                )
            self._settle(pending, seq)
            return
        if seq != self.seq + 1 and self.detect_gaps:
            # Acks and broadcasts come in seq order: something is missing.
            self.stats.gaps += 1
            self.needs_resync = True
            return
        kind = pending.message["type"]
        if kind == "text_op" and not pending.attached:
            # Applied, but we do not know how it was transformed: fetch it as
            # our own op in a catch_up from the seq before it.
            self.stats.detached_resyncs += 1
            self.needs_resync = True
            return
        self._settle(pending, seq)
        if kind == "text_op":
            self._own_text_applied(pending, seq, message["ts"], None)
            return
        if kind == "annotation_update":
            payload = pending.message["payload"]
            self._replaced(payload["id"], None if pending.message.get("recreate") else set(payload))
            apply_own_update(self.annotations, pending.message, self.user, message["ts"], seq)
        else:
            self._replaced(pending.message["id"], None)
            self.annotations.pop(pending.message["id"], None)
        self.seq = seq

    def _error(self, message: Message) -> None:
        op_id = message.get("op_id")
        code = message.get("code", "?")
        if code in ("bad_message", "unknown_type", "invalid_op", "too_large") or op_id is None:
            self.violations.append(
                f"{self.client_id}: refused {op_id}: {code} {message.get('message')}"
            )
        pending = self.pending.pop(op_id, None) if isinstance(op_id, str) else None
        if pending is None:
            if isinstance(op_id, str) and op_id in self.acked:
                self.violations.append(f"{self.client_id}: {op_id} acked, then refused")
            return
        self.stats.refusals += 1
        self.refused[op_id] = code
        if pending.message["type"] == "text_op" and pending.attached:
            # Our local effect of it is void: back to the confirmed text.
            self.fields.pop((pending.message["id"], pending.message["field"]), None)

    # -- views for tests --------------------------------------------------

    @property
    def settled(self) -> bool:
        return not self.pending and all(
            sync.awaiting is None and sync.buffer is None for sync in self.fields.values()
        )
