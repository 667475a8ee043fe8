"""Simulated multi-client text editing, for the OT tests and vector generator.

Holds three test-only pieces (none of them belongs in src):

- `ClientPort`: a line-by-line Python port of `TextFieldSync`
  (frontend/collab/text-ot-client.js), so Python tests can run whole
  histories and the generator can record what the JS client must do;
- `Server`: the sequencer as PROTOCOL.md states it: dedupe by
  (client_id, op_id), `transform_against` every text op since the op's
  base, apply, assign the next seq; it also sequences unrelated writes so
  that text ops do not get consecutive seqs;
- `Simulation`: clients with their own up and down queues, driven by a
  schedule of events (edit, up, down, other, drop, connect) that a random
  generator (`random_history`) writes and the JS test replays verbatim.

Every inserted character is unique (`Tags`), so a finished history can be
checked for intent: each surviving character present exactly once, every
character deleted by someone gone, relative order never changed.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from intelgraph_collab.sync import text_ot
from intelgraph_collab.sync.text_ot import Op

Event = dict[str, Any]


class ClientPort:
    """Python port of TextFieldSync; keep it in step with the JS file."""

    # The tests swap this to prove a client with the wrong tie-break diverges.
    transform = staticmethod(text_ot.transform)

    def __init__(self, text: str, revision: int) -> None:
        self.reset(text, revision)

    def reset(self, text: str, revision: int) -> None:
        self.text = text
        self.revision = revision
        self.sent: tuple[int, Op] | None = None  # (base, ops) as first sent
        self.pending: Op | None = None  # sent op, transformed past remote ops
        self.buffer: Op | None = None

    @property
    def state(self) -> str:
        if self.sent is None:
            return "synchronized"
        return "awaiting" if self.buffer is None else "awaiting_with_buffer"

    def local_edit(self, ops: Op) -> tuple[int, Op] | None:
        op = text_ot.check(ops)
        text = text_ot.apply(self.text, op)
        if text_ot.is_noop(op):
            return None
        self.text = text
        if self.sent is None:
            self.sent = (self.revision, op)
            self.pending = op
            return self.sent
        self.buffer = op if self.buffer is None else text_ot.compose(self.buffer, op)
        return None

    def server_ack(self, seq: int) -> tuple[int, Op] | None:
        if self.sent is None or seq <= self.revision:
            return None
        self.revision = seq
        self.sent = None
        self.pending = None
        if self.buffer is None:
            return None
        self.sent = (seq, self.buffer)
        self.pending = self.buffer
        self.buffer = None
        return self.sent

    def server_op(self, ops: Op, seq: int) -> Op | None:
        if seq <= self.revision:
            return None
        op = text_ot.normalize(ops)
        pending, buffer = self.pending, self.buffer
        if pending is not None:
            op, pending = self.transform(op, pending)
        if buffer is not None:
            op, buffer = self.transform(op, buffer)
        self.text = text_ot.apply(self.text, op)
        self.pending, self.buffer = pending, buffer
        self.revision = seq
        return op

    def in_flight(self) -> tuple[int, Op] | None:
        return self.sent

    def pending_op(self) -> Op | None:
        return self.pending


@dataclass
class Sequenced:
    """One entry of the server log; `ops` is None for an unrelated write."""

    seq: int
    client: int | None
    op_id: str | None
    ops: Op | None


class Server:
    """The sequencer of one text field, as PROTOCOL.md specifies it."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.seq = 0
        self.log: list[Sequenced] = []
        self.texts = [text]  # the text after each seq
        self.seen: dict[tuple[int, str], int] = {}

    def receive(self, client: int, op_id: str, base: int, ops: Op) -> tuple[Sequenced, bool]:
        """Sequence a text op; returns (entry, duplicate)."""
        known = self.seen.get((client, op_id))
        if known is not None:
            return self.log[known - 1], True
        history = (e.ops for e in self.log if e.seq > base and e.ops is not None)
        op = text_ot.transform_against(text_ot.check(ops), history)
        self.text = text_ot.apply(self.text, op)
        entry = self._append(client, op_id, op)
        self.seen[(client, op_id)] = entry.seq
        return entry, False

    def other_write(self) -> Sequenced:
        return self._append(None, None, None)

    def _append(self, client: int | None, op_id: str | None, ops: Op | None) -> Sequenced:
        self.seq += 1
        entry = Sequenced(self.seq, client, op_id, ops)
        self.log.append(entry)
        self.texts.append(self.text)
        return entry

    def since(self, seq: int) -> list[Sequenced]:
        return self.log[seq:]


@dataclass
class Upstream:
    op_id: str
    base: int
    ops: Op


@dataclass
class Downstream:
    kind: str  # "op" | "other" | "ack" | "catch_up"
    seq: int = 0
    entry: Sequenced | None = None
    items: list[Sequenced] = field(default_factory=list)


