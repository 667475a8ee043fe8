"""`intelgraph-collab bench`: the load generator's command line.

    python -m intelgraph_collab.bench --url ws://127.0.0.1:8000 --preset small-room \
        --server-pid PID [--json] [--out FILE]

Pin it to a core of its own (`taskset -c 1 ...`, server on `-c 0`).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
from collections.abc import Coroutine
from typing import Any
from urllib.parse import urlparse

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from . import scenarios
from .presets import PRESETS
from .report import render
from .scenarios import RateSpec, Target


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="intelgraph-collab bench",
        description="Load generator for IntelGraph Collab (and, for comparison, its peers).",
    )
    p.add_argument(
        "--url",
        default="ws://127.0.0.1:8000",
        help="server base URL (ws://host:port); several, comma-separated, for the nodes of "
        "one cluster: clients are spread over them (cross-node latency)",
    )
    p.add_argument(
        "--protocol",
        default="intelgraph",
        choices=("intelgraph", "naive", "y-websocket", "hocuspocus"),
        help="wire protocol: ours, the original sketch's relay, or a Yjs server's",
    )
    p.add_argument("--preset", default="small-room", choices=sorted(PRESETS))
    p.add_argument("--list-presets", action="store_true", help="list presets and exit")
    p.add_argument("--rooms", type=int, help="graphs")
    p.add_argument("--clients", type=int, help="clients per graph")
    p.add_argument("--rate", type=float, help="writes/s per client")
    p.add_argument("--duration", type=float, help="measured seconds (per ramp step)")
    p.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first")
    p.add_argument("--pad", type=int, help="bytes of text added to each write")
    p.add_argument(
        "--measure",
        type=int,
        help="clients per room that decode and measure (the rest only read); 0: all",
    )
    p.add_argument("--count", type=int, help="missed writes / annotations / connections / graphs")
    p.add_argument(
        "--settle", type=float, default=5.0, help="room-churn: seconds to wait before measuring"
    )
    p.add_argument("--ramp-steps", help="comma-separated total writes/s for ramp")
    p.add_argument("--p99-limit", type=float, default=100.0, help="ramp: p99 limit in ms")
    p.add_argument("--server-pid", type=int, help="server pid, for its CPU %% and RSS")
    p.add_argument(
        "--yjs-driver",
        help="path of bench/peers/yjs_load.mjs: drive steady-rate Yjs scenarios from Node",
    )
    p.add_argument("--label", default="", help="name of the target in the results")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.add_argument("--out", help="also write the JSON result to this file")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--no-uvloop", action="store_true")
    return p


def make_target(args: argparse.Namespace) -> Target:
    nodes = []
    for text in args.url.split(","):
        url = urlparse(text.strip())
        if url.scheme != "ws" or not url.hostname:
            raise SystemExit(f"--url must be ws://host:port[,ws://host:port...], got {args.url!r}")
        nodes.append((url.hostname, url.port or 80))
    return Target(
        host=nodes[0][0],
        port=nodes[0][1],
        more_nodes=tuple(nodes[1:]),
        protocol=args.protocol,
        server_pid=args.server_pid,
        label=args.label,
        yjs_driver=args.yjs_driver,
    )


def scenario(args: argparse.Namespace, target: Target, progress: Any) -> Coroutine[Any, Any, Any]:
    preset = PRESETS[args.preset]
    spec = RateSpec(
        rooms=args.rooms or preset.rooms,
        clients=args.clients or preset.clients,
        rate=args.rate or preset.rate,
        duration=args.duration or preset.duration,
        warmup=args.warmup,
        pad=preset.pad if args.pad is None else args.pad,
        measure=preset.measure if args.measure is None else args.measure,
    )
    count = args.count or preset.count
    if preset.kind == "rate":
        return scenarios.run_rate(target, spec, progress)
    if preset.kind == "ramp":
        steps = (
            tuple(int(s) for s in args.ramp_steps.split(","))
            if args.ramp_steps
            else scenarios.RAMP_STEPS
        )
        return scenarios.run_ramp(
            target, spec, steps=steps, p99_limit_ms=args.p99_limit, progress=progress
        )
    if preset.kind == "slow-reader":
        return scenarios.run_slow_reader(target, spec, progress)
    if preset.kind == "reconnect":
        return scenarios.run_reconnect(target, count, progress)
    if preset.kind == "big-graph":
        return scenarios.run_big_graph(target, count, progress)
    if preset.kind == "idle":
        return scenarios.run_idle(target, count, progress=progress)
    if preset.kind == "room-churn":
        return scenarios.run_room_churn(target, count, progress, settle=args.settle)
    raise SystemExit(f"unknown preset kind {preset.kind}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    err = Console(stderr=True)
    if args.list_presets:
        for name, preset in PRESETS.items():
            err.print(f"[bold]{name}[/]: {preset.description}")
        return 0
    target = make_target(args)
    preset = PRESETS[args.preset]
    if preset.kind in ("idle", "room-churn") and not args.server_pid:
        err.print(f"[red]--preset {args.preset} needs --server-pid[/]")
        return 2
    if not args.no_uvloop:
        try:
            import uvloop

            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        except ImportError:
            err.print("[yellow]uvloop not installed: using asyncio's default loop[/]")

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:.1f}/{task.total:.1f}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=args.no_progress,
    ) as bar:
        task = bar.add_task(f"{args.preset} -> {args.url}", total=1.0)

        def progress(label: str, done: float, total: float) -> None:
            bar.update(
                task,
                description=f"{args.preset} {label}",
                completed=done,
                total=total or 1.0,
            )

        # No cyclic GC in the generator: its pauses (tens of ms once clients
        # hold thousands of decoded annotations) would count as the server's
        # latency. A run is short, and decoded messages are freed by refcount.
        gc.freeze()
        gc.disable()
        try:
            result = asyncio.run(scenario(args, target, progress))
        except (ConnectionError, OSError, TimeoutError) as exc:
            err.print(f"[red]cannot reach the server at {args.url}: {exc!r}[/]")
            return 1
        except RuntimeError as exc:
            err.print(f"[red]{args.preset} failed: {exc}[/]")
            return 1
    result["preset"] = args.preset
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)
    if args.json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
    else:
        render(result, Console(), f"{args.preset} -> {result['target']}")
    if result.get("saturated"):
        return 3
    return 0
