#!/usr/bin/env python3
"""Run the same presets side by side, in one run, against every server.

    .venv/bin/python bench/run_all.py                  # everything, both tables
    .venv/bin/python bench/run_all.py --presets small-room,ramp --targets ours,floor

Targets: ours (durable SQLite, the default), the original issue's naive
relay, y-websocket's server, Hocuspocus, pycrdt-websocket, and the floor
relay (the transport limit). Peers are installed here, from the npm registry
and PyPI, at the versions pinned in bench/peers/ (never committed):
bench/peers/node_modules and bench/peers/.venv-pycrdt.

Each (preset, target) pair gets a fresh server pinned to CPU 0 and a fresh
generator pinned to CPU 1, both SCHED_FIFO (chrt -f 10; --no-rt: nice -15),
since the machine may be shared with other work.
Presets run one after another, each against every target in turn, so the
figures compared within a preset were taken minutes apart at most.
Results: bench/results/side-by-side-<time>.json, a rich table, and
(--markdown) the same table as Markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT / "bench" / "peers"
RESULTS = ROOT / "bench" / "results"
MAIN_PY = ROOT / ".venv" / "bin" / "python"
PYCRDT_VENV = PEERS / ".venv-pycrdt"
PYCRDT_PY = PYCRDT_VENV / "bin" / "python"

PRESETS = (
    "small-room",
    "big-room",
    "many-rooms",
    "ramp",
    "slow-reader",
    "reconnect",
    "big-graph",
    "idle",
    "room-churn",
)
TARGETS = ("ours", "naive", "y-websocket", "hocuspocus", "pycrdt", "floor")
VARIANTS = ("ours-memory", "ours-asgi")
"""Our server changed in one way, for A/B runs (`--targets ours,ours-memory`):
the in-memory store (what durability costs), the ASGI WebSocket route (what
the fast path saves). Not part of the default side-by-side table."""
# The floor keeps no state: catch-up and initial-state figures would be empty.
SKIP = {("floor", "reconnect"), ("floor", "big-graph")}
# Node on one core under SCHED_FIFO: V8's background threads (concurrent GC,
# compilation) spin against the main thread and burn the core (y-websocket
# showed 95 % CPU at 500 writes/s, 30 % without). --single-threaded keeps
# V8's work on the main thread, as one pinned core makes it anyway.
NODE = ["node", "--single-threaded"]
SERVER_CPU = "0"
GENERATOR_CPU = "1"


@dataclass
class Server:
    name: str
    protocol: str
    generator_python: Path

    def command(self, port: int, workdir: Path) -> tuple[list[str], dict[str, str]]:
        env: dict[str, str] = {}
        if self.name.startswith("ours"):
            # The bench measures capacity, not abuse limits: the default
            # per-connection limit (200 messages/s) would refuse ramp steps
            # and the bulk writes that fill the reconnect and big-graph rooms.
            # Rooms unload 30 s after their last client by default; the
            # room-churn preset waits 8 s, so they unload after 3 s here.
            env = {"COLLAB_RATE_LIMIT": "0", "COLLAB_ROOM_IDLE_SECONDS": "3"}
            cmd = [
                str(ROOT / ".venv" / "bin" / "intelgraph-collab"),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--db",
                str(workdir / "ours.db"),
            ]
            if self.name == "ours-memory":
                cmd += ["--store", "memory://"]
            elif self.name == "ours-asgi":
                env["COLLAB_WS_FAST_PATH"] = "0"
        elif self.name == "naive":
            cmd = [str(MAIN_PY), str(PEERS / "naive_relay.py"), "--port", str(port)]
        elif self.name == "floor":
            cmd = [str(MAIN_PY), str(PEERS / "floor_relay.py"), "--port", str(port)]
        elif self.name == "y-websocket":
            cmd = [*NODE, str(PEERS / "node_modules/@y/websocket-server/src/server.js")]
            env = {"HOST": "127.0.0.1", "PORT": str(port), "UV_THREADPOOL_SIZE": "1"}
        elif self.name == "hocuspocus":
            cmd = [*NODE, str(PEERS / "hocuspocus_server.mjs"), "--port", str(port)]
            env = {"UV_THREADPOOL_SIZE": "1"}
        elif self.name == "pycrdt":
            cmd = [str(PYCRDT_PY), str(PEERS / "pycrdt_server.py"), "--port", str(port)]
        else:
            raise ValueError(self.name)
        return cmd, env


SERVERS = {
    "ours": Server("ours", "intelgraph", MAIN_PY),
    "ours-memory": Server("ours-memory", "intelgraph", MAIN_PY),
    "ours-asgi": Server("ours-asgi", "intelgraph", MAIN_PY),
    "naive": Server("naive", "naive", MAIN_PY),
    "floor": Server("floor", "naive", MAIN_PY),
    "y-websocket": Server("y-websocket", "y-websocket", PYCRDT_PY),
    "hocuspocus": Server("hocuspocus", "hocuspocus", PYCRDT_PY),
    "pycrdt": Server("pycrdt", "y-websocket", PYCRDT_PY),
}


def log(msg: str) -> None:
    print(f"[run_all {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- installing the peers -----------------------------------------------------


def install_peers(targets: list[str]) -> None:
    """npm packages and the pycrdt venv, from the registries, at pinned versions."""
    node_needed = {"y-websocket", "hocuspocus"} & set(targets)
    if node_needed:
        stamp = PEERS / "node_modules" / ".installed"
        lock = PEERS / "package-lock.json"
        if not stamp.exists() or stamp.stat().st_mtime < lock.stat().st_mtime:
            log("installing the npm peers (bench/peers/package-lock.json)")
            subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=PEERS,
                check=True,
            )
            stamp.touch()
    # The pycrdt venv also runs the generator for every Yjs-protocol peer.
    if {"y-websocket", "hocuspocus", "pycrdt"} & set(targets):
        stamp = PYCRDT_VENV / ".installed"
        reqs = PEERS / "requirements-pycrdt.txt"
        if not stamp.exists() or stamp.stat().st_mtime < reqs.stat().st_mtime:
            log("installing pycrdt-websocket into bench/peers/.venv-pycrdt")
            subprocess.run([sys.executable, "-m", "venv", str(PYCRDT_VENV)], check=True)
            subprocess.run(
                [str(PYCRDT_PY), "-m", "pip", "install", "-q", "-r", str(reqs)], check=True
            )
            stamp.touch()


# -- running one pair ------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], limit_s: float = 30.0) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server not listening on {port} after {limit_s} s")


def scheduling(realtime: bool) -> list[str]:
    """The priority prefix for servers and generators.

    On a shared machine other processes' CPU bursts land in our latency
    tails. SCHED_FIFO (chrt) runs ours ahead of every normal process; the
    kernel still reserves 5 % of each core for others (sched_rt_runtime_us),
    and every run is bounded in time. Without root, or with --no-rt: nice.
    """
    if os.geteuid() != 0:
        return []
    if realtime and shutil.which("chrt"):
        return ["chrt", "-f", "10"]
    if shutil.which("nice"):
        return ["nice", "-n", "-15"]
    return []


def pinned(cpu: str, cmd: list[str], realtime: bool) -> list[str]:
    out = [*scheduling(realtime), *cmd]
    if shutil.which("taskset"):
        out = ["taskset", "-c", cpu, *out]
    return out


def server_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    env.update(extra)
    return env


def run_pair(
    target: str, preset: str, args: argparse.Namespace, workdir: Path, stamp: str
) -> dict[str, Any]:
    server = SERVERS[target]
    port = free_port()
    cmd, extra_env = server.command(port, workdir)
    logs = RESULTS / f"logs-{stamp}"
    logs.mkdir(exist_ok=True)
    srv_log = open(logs / f"{target}-{preset}.log", "wb")
    proc = subprocess.Popen(
        pinned(SERVER_CPU, cmd, not args.no_rt),
        cwd=PEERS if target in ("y-websocket", "hocuspocus") else ROOT,
        env=server_env(extra_env),
        stdout=subprocess.DEVNULL if target == "naive" else srv_log,
        stderr=srv_log,
        start_new_session=True,
    )
    out_file = RESULTS / f"{stamp}-{target}-{preset}.json"
    try:
        wait_port(port, proc)
        time.sleep(0.5)
        # The pid to measure is the server itself, not taskset/nice (they exec).
        gen = [
            str(server.generator_python),
            "-m",
            "intelgraph_collab.bench",
            "--url",
            f"ws://127.0.0.1:{port}",
            "--protocol",
            server.protocol,
            "--preset",
            preset,
            "--server-pid",
            str(proc.pid),
            "--label",
            target,
            "--no-progress",
            "--json",
            "--out",
            str(out_file),
        ]
        if args.duration and preset in ("small-room", "big-room", "many-rooms", "slow-reader"):
            gen += ["--duration", str(args.duration)]
        if preset == "room-churn":
            gen += ["--settle", "8"]
        if server.protocol in ("y-websocket", "hocuspocus") and args.node_yjs:
            # Steady-rate presets: the Node Yjs client (see bench/peers/yjs_load.mjs).
            gen += ["--yjs-driver", str(PEERS / "yjs_load.mjs")]
        if args.ramp_duration and preset == "ramp":
            gen += ["--duration", str(args.ramp_duration)]
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
        t0 = time.monotonic()
        done = subprocess.run(
            pinned(GENERATOR_CPU, gen, not args.no_rt),
            env=env,
            capture_output=True,
            timeout=args.pair_timeout,
        )
        if done.returncode not in (0, 3) or not out_file.exists():
            tail = done.stderr.decode(errors="replace")[-800:]
            died = proc.poll() is not None
            return {
                "error": ("server exited; " if died else "")
                + f"generator exit {done.returncode}: {tail}",
                "server_exited": died,
            }
        result: dict[str, Any] = json.loads(out_file.read_text())
        result["elapsed_s"] = time.monotonic() - t0
        return result
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {args.pair_timeout} s"}
    except RuntimeError as exc:
        return {"error": str(exc)}
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=5)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        srv_log.close()


# -- machine and versions ---------------------------------------------------------


def sh(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def machine_info(realtime: bool) -> dict[str, Any]:
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem_kb = int(line.split()[1])
    pkg = json.loads((PEERS / "package.json").read_text())["dependencies"]
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "node": sh(["node", "--version"]),
        "npm_peers": pkg,
        "pycrdt_venv": sh([str(PYCRDT_PY), "-m", "pip", "freeze"]).splitlines()
        if PYCRDT_PY.exists()
        else [],
        "main_venv": [
            line
            for line in sh([str(MAIN_PY), "-m", "pip", "freeze"]).splitlines()
            if line.split("==")[0].lower()
            in ("fastapi", "uvicorn", "uvloop", "websockets", "msgspec", "starlette", "httptools")
        ],
        "git": sh(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]),
        "pinning": f"server on CPU {SERVER_CPU}, generator on CPU {GENERATOR_CPU}, "
        + (" ".join(scheduling(realtime)) or "default priority"),
    }


# -- the side-by-side table --------------------------------------------------------


def cell(result: dict[str, Any] | None, preset: str) -> str:
    """One preset's headline figure for one target."""
    if result is None:
        return "n/a"
    if "error" in result:
        return "server crashed" if result.get("server_exited") else "error"
    if preset in ("small-room", "big-room", "many-rooms"):
        lat = result.get("latency_ms")
        if lat is None:
            return "saturated" if result.get("saturated") else "—"
        lost = result["lost"]
        return f"{lat['p50']:.2f} / {lat['p99']:.2f}" + (f" (lost {lost})" if lost else "")
    if preset == "ramp":
        best = result.get("max_sustained_rate")
        if best is None:
            return "< first step"
        return f"{'≥' if result.get('generator_bound') else ''}{best:,.0f}"
    if preset == "slow-reader":
        a, b = result.get("p99_without_ms"), result.get("p99_with_ms")
        if a is None or b is None:
            runs = result.get("runs", {})
            if any(r.get("saturated") for r in runs.values()):
                return "saturated"
            return "—"
        lost = result.get("lost_with", 0)
        return f"{a:.1f} → {b:.1f} (x{b / a:.2f})" + (f" lost {lost}" if lost else "")
    if preset == "reconnect":
        return f"{result['time_to_live_ms']:.0f} ms"
    if preset == "big-graph":
        return f"{result['time_to_state_ms']:.0f} ms"
    if preset == "idle":
        return f"{result['kib_per_connection']:.1f} KiB"
    if preset == "room-churn":
        return f"+{result['rss_growth_mib']:.1f} MiB"
    return "?"


