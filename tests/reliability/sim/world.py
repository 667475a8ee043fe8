"""One seeded history: clients, connections, faults, then the invariants.

Each step draws one action from the seed's generator: a client writes (field
updates, tag sets and deltas, removals, deletes, recreates, whole-field text
replacements, OT text edits), frames cross the network in any order TCP
allows, a client stalls, drops its connection (half-open: its last frames
may still arrive, every ack in flight is lost), resends a pending write on
the live connection, reconnects with `since` (catch_up) or without
(initial_state); the server crashes (kill -9) or restarts; in lossy runs a
frame vanishes without the connection breaking (as pub/sub may), which only
`prev` gap detection can repair. Small RoomSettings make compaction, trimmed
catch-ups, store-side dedupe and 1013 slow-reader closes happen often.

Then the network heals, every client reconnects and resends until nothing
is pending, and `history_check.check_history` judges the run.
"""

from __future__ import annotations

import json
import random
import tempfile
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from intelgraph_collab.room import RoomSettings

from ...support.history_check import HistoryReport, check_history
from ...support.protocol_model import ModelClient
from ...support.workload import Workload
from .network import Closed, Conn
from .servers import EngineServer, RoomServer

ACTIONS = {
    "write": 28,
    "edit": 16,
    "up": 16,
    "down": 18,
    "spin": 6,
    "stall": 2,
    "drop": 2,
    "notice": 3,
    "reconnect": 5,
    "resend": 2,
    "lose": 2,
    "crash": 0.4,
    "restart": 0.4,
}


@dataclass(frozen=True)
class SimConfig:
    seed: int
    steps: int = 300
    clients: int = 5
    backend: str = "room"
    """`room` (the real Room in-process) or `engine` (the pure engine)."""
    store: str = "memory"
    """Room backend: `memory` or `sqlite` (a real file; every step then runs
    until the room is idle, since its threads would make turns nondeterministic)."""
    lossy: bool | None = None
    """Frames may vanish without a disconnect; None: one run in five, by seed."""
    detect_gaps: bool = True
    """Clients resync on a gap in `prev` (switched off only to prove it matters)."""

    def replay_command(self) -> str:
        flags = f"--seed {self.seed} --steps {self.steps} --clients {self.clients}"
        flags += f" --backend {self.backend} --store {self.store}"
        if self.lossy is not None:
            flags += " --lossy" if self.lossy else " --no-lossy"
        return f"python -m tests.reliability.sim {flags}"


@dataclass
class Faults:
    writes: int = 0
    text_edits: int = 0
    drops: int = 0
    zombie_frames: int = 0
    """Frames that reached the server from a connection its client had dropped."""
    lost_frames: int = 0
    """Frames towards a client lost with its connection (acks among them)."""
    vanished_frames: int = 0
    """Lossy runs: frames lost without a disconnect."""
    resends: int = 0
    reconnects: int = 0
    full_resyncs: int = 0
    gap_resyncs: int = 0
    server_closes: int = 0
    """Closes by the server: 1013 slow reader, 1001 restart, 1006 crash."""
    slow_reader_closes: int = 0
    crashes: int = 0
    restarts: int = 0
    duplicate_acks: int = 0
    refusals: int = 0
    catch_ups: int = 0
    initial_states: int = 0


@dataclass
class SimResult:
    config: SimConfig
    report: HistoryReport
    faults: Faults
    head: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.report.ok

    def explain(self) -> str:
        problem = self.error or self.report.summary()
        return f"seed {self.config.seed} failed; replay: {self.config.replay_command()}\n{problem}"


@dataclass
class SimClient:
    model: ModelClient
    batch: bool
    conn: Conn | None = None
    stalled: int = 0
    read_frames: int = 0
    lost: list[Conn] = field(default_factory=list)

    @property
    def connected(self) -> bool:
        return self.conn is not None and self.conn.client_open