@dataclass
class SimClient:
    """A client and the part of delta-sync.js that drives TextFieldSync."""

    index: int
    sync: ClientPort
    connected: bool = True
    last_seq: int = 0  # every write applied, text or not: the `since`
    up: deque[Upstream] = field(default_factory=deque)
    down: deque[Downstream] = field(default_factory=deque)
    in_flight_op_id: str | None = None
    next_op_id: int = 0
    snapshots: list[str] = field(default_factory=list)

    def send(self, outgoing: tuple[int, Op] | None) -> None:
        if outgoing is None:
            return
        self.next_op_id += 1
        self.in_flight_op_id = str(self.next_op_id)
        if self.connected:
            base, ops = outgoing
            self.up.append(Upstream(self.in_flight_op_id, base, list(ops)))


class Simulation:
    """Runs a schedule of events; every event is a JSON-able dict."""

    def __init__(self, initial: str, clients: int) -> None:
        self.initial = initial
        self.server = Server(initial)
        self.clients = [SimClient(i, ClientPort(initial, 0)) for i in range(clients)]
        self.events: list[Event] = []
        self.deleted: set[str] = set()
        self.inserted: set[str] = set(initial)

    def run(self, event: Event) -> None:
        self.events.append(event)
        kind = event["type"]
        if kind == "other":
            self._broadcast(self.server.other_write(), writer=None)
            self._check_clients()
            return
        client = self.clients[event["client"]]
        if kind == "edit":
            self._edit(client, event["ops"])
        elif kind == "up":
            self._up(client)
        elif kind == "down":
            self._down(client)
        elif kind == "drop":
            for _ in range(event["arrive"]):
                self._up(client)
            client.up.clear()
            client.down.clear()
            client.connected = False
        elif kind == "connect":
            client.connected = True
            # The server's first message; the client resends at once, not
            # waiting for it (so a resend may be answered as a duplicate).
            catch_up = self.server.since(client.last_seq)
            client.down.append(Downstream("catch_up", self.server.seq, items=catch_up))
            sent = client.sync.in_flight()
            if sent is not None:
                assert client.in_flight_op_id is not None
                client.up.append(Upstream(client.in_flight_op_id, sent[0], list(sent[1])))
        else:
            raise ValueError(f"unknown event {kind!r}")
        self._check_clients()

    def _check_clients(self) -> None:
        """After every event: local text = server text at the client's
        revision + the pending (in-flight, transformed) op + the buffer."""
        for client in self.clients:
            sync = client.sync
            text = self.server.texts[sync.revision]
            for op in (sync.pending_op(), sync.buffer):
                if op is not None:
                    text = text_ot.apply(text, op)
            assert text == sync.text, f"client {client.index} lost track of its edits"

    def _edit(self, client: SimClient, ops: Op) -> None:
        before = client.sync.text
        position = 0
        for c in text_ot.normalize(ops):
            if isinstance(c, str):
                self.inserted.update(c)
            elif c > 0:
                position += c
            else:
                self.deleted.update(before[position : position - c])
                position -= c
        client.send(client.sync.local_edit(ops))
        client.snapshots.append(client.sync.text)

    def _up(self, client: SimClient) -> None:
        message = client.up.popleft()
        entry, duplicate = self.server.receive(
            client.index, message.op_id, message.base, message.ops
        )
        if client.connected:
            client.down.append(Downstream("ack", entry.seq))
        if not duplicate:
            self._broadcast(entry, writer=client.index)

    def _broadcast(self, entry: Sequenced, writer: int | None) -> None:
        kind = "other" if entry.ops is None else "op"
        for other in self.clients:
            if other.index != writer and other.connected:
                other.down.append(Downstream(kind, entry.seq, entry=entry))

    def _down(self, client: SimClient) -> None:
        message = client.down.popleft()
        if message.kind == "ack":
            # Passed on even when it is a duplicate: TextFieldSync must ignore
            # an ack that is not newer than its revision.
            client.send(client.sync.server_ack(message.seq))
            client.last_seq = max(client.last_seq, message.seq)
        elif message.kind == "catch_up":
            for entry in message.items:
                self._apply_entry(client, entry)
        else:
            assert message.entry is not None
            self._apply_entry(client, message.entry)

    def _apply_entry(self, client: SimClient, entry: Sequenced) -> None:
        if entry.ops is not None:
            if entry.client == client.index:
                # Our own write, seen in a catch_up: it stands for its ack.
                assert entry.op_id == client.in_flight_op_id, "own op in catch_up is not in flight"
                client.send(client.sync.server_ack(entry.seq))
            else:
                client.sync.server_op(entry.ops, entry.seq)
        client.last_seq = entry.seq

    # -- schedule generation ---------------------------------------------

    def settle(self, rng: random.Random) -> None:
        """Reconnect everyone, then deliver every message in a random order."""
        for client in self.clients:
            if not client.connected:
                self.run({"type": "connect", "client": client.index})
        while True:
            moves = [
                {"type": kind, "client": c.index}
                for c in self.clients
                for kind, queue in (("up", c.up), ("down", c.down))
                if queue
            ]
            if not moves:
                return
            self.run(rng.choice(moves))

    def random_event(self, rng: random.Random, tags: Tags) -> Event:
        """One random valid next event: edits, deliveries in random order,
        unrelated writes, drops and reconnects."""
        connected = [c for c in self.clients if c.connected]
        choices: list[tuple[float, Event]] = []
        for c in self.clients:
            choices.append((3.0, {"type": "edit", "client": c.index}))
            if not c.connected:
                choices.append((1.0, {"type": "connect", "client": c.index}))
                continue
            if c.up:
                choices.append((2.0, {"type": "up", "client": c.index}))
            if c.down:
                choices.append((2.0, {"type": "down", "client": c.index}))
            if len(connected) > 1:
                choices.append((0.25, {"type": "drop", "client": c.index}))
        choices.append((0.3, {"type": "other"}))
        weights = [w for w, _ in choices]
        event = dict(rng.choices([e for _, e in choices], weights)[0])
        if event["type"] == "edit":
            event["ops"] = random_edit(rng, self.clients[event["client"]].sync.text, tags)
        elif event["type"] == "drop":
            event["arrive"] = rng.randint(0, len(self.clients[event["client"]].up))
        return event