ROW_LABEL = {
    "small-room": "small room: p50 / p99 ms (1x10 @20/s)",
    "big-room": "big room: p50 / p99 ms (1x50 @4/s)",
    "many-rooms": "many rooms: p50 / p99 ms (25x4 @10/s)",
    "ramp": "ramp: highest sustained writes/s, 1 room x 10",
    "slow-reader": "slow reader: others' p99 ms without → with",
    "reconnect": "reconnect after 10,000 missed: time to live",
    "big-graph": "big graph 100k: connect → state applied",
    "idle": "idle: server memory per connection",
    "room-churn": "1,000 graphs opened+closed: RSS growth",
}


def cpu_cell(result: dict[str, Any] | None) -> str:
    if not result or "error" in result or result.get("server_cpu_pct") is None:
        return "n/a"
    return f"{result['server_cpu_pct']:.0f} %"


def table_rows(run: dict[str, Any], targets: list[str], presets: list[str]) -> list[list[str]]:
    rows = []
    for preset in presets:
        row = [ROW_LABEL.get(preset, preset)]
        for target in targets:
            row.append(cell(run["results"].get(preset, {}).get(target), preset))
        rows.append(row)
        if preset in ("small-room", "big-room", "many-rooms"):
            rows.append(
                [f"  {preset}: server CPU (one core = 100 %)"]
                + [cpu_cell(run["results"].get(preset, {}).get(t)) for t in targets]
            )
    return rows


