"""The load tool across the nodes of a cluster: clients spread over three
nodes (PostgreSQL + Redis), so most deliveries cross nodes. A test of the
tool and of cross-node delivery (nothing lost); the latency is reported,
not asserted."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.cluster.conftest import Cluster
from tests.support.server import REPO


def test_bench_spreads_clients_over_the_nodes_and_loses_nothing(nodes: Cluster) -> None:
    urls = ",".join(f"ws://127.0.0.1:{node.port}" for node in nodes.nodes)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "intelgraph_collab.bench",
            "--url",
            urls,
            "--preset",
            "small-room",
            "--rate",
            "5",
            "--duration",
            "3",
            "--json",
            "--no-progress",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["url"] == urls
    assert result["writes_sent"] > 0 and result["writes_acked"] == result["writes_sent"]
    assert result["lost"] == 0 and result["duplicates"] == 0
    latency = result.get("latency_ms") or {}
    p50, p99 = latency.get("p50"), latency.get("p99")
    print(f"\ncross-node delivery over 3 nodes: p50 {p50} ms, p99 {p99} ms")
