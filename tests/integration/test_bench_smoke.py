"""Smoke test of the load tool against the real server: it runs, loses nothing,
and prints a sane table. A test of the tool, not of timing: no figure asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..support.server import free_port, start_server

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[int, int]]:
    """The real server: its port and pid (the tool reads the pid's CPU)."""
    running = start_server(tmp_path)
    try:
        assert running.process is not None
        yield running.port, running.process.pid
    finally:
        running.stop()


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), COLUMNS="160")
    return subprocess.run(
        [sys.executable, "-m", "intelgraph_collab.bench", "--no-progress", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_small_load_loses_nothing_and_reports_a_sane_table(
    server: tuple[int, int], tmp_path: Path
) -> None:
    port, pid = server
    out = tmp_path / "result.json"
    done = _bench(
        "--url",
        f"ws://127.0.0.1:{port}",
        "--preset",
        "small-room",
        "--clients",
        "4",
        "--rate",
        "5",
        "--duration",
        "2",
        "--warmup",
        "0.5",
        "--server-pid",
        str(pid),
        "--out",
        str(out),
    )
    # 3 = the generator flagged itself saturated (a busy CI machine): still a valid run.
    assert done.returncode in (0, 3), done.stderr
    result = json.loads(out.read_text())

    assert result["schema"] == "intelgraph-collab-bench/1"
    assert result["clients"] == 4 and result["rooms"] == 1
    assert result["writes_sent"] > 0
    assert result["writes_acked"] == result["writes_sent"]
    assert result["deliveries_expected"] == 3 * result["writes_sent"]
    assert result["deliveries_received"] == result["deliveries_expected"]
    assert result["lost"] == 0
    assert result["duplicates"] == 0
    assert result["errors"] == {}
    if result["saturated"]:
        assert result["latency_ms"] is None and result["saturation"]
    else:
        lat = result["latency_ms"]
        assert lat["count"] == result["deliveries_received"]
        assert 0 <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p999"] <= lat["max"]
        ack = result["ack_latency_ms"]
        assert ack["count"] == result["writes_acked"]
    assert result["server_cpu_pct"] is not None and result["server_cpu_pct"] >= 0
    assert result["server_rss_mib"] > 0

    table = done.stdout
    for row in (
        "writes sent / acked",
        "deliveries expected / received (lost)",
        "delivery latency ms",
        "ack latency ms",
        "server CPU",
        "generator CPU",
    ):
        assert row in table, table


def test_json_output_is_machine_readable(server: tuple[int, int]) -> None:
    port, pid = server
    done = _bench(
        "--url",
        f"ws://127.0.0.1:{port}",
        "--preset",
        "many-rooms",
        "--rooms",
        "2",
        "--clients",
        "2",
        "--rate",
        "4",
        "--duration",
        "1",
        "--warmup",
        "0.3",
        "--server-pid",
        str(pid),
        "--json",
    )
    assert done.returncode in (0, 3), done.stderr
    result = json.loads(done.stdout)
    assert result["preset"] == "many-rooms"
    assert result["rooms"] == 2 and result["clients"] == 4
    assert result["lost"] == 0


def test_unreachable_server_is_a_clear_error() -> None:
    port = free_port()
    done = _bench("--url", f"ws://127.0.0.1:{port}", "--duration", "1")
    assert done.returncode == 1
    assert "cannot reach the server" in done.stderr