class Tags:
    """Hands out code points never used before, from three disjoint ranges:
    astral (two UTF-16 units in JS), CJK, and Latin Extended."""

    RANGES = (0x1F300, 0x4E00, 0x0100)

    def __init__(self) -> None:
        self.count = 0

    def take(self, n: int) -> str:
        out = []
        for _ in range(n):
            start = self.RANGES[self.count % len(self.RANGES)]
            out.append(chr(start + self.count))
            self.count += 1
        return "".join(out)


def random_edit(rng: random.Random, text: str, tags: Tags) -> Op:
    """A random op on `text`: one or two edits (insert and/or delete)."""
    op: Op = [len(text)] if text else []
    current = text
    for _ in range(rng.choice((1, 1, 1, 2))):
        edit = _one_edit(rng, current, tags)
        current = text_ot.apply(current, edit)
        op = text_ot.compose(op, edit)
    return op


def _one_edit(rng: random.Random, text: str, tags: Tags) -> Op:
    position = rng.randint(0, len(text))
    deleted = rng.choice((0, 0, 1, 2, 3)) if position < len(text) else 0
    deleted = min(deleted, len(text) - position)
    inserted = tags.take(rng.choice((0, 1, 1, 2, 4)) if deleted else rng.choice((1, 2, 4)))
    return text_ot.normalize([position, inserted, -deleted, len(text) - position - deleted])


@dataclass
class History:
    simulation: Simulation
    seed: int

    @property
    def final_text(self) -> str:
        return self.simulation.server.text


def random_history(seed: int, *, steps: tuple[int, int] = (15, 60)) -> History:
    """Play a random history of 3-5 clients to quiescence."""
    rng = random.Random(seed)
    tags = Tags()
    initial = tags.take(rng.choice((0, 0, 3, 8)))
    simulation = Simulation(initial, rng.randint(3, 5))
    for _ in range(rng.randint(*steps)):
        simulation.run(simulation.random_event(rng, tags))
    simulation.settle(rng)
    return History(simulation, seed)


def check_history(history: History) -> None:
    """Convergence and intent; raises AssertionError naming what broke."""
    sim = history.simulation
    final = sim.server.text
    for client in sim.clients:
        assert client.sync.text == final, f"client {client.index} diverged from the server"
        assert client.sync.state == "synchronized", f"client {client.index} still has edits"
        assert client.sync.revision == max(
            (e.seq for e in sim.server.log if e.ops is not None), default=0
        ), f"client {client.index} has the wrong revision"
    assert len(set(final)) == len(final), "a character is present more than once"
    assert set(final) == sim.inserted - sim.deleted, "an insert was lost or a delete missed"
    order = {ch: i for i, ch in enumerate(final)}
    for client in sim.clients:
        for snapshot in client.snapshots:
            kept = [order[ch] for ch in snapshot if ch in order]
            assert kept == sorted(kept), "two surviving characters changed order"


def history_vector(history: History) -> dict[str, Any]:
    """The JSON form of a finished history, for the JS replay test."""
    sim = history.simulation
    return {
        "seed": history.seed,
        "initial": sim.initial,
        "clients": len(sim.clients),
        "events": sim.events,
        "server_log": [[e.seq, e.ops] for e in sim.server.log if e.ops is not None],
        "final_seq": sim.server.seq,
        "final_text": sim.server.text,
    }
