"""A Hypothesis state machine drives the real app in-process through its
transport: uvicorn serves it on a free port in a thread, four protocol
clients (`support/live_client.py`) connect, write every kind of write,
resend, drop (reset or clean close), reconnect with or without `since`,
and the server is restarted on the same SQLite file (its store closed and
reopened, every room reloaded from the log and snapshots, small compaction
settings). After every step no client has seen anything a correct server
never sends; at the end of every run the history checker's invariants hold
(nothing lost, nothing applied twice, replicas equal to the server).

Long version: COLLAB_STATEFUL_EXAMPLES=500.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from intelgraph_collab.room import RoomSettings
from intelgraph_collab.store.sqlite import SQLiteStore
from intelgraph_collab.sync.records import OpRecord

from ..support.fold_rules import Annotations, Message
from ..support.inprocess_server import InProcessServer
from ..support.live_client import LiveClient, drive, fetch_state, settle
from ..support.protocol_model import ModelClient
from ..support.workload import Workload
from .figures import env_int, record
from .sim.servers import AuditStore

GRAPH = "stateful"
CLIENTS = 4
clients_ = st.integers(min_value=0, max_value=CLIENTS - 1)


class AppMachine(RuleBasedStateMachine):
    totals = dict.fromkeys(
        ("runs", "restarts", "connects", "records", "acked", "lost", "duplicated"), 0
    )

    def __init__(self) -> None:
        super().__init__()
        self.directory = Path(tempfile.mkdtemp(prefix="collab-stateful-"))
        # Compaction trims the log: an auditing store keeps every record
        # committed, across restarts, for the checker.
        self.audit: dict[int, OpRecord] = {}
        self.server = InProcessServer(
            self.directory / "collab.db",
            store_factory=self.audited_store,
            rooms=RoomSettings(retention=4, snapshot_every=6, recent_cache=3, op_id_cache=4),
            room_idle_seconds=0.05,
        ).start()
        self.loop = asyncio.new_event_loop()
        self.workload = Workload(random.Random(0))
        self.clients = [
            LiveClient(ModelClient(f"h{i}", user=f"h{i}"), self.url_for) for i in range(CLIENTS)
        ]
        self.restarts = 0
        for client in self.clients:
            self.run(client.connect())

    def audited_store(self) -> AuditStore:
        store = AuditStore(SQLiteStore(str(self.directory / "collab.db")), random.Random(0), 0)
        store.audit = self.audit
        return store

    async def history(self) -> tuple[list[Message], Annotations]:
        state, _ = await fetch_state(self.url_for)
        return [self.audit[seq].wire(seq - 1) for seq in sorted(self.audit)], state

    def url_for(self, client_id: str, since: int | None) -> str:
        return self.server.ws_url(GRAPH, client_id=client_id, since=since, user=client_id)

    def run(self, work: object) -> None:
        self.loop.run_until_complete(work)  # type: ignore[arg-type]

    @rule(index=clients_, full=st.booleans())
    def connect(self, index: int, full: bool) -> None:
        client = self.clients[index]
        if not client.connected:
            self.run(client.connect(full=full))

    @rule(index=clients_, count=st.integers(1, 6), seed=st.integers(0, 2**32))
    def write(self, index: int, count: int, seed: int) -> None:
        """A few writes of every kind; text edits when there is text."""
        self.workload.rng.seed(seed)
        model = self.clients[index].model
        for _ in range(count):
            if not (self.workload.rng.random() < 0.4 and self.workload.edit(model)):
                self.workload.write(model)
        self.run(self.clients[index].send_new())

    @rule(index=clients_, seed=st.integers(0, 2**32))
    def resend(self, index: int, seed: int) -> None:
        client = self.clients[index]
        if client.connected and client.model.pending:
            client.model.resend(random.Random(seed).choice(sorted(client.model.pending)))
            self.run(client.send_new())

    @rule(index=clients_, abort=st.booleans())
    def drop(self, index: int, abort: bool) -> None:
        self.run(self.clients[index].drop(abort=abort))

    @rule()
    def deliver(self) -> None:
        """Let the network run until every connected client is caught up."""
        live = [c for c in self.clients if c.connected]
        self.run(
            drive(
                live,
                lambda: all(c.model.synced and c.model.settled for c in live or ()),
                30,
                "caught up",
            )
        )

    @rule()
    def restart_server(self) -> None:
        """Stop the app (store closed), serve a new one on the same file."""
        self.restarts += 1
        self.run(asyncio.to_thread(self.server.restart))

    @invariant()
    def nothing_impossible_seen(self) -> None:
        for client in self.clients:
            assert not client.model.violations, client.model.violations

    def teardown(self) -> None:
        try:
            report, _ = self.loop.run_until_complete(
                settle(self.clients, self.url_for, history=self.history)
            )
            totals = AppMachine.totals
            totals["runs"] += 1
            totals["restarts"] += self.restarts
            totals["records"] += report.records
            totals["acked"] += report.acked
            totals["lost"] += report.lost
            totals["duplicated"] += report.duplicated
            totals["connects"] += sum(c.connects for c in self.clients)
            record("app_state_machine", clients=CLIENTS, **totals)
            assert report.ok, report.summary()
            assert report.lost == 0 and report.duplicated == 0
        finally:
            for client in self.clients:
                self.loop.run_until_complete(client.drop())
            self.loop.run_until_complete(_cancel_all())
            self.loop.close()
            self.server.stop()
            shutil.rmtree(self.directory, ignore_errors=True)


async def _cancel_all() -> None:
    current = asyncio.current_task()
    pending = [task for task in asyncio.all_tasks() if task is not current]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


AppMachine.TestCase.settings = settings(
    max_examples=env_int("COLLAB_STATEFUL_EXAMPLES", 8),
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestAppStateMachine = AppMachine.TestCase