class World:
    def __init__(self, config: SimConfig, workdir: Path | None = None) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        rng = self.rng
        self.lossy = rng.random() < 0.2 if config.lossy is None else config.lossy
        self.settings = RoomSettings(
            retention=rng.choice((2, 5, 20, 10_000)),
            snapshot_every=rng.choice((3, 8, 25, 10_000)),
            recent_cache=rng.choice((1, 4, 32, 20_000)),
            op_id_cache=rng.choice((2, 16, 100_000)),
        )
        self.capacity = rng.choice((2, 8, 1_000_000))
        self.max_queue = rng.choice((32, 10_000))
        self.workload = Workload(rng)
        self.faults = Faults()
        self.workdir = workdir
        self.server: RoomServer | EngineServer
        if config.backend == "engine":
            self.server = EngineServer(rng, self.settings)
        else:
            sqlite = None
            if config.store == "sqlite":
                assert workdir is not None, "the sqlite store needs a directory"
                sqlite = workdir / f"sim-{config.seed}.db"
            self.server = RoomServer(
                rng, self.settings, sqlite_path=sqlite, max_queue=self.max_queue
            )
        self.clients: list[SimClient] = []
        for index in range(config.clients):
            model = ModelClient(f"c{index}", user=rng.choice((None, f"user{index}")))
            model.resend_transformed = rng.random() < 0.5
            model.detect_gaps = config.detect_gaps
            self.clients.append(SimClient(model, batch=rng.random() < 0.5))
        self.zombies: list[Conn] = []

    # -- running ----------------------------------------------------------

    async def run(self) -> SimResult:
        report = HistoryReport()
        try:
            await self.server.start()
            for client in self.clients:
                self._connect(client)
            names, weights = list(ACTIONS), list(ACTIONS.values())
            for _ in range(self.config.steps):
                action = self.rng.choices(names, weights)[0]
                await getattr(self, f"_{action}")()
                await self._turn()
            healed = await self._heal()
            report = await self._check()
            if healed is not None:
                report.violations.append(healed)
            head = self.server.head
        except Exception:
            return SimResult(self.config, report, self.faults, error=traceback.format_exc())
        finally:
            await self.server.stop()
        return SimResult(self.config, report, self.faults, head=head)

    async def _turn(self) -> None:
        for client in self.clients:
            client.stalled = max(0, client.stalled - 1)
        if self.server.threaded:
            await self.server.settle()
        else:
            await self.server.spin(self.rng.randint(0, 4))

    async def _check(self) -> HistoryReport:
        models = [client.model for client in self.clients]
        report = check_history(self.server.log(), models, self.server.state())
        report.violations.extend(self.server.problems())
        reloaded = await self.server.reloaded_state()
        if reloaded != self.server.state():
            report.violations.append("a reload from the store gives another state")
        for model in models:
            self.faults.duplicate_acks += model.stats.duplicate_acks
            self.faults.refusals += model.stats.refusals
            self.faults.catch_ups += model.stats.catch_ups
            self.faults.initial_states += model.stats.initial_states
            self.faults.gap_resyncs += model.stats.gaps
            if model.stats.gaps and not self.lossy:
                report.violations.append(
                    f"{model.client_id}: {model.stats.gaps} gaps, no frame lost"
                )
        self.faults.crashes, self.faults.restarts = self.server.crashes, self.server.restarts
        return report

    # -- the client's side of the network ---------------------------------

    def _connect(self, client: SimClient, full: bool = False) -> None:
        since = client.model.open(full=full)
        if since is None and client.model.has_state:
            self.faults.full_resyncs += 1
        conn = Conn(client.model.client_id, capacity=self.capacity)
        client.conn, client.read_frames = conn, 0
        self.server.connect(conn, client.model.user, since, client.batch)
        self._flush(client)

    def _flush(self, client: SimClient) -> None:
        messages = client.model.take_outbox()
        if not messages or not client.connected:
            return
        assert client.conn is not None
        if len(messages) > 1 and self.rng.random() < 0.3:
            client.conn.uplink.append(json.dumps(messages))
        else:
            client.conn.uplink.extend(json.dumps(message) for message in messages)

    def _read(self, client: SimClient, frames: int) -> None:
        conn = client.conn
        assert conn is not None
        for _ in range(frames):
            if not conn.downlink or not conn.client_open:
                break
            frame = conn.downlink.popleft()
            conn.wake()
            if isinstance(frame, Closed):
                self.faults.server_closes += 1
                if frame.code == 1013:
                    self.faults.slow_reader_closes += 1
                conn.client_open = False
                client.model.close()
                return
            client.read_frames += 1
            document = json.loads(frame)
            for message in document if isinstance(document, list) else [document]:
                client.model.receive(message)
            if client.model.needs_resync:
                self._break(client, keep=len(conn.uplink))
                self._connect(client)
                return
        self._flush(client)

    def _break(self, client: SimClient, keep: int) -> None:
        conn = client.conn
        assert conn is not None
        self.faults.lost_frames += sum(1 for frame in conn.downlink if isinstance(frame, str))
        conn.client_break(keep)
        client.model.close()
        self.zombies.append(conn)

    # -- actions ----------------------------------------------------------

    def _pick(self, candidates: list[Any]) -> Any:
        return self.rng.choice(candidates) if candidates else None

    async def _write(self) -> None:
        client = self._pick(self.clients)
        self.workload.write(client.model)
        self.faults.writes += 1
        self._flush(client)

    async def _edit(self) -> None:
        client = self._pick(self.clients)
        if not self.workload.edit(client.model):
            await self._write()
            return
        self.faults.text_edits += 1
        self._flush(client)

    async def _up(self) -> None:
        conns = [conn for conn in self._open_conns() if conn.uplink]
        conn = self._pick(conns)
        if conn is not None:
            self._deliver(conn, self.rng.randint(1, 3))

    def _open_conns(self) -> list[Conn]:
        live = [client.conn for client in self.clients if client.conn is not None]
        return [conn for conn in live + self.zombies if conn.server_open]

    def _deliver(self, conn: Conn, frames: int) -> None:
        for _ in range(frames):
            if not conn.uplink or not conn.server_open:
                return
            if conn.zombie:
                self.faults.zombie_frames += 1
            self.server.deliver(conn, conn.uplink.popleft())

    async def _down(self) -> None:
        readers = [
            c for c in self.clients if c.connected and not c.stalled and c.conn and c.conn.downlink
        ]
        client = self._pick(readers)
        if client is not None:
            self._read(client, self.rng.randint(1, 4))

    async def _spin(self) -> None:
        await self.server.spin(self.rng.randint(1, 20))

    async def _stall(self) -> None:
        client = self._pick(self.clients)
        client.stalled = self.rng.randint(5, 60)

    async def _drop(self) -> None:
        client = self._pick([c for c in self.clients if c.connected])
        if client is None:
            return
        assert client.conn is not None
        self.faults.drops += 1
        conn = client.conn
        self._break(client, keep=self.rng.randint(0, len(conn.uplink)))
        if self.rng.random() < 0.4:
            self._notice_conn(conn)

    def _notice_conn(self, conn: Conn) -> None:
        if conn in self.zombies:
            self.zombies.remove(conn)
        if conn.server_open:
            self.server.notice_close(conn)

    async def _notice(self) -> None:
        conn = self._pick(self.zombies)
        if conn is not None:
            self._notice_conn(conn)

    async def _reconnect(self) -> None:
        client = self._pick([c for c in self.clients if not c.connected])
        if client is not None:
            if client.conn is not None and client.conn.server_open:
                self.zombies.append(client.conn)
            self.faults.reconnects += 1
            self._connect(client, full=self.rng.random() < 0.15)

    async def _resend(self) -> None:
        client = self._pick([c for c in self.clients if c.connected and c.model.pending])
        if client is not None:
            client.model.resend(self.rng.choice(sorted(client.model.pending)))
            self.faults.resends += 1
            self._flush(client)

    async def _lose(self) -> None:
        if not self.lossy:
            return
        client = self._pick(
            [
                c
                for c in self.clients
                if c.connected and c.read_frames and c.conn and c.conn.downlink
            ]
        )
        if client is None:
            return
        assert client.conn is not None
        downlink = client.conn.downlink
        index = self.rng.randrange(len(downlink))
        if isinstance(downlink[index], str):
            del downlink[index]
            client.conn.wake()
            self.faults.vanished_frames += 1

    async def _crash(self) -> None:
        await self.server.crash()
        self.zombies = [conn for conn in self.zombies if conn.server_open]

    async def _restart(self) -> None:
        await self.server.restart()
        self.zombies = [conn for conn in self.zombies if conn.server_open]

    # -- the end: heal and settle -----------------------------------------

    async def _heal(self, rounds: int = 200) -> str | None:
        for conn in list(self.zombies):
            self._deliver(conn, len(conn.uplink))
            self._notice_conn(conn)
        final_write = False
        for _ in range(rounds):
            for client in self.clients:
                client.stalled = 0
                if not client.connected:
                    self._connect(client)
            await self._pump()
            models = [client.model for client in self.clients]
            if all(
                c.connected and m.synced and m.settled
                for c, m in zip(self.clients, models, strict=True)
            ):
                if not final_write:
                    # One last write everyone must see: a client that lost a
                    # frame without noticing sees the gap in its prev.
                    final_write = True
                    self.clients[0].model.update({"id": "final", "label": "end"})
                    self._flush(self.clients[0])
                    continue
                return None
            for client in self.clients:  # the ack timer of a client whose frame vanished
                if client.connected and client.model.synced and client.model.pending:
                    for op_id in sorted(client.model.pending):
                        client.model.resend(op_id)
                    self._flush(client)
        return f"no convergence after {rounds} healing rounds"

    async def _pump(self) -> None:
        """Deliver everything in flight, both ways, until the network is empty."""
        for _ in range(10_000):
            moved = False
            for conn in self._open_conns():
                if conn.uplink:  # a frame at a time: readers keep up, as live ones do
                    moved = True
                    self._deliver(conn, 1)
            await self.server.settle()
            for client in self.clients:
                if client.connected and client.conn is not None and client.conn.downlink:
                    moved = True
                    self._read(client, len(client.conn.downlink))
            if not moved and not self.server.busy():
                return
        raise RuntimeError("the network never emptied")


async def run_world(config: SimConfig) -> SimResult:
    if config.backend == "room" and config.store == "sqlite":
        with tempfile.TemporaryDirectory(prefix="collab-sim-") as workdir:
            return await World(config, Path(workdir)).run()
    return await World(config).run()


def faults_total(results: list[SimResult]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for result in results:
        for name, value in asdict(result.faults).items():
            totals[name] = totals.get(name, 0) + value
    return totals