def markdown(run: dict[str, Any], targets: list[str], presets: list[str]) -> str:
    head = ["preset", *targets]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in table_rows(run, targets, presets):
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def print_table(run: dict[str, Any], targets: list[str], presets: list[str]) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(markdown(run, targets, presets))
        return
    table = Table(title=f"side by side ({run['started']})")
    table.add_column("preset")
    for t in targets:
        table.add_column(t, justify="right")
    for row in table_rows(run, targets, presets):
        table.add_row(*row)
    Console(width=max(120, shutil.get_terminal_size((160, 40)).columns)).print(table)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--presets", default=",".join(PRESETS))
    p.add_argument("--targets", default=",".join(TARGETS))
    p.add_argument("--duration", type=float, help="seconds measured per steady preset")
    p.add_argument("--ramp-duration", type=float, help="seconds per ramp step")
    p.add_argument("--pair-timeout", type=float, default=600.0, help="cap per (preset, target)")
    p.add_argument("--markdown", help="also write the side-by-side table here (Markdown)")
    p.add_argument("--skip-install", action="store_true")
    p.add_argument("--no-rt", action="store_true", help="nice -15 instead of SCHED_FIFO")
    p.add_argument(
        "--node-yjs",
        action="store_true",
        help="drive the Yjs peers' steady-rate presets from Node (yjs_load.mjs), not pycrdt",
    )
    p.add_argument("--from-json", help="only render the tables of a saved side-by-side run")
    args = p.parse_args(argv)
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text())
        print_table(saved, saved["targets"], saved["presets"])
        if args.markdown:
            Path(args.markdown).write_text(
                markdown(saved, saved["targets"], saved["presets"]) + "\n"
            )
        return 0
    presets = [x for x in args.presets.split(",") if x]
    targets = [x for x in args.targets.split(",") if x]
    for name in targets:
        if name not in SERVERS:
            p.error(f"unknown target {name}; choose from {', '.join(SERVERS)}")
    if not MAIN_PY.exists():
        p.error("no .venv: run `make setup` first")
    if not args.skip_install:
        install_peers(targets)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run: dict[str, Any] = {
        "started": stamp,
        "machine": machine_info(not args.no_rt),
        "presets": presets,
        "targets": targets,
        "results": {},
    }
    out = RESULTS / f"side-by-side-{stamp}.json"
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        for preset in presets:
            run["results"][preset] = {}
            for target in targets:
                if (target, preset) in SKIP:
                    continue
                log(f"{preset} -> {target}")
                result = run_pair(target, preset, args, Path(tmp), stamp)
                run["results"][preset][target] = result
                log(
                    f"  {cell(result, preset)}"
                    + (f" {result['error']}" if "error" in result else "")
                )
                out.write_text(json.dumps(run, indent=2))
    run["finished"] = time.strftime("%Y%m%d-%H%M%S")
    out.write_text(json.dumps(run, indent=2))
    print_table(run, targets, presets)
    if args.markdown:
        Path(args.markdown).write_text(markdown(run, targets, presets) + "\n")
    log(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
