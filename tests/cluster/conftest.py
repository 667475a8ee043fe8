"""Three server nodes sharing one PostgreSQL database and one Redis prefix.

The nodes reach PostgreSQL through a TcpProxy (so a test can cut them off
without touching the real server, which others use) and Redis directly.
Started once for the package; each test gets them all alive again, the
proxy restored and Redis up.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest

from tests.conformance import services
from tests.conformance.tcp_proxy import TcpProxy
from tests.support.server import COMMAND, REPO, ServerProcess, wait_for_port

PRESENCE_TTL = 3.0
STARTUP_SECONDS = 60.0
"""A node's start-up (imports, schema check, Redis link) on a loaded 2-core machine."""


class ClusterNode(ServerProcess):
    """A server process given time to start, whose log is shown if it does not."""

    def start(self) -> ClusterNode:
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.process = subprocess.Popen(
            [*COMMAND, "--host", "127.0.0.1", "--port", str(self.port), "--db", str(self.db)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        log.close()
        try:
            wait_for_port(self.port, timeout=STARTUP_SECONDS, process=self.process)
        except (TimeoutError, RuntimeError) as exc:
            raise RuntimeError(f"node on port {self.port} did not start:\n{self.log()}") from exc
        return self


@dataclass
class Cluster:
    nodes: list[ServerProcess]
    proxy: TcpProxy
    postgres_url: str
    """Direct, not through the proxy: what the tests read the log with."""
    redis_prefix: str

    def ensure_up(self) -> None:
        ensure_redis()
        self.proxy.restore()
        for node in self.nodes:
            if node.process is None or node.process.poll() is not None:
                node.start()


def ensure_redis() -> None:
    """Start Redis again if a test stopped it (the project's own start command)."""
    if services.redis_listening():
        return
    subprocess.run(
        ["bash", str(REPO / "scripts" / "ensure-services.sh")],
        check=False,
        capture_output=True,
        timeout=60,
    )


@pytest.fixture(scope="package")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    postgres_url = services.postgres_database()
    services.check_redis()
    prefix = f"collab-cluster-{uuid.uuid4().hex[:10]}:"
    parts = urlsplit(postgres_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()
    env = {
        "COLLAB_STORE": services.via_port(postgres_url, proxy.port),
        "COLLAB_FANOUT": services.redis_url_with_prefix(prefix),
        "COLLAB_PRESENCE_TTL": str(PRESENCE_TTL),
        "COLLAB_LOG_LEVEL": "warning",
    }
    root = tmp_path_factory.mktemp("cluster")
    nodes: list[ServerProcess] = [
        ClusterNode(root / f"node{i}" / "unused.db", env=env) for i in range(3)
    ]
    for node in nodes:
        node.db.parent.mkdir(parents=True)
    built = Cluster(nodes, proxy, postgres_url, prefix)
    try:
        for node in nodes:
            node.start()
        yield built
    finally:
        for node in nodes:
            node.stop()
        proxy.stop()
        ensure_redis()
        services.run_sync(services.drop_database(postgres_url))
        services.run_sync(services.delete_prefix(prefix))


@pytest.fixture
def nodes(cluster: Cluster) -> Iterator[Cluster]:
    cluster.ensure_up()
    try:
        yield cluster
    finally:
        cluster.proxy.restore()
        ensure_redis()


def node_logs(cluster: Cluster) -> str:
    return "\n".join(f"--- node {n.port}\n{n.log()[-2000:]}" for n in cluster.nodes)
