"""The scenarios: steady rate (small/big/many rooms), ramp, slow reader,
reconnect catch-up, big graph, idle connections, room churn.

Each returns a JSON-ready dict (see `result_schema` in report.py). All clients
live in this one process, on one event loop and one clock.
"""

from __future__ import annotations

import asyncio
import gc
import heapq
import json
import os
import random
import time
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from . import procstat
from .collector import Collector, now_us
from .sessions import SESSIONS, Session
from .stats import percentile, saturation_reasons, summarize_ns

ProgressFn = Callable[[str, float, float], None]
"""progress(label, done, total): called a few times a second."""


def _no_progress(label: str, done: float, total: float) -> None:
    pass


@dataclass
class Target:
    host: str
    port: int
    protocol: str
    server_pid: int | None = None
    label: str = ""
    yjs_driver: str | None = None
    """Path of bench/peers/yjs_load.mjs: run steady-rate Yjs scenarios in Node."""
    more_nodes: tuple[tuple[str, int], ...] = ()
    """Further server nodes of one cluster: the rate scenarios spread their
    clients over all nodes, round-robin, so most deliveries cross nodes."""

    def endpoint(self, client_index: int) -> tuple[str, int]:
        """The (host, port) a client of this index connects to."""
        nodes = ((self.host, self.port), *self.more_nodes)
        return nodes[client_index % len(nodes)]

    @property
    def url(self) -> str:
        nodes = ((self.host, self.port), *self.more_nodes)
        return ",".join(f"ws://{host}:{port}" for host, port in nodes)


@dataclass
class RateSpec:
    rooms: int = 1
    clients: int = 10  # per room
    rate: float = 20.0  # writes/s per client
    duration: float = 5.0
    warmup: float = 1.0
    pad: int = 0  # extra bytes of text in each write
    slow_reader: bool = False
    measure: int = 0  # clients per room that decode and measure; 0: all
    drain_timeout: float = 5.0
    room_prefix: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class LoopLag:
    """Samples how late the event loop wakes a 5 ms timer (the generator's own lag)."""

    def __init__(self) -> None:
        self.samples_ns = array("q")
        self.recording = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        interval = 0.005
        while True:
            t0 = time.monotonic_ns()
            await asyncio.sleep(interval)
            if self.recording:
                self.samples_ns.append(max(0, time.monotonic_ns() - t0 - int(interval * 1e9)))

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def p99_ms(self) -> float | None:
        if not self.samples_ns:
            return None
        return percentile(sorted(self.samples_ns), 0.99) / 1e6


def new_session(target: Target, index: int, room: str, col: Collector, **kw: Any) -> Session:
    return SESSIONS[target.protocol](index, room, col, **kw)


async def open_all(
    target: Target,
    sessions: Iterable[Session],
    *,
    concurrency: int = 100,
    rcvbuf: dict[int, int] | None = None,
    progress: ProgressFn = _no_progress,
) -> None:
    """Connect every session (at most `concurrency` handshakes at once).

    The first client of each room connects alone, before the others:
    pycrdt-websocket 0.16 leaves the second of two concurrent first
    connections to a new room hanging (its room start races).
    """
    todo = list(sessions)
    gate = asyncio.Semaphore(concurrency)
    done = 0

    async def one(s: Session) -> None:
        nonlocal done
        async with gate:
            host, port = target.endpoint(s.index)
            await s.open(host, port, rcvbuf=(rcvbuf or {}).get(s.index))
        done += 1
        if done % 50 == 0 or done == len(todo):
            progress("connecting", done, len(todo))

    firsts: dict[str, Session] = {}
    for s in todo:
        firsts.setdefault(s.room, s)
    await asyncio.gather(*(one(s) for s in firsts.values()))
    await asyncio.gather(*(one(s) for s in todo if firsts[s.room] is not s))


async def close_all(sessions: Iterable[Session]) -> None:
    """Close every session with the closing handshake, at most ~2 s in all."""
    await asyncio.gather(*(s.aclose() for s in sessions), return_exceptions=True)


def room_name(prefix: str, r: int) -> str:
    return f"bench-{prefix}-{os.getpid()}-{int(time.time() * 1000) % 10**8}-{r}"


def _pids(target: Target) -> tuple[int, ...]:
    return (target.server_pid,) if target.server_pid else ()


async def run_rate(
    target: Target, spec: RateSpec, progress: ProgressFn = _no_progress
) -> dict[str, Any]:
    """Steady load: `rooms` x `clients`, each writing `rate` times a second."""
    if target.yjs_driver and target.protocol in ("y-websocket", "hocuspocus"):
        return await _run_rate_node(target, spec, progress)
    col = Collector()
    rooms = [room_name(spec.room_prefix or "r", r) for r in range(spec.rooms)]
    sessions: list[Session] = []
    for r, name in enumerate(rooms):
        for c in range(spec.clients):
            sessions.append(new_session(target, r * spec.clients + c, name, col, pad=spec.pad))
    slow = sessions[0] if spec.slow_reader else None
    lag = LoopLag()
    lag.start()
    try:
        await open_all(
            target,
            sessions,
            rcvbuf={slow.index: 4096} if slow is not None else None,
            progress=progress,
        )
        if slow is not None:
            slow.pause_reading()
        if spec.measure:
            per_room: dict[str, int] = {}
            for s in sessions:
                if s is slow:
                    continue
                per_room[s.room] = per_room.get(s.room, 0) + 1
                if per_room[s.room] > spec.measure:
                    s.go_passive()
        # The cyclic GC would pause the generator for tens of milliseconds
        # once receivers hold thousands of decoded annotations: those pauses
        # would show up as the server's latency. Decoded messages are acyclic
        # (freed by reference counting), so it is off while the load runs.
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            result = await _drive(target, spec, col, sessions, slow, lag, progress)
        finally:
            if was_enabled:
                gc.enable()
    finally:
        lag.stop()
        await close_all(sessions)
    return result


SEND_QUANTUM_NS = 200_000
"""A write may leave up to 0.2 ms before its scheduled time (never later by
design): the generator wakes at most ~5,000 times a second however high the
rate. Latency is measured from the real send time, carried in the write."""


async def _drive(
    target: Target,
    spec: RateSpec,
    col: Collector,
    sessions: list[Session],
    slow: Session | None,
    lag: LoopLag,
    progress: ProgressFn,
) -> dict[str, Any]:
    writers = [s for s in sessions if s is not slow]
    measuring_in_room: dict[str, int] = {}
    for s in writers:
        if not s.passive:
            measuring_in_room[s.room] = measuring_in_room.get(s.room, 0) + 1
    # A write is expected at every measuring client of its room but its writer.
    receivers = {
        s.index: measuring_in_room.get(s.room, 0) - (0 if s.passive else 1) for s in writers
    }

    interval_ns = int(1e9 / spec.rate)
    t_start = time.monotonic_ns() + 100_000_000
    t_window = t_start + int(spec.warmup * 1e9)
    t_end = t_window + int(spec.duration * 1e9)
    col.open_window(t_window // 1000, t_end // 1000)
    heap = [(t_start + random.randrange(interval_ns), s.index) for s in writers]
    heapq.heapify(heap)
    by_index = {s.index: s for s in writers}
    send_lag = array("q")
    gen_cpu = procstat.CpuWindow((os.getpid(),))
    srv_cpu = procstat.CpuWindow(_pids(target))
    machine = procstat.MachineWindow()
    in_window = False
    total_s = spec.warmup + spec.duration
    next_progress = 0
    planned = 0

    while True:
        now = time.monotonic_ns()
        if now >= t_end:
            break
        if not in_window and now >= t_window:
            in_window = True
            lag.recording = True
            gen_cpu.start()
            srv_cpu.start()
            machine.start()
        # Writes due within the next quantum go now: one wake-up (an
        # asyncio.sleep, a timer and a future) serves several of them, which
        # at thousands of writes/s was a third of the generator's CPU.
        while heap[0][0] <= now + SEND_QUANTUM_NS:
            due, idx = heap[0]
            if due >= t_end:
                break
            by_index[idx].write(receivers[idx])
            if due >= t_window:
                send_lag.append(max(0, time.monotonic_ns() - due))
                planned += 1
            heapq.heapreplace(heap, (due + interval_ns, idx))
        if now >= next_progress:
            progress("load", (now - t_start) / 1e9, total_s)
            next_progress = now + 200_000_000
        wait = heap[0][0] - time.monotonic_ns()
        await asyncio.sleep(max(0.0, min(wait, t_end - now) / 1e9))

    lag.recording = False
    gen_pct = gen_cpu.stop()
    srv_pct = srv_cpu.stop()
    machine_pct, steal_pct = machine.stop() if in_window else (None, None)
    other_pct = (
        max(0.0, machine_pct - (gen_pct or 0.0) - (srv_pct or 0.0))
        if machine_pct is not None
        else None
    )
    wall = (time.monotonic_ns() - t_window) / 1e9 if in_window else spec.duration

    # Drain: wait for every expected delivery (and ack) or the timeout.
    has_acks = type(sessions[0]).has_acks
    deadline = time.monotonic() + spec.drain_timeout
    while time.monotonic() < deadline:
        if col.deliveries_received >= col.deliveries_expected and (
            not has_acks or col.writes_acked >= col.acks_expected
        ):
            break
        progress("drain", time.monotonic() - deadline + spec.drain_timeout, spec.drain_timeout)
        await asyncio.sleep(0.01)
    progress("done", total_s, total_s)

    send_lag_p99 = percentile(sorted(send_lag), 0.99) / 1e6 if send_lag else None
    reasons = saturation_reasons(
        generator_cpu_percent=gen_pct,
        loop_lag_p99_ms=lag.p99_ms(),
        send_lag_p99_ms=send_lag_p99,
        writes_sent=col.writes_sent,
        writes_planned=int(len(writers) * spec.rate * spec.duration),
        other_cpu_percent=other_pct,
    )
    result = rate_result(target, spec, col, reasons)
    result.update(
        {
            "clients": len(sessions),
            "measuring_clients_per_room": spec.measure or spec.clients,
            "acks_expected": col.acks_expected if has_acks else None,
            "writes_planned": planned,
            "target_rate": len(writers) * spec.rate,
            "wall_s": wall,
            "server_cpu_pct": srv_pct,
            "generator_cpu_pct": gen_pct,
            "loop_lag_p99_ms": lag.p99_ms(),
            "send_lag_p99_ms": send_lag_p99,
            "other_cpu_pct": other_pct,
            "steal_cpu_pct": steal_pct,
        }
    )
    if not has_acks:
        result["writes_acked"] = None
        result["ack_latency_ms"] = None
    return result


async def _run_rate_node(target: Target, spec: RateSpec, progress: ProgressFn) -> dict[str, Any]:
    """The same steady load, driven by the Node Yjs client (bench/peers/yjs_load.mjs)."""
    assert target.yjs_driver is not None
    config = {
        "host": target.host,
        "port": target.port,
        "protocol": target.protocol,
        "rooms": spec.rooms,
        "clients": spec.clients,
        "rate": spec.rate,
        "duration": spec.duration,
        "warmup": spec.warmup,
        "pad": spec.pad,
        "slow_reader": spec.slow_reader,
        "drain_timeout": spec.drain_timeout,
        "room_prefix": f"bench-{spec.room_prefix or 'r'}",
        "server_pid": target.server_pid,
    }
    progress("load (node)", 0, spec.warmup + spec.duration)
    proc = await asyncio.create_subprocess_exec(
        "node",
        "--single-threaded",  # as the Node servers: no V8 helper threads on a pinned core
        target.yjs_driver,
        json.dumps(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"yjs_load.mjs failed: {err.decode(errors='replace')[-500:]}")
    raw = json.loads(out)
    col = Collector()
    col.writes_sent = raw["writes_sent"]
    col.deliveries_expected = raw["deliveries_expected"]
    col.deliveries_received = raw["deliveries_received"]
    col.duplicates = raw["duplicates"]
    col.delivery_ns = array("q", (int(x) for x in raw["delivery_ns"]))
    for code, n in raw["closes"].items():
        col.closes[int(code)] += n
    reasons = saturation_reasons(
        generator_cpu_percent=raw["generator_cpu_pct"],
        loop_lag_p99_ms=raw["loop_lag_p99_ms"],
        send_lag_p99_ms=raw["send_lag_p99_ms"],
        writes_sent=col.writes_sent,
        writes_planned=int(
            (spec.clients * spec.rooms - spec.slow_reader) * spec.rate * spec.duration
        ),
        other_cpu_percent=raw["other_cpu_pct"],
    )
    writers = spec.clients * spec.rooms - (1 if spec.slow_reader else 0)
    result = rate_result(target, spec, col, reasons)
    result.update(
        {
            "generator": "node yjs_load.mjs",
            "clients": spec.clients * spec.rooms,
            "writes_planned": raw["writes_planned"],
            "target_rate": writers * spec.rate,
            "wall_s": raw["wall_s"],
            "server_cpu_pct": raw["server_cpu_pct"],
            "generator_cpu_pct": raw["generator_cpu_pct"],
            "loop_lag_p99_ms": raw["loop_lag_p99_ms"],
            "send_lag_p99_ms": raw["send_lag_p99_ms"],
            "other_cpu_pct": raw["other_cpu_pct"],
            "steal_cpu_pct": raw["steal_cpu_pct"],
            "writes_acked": None,
            "ack_latency_ms": None,
        }
    )
    progress("done", 1, 1)
    return result


def rate_result(
    target: Target, spec: RateSpec, col: Collector, reasons: list[str]
) -> dict[str, Any]:
    """A steady-rate run's fields, whichever generator drove it: the common
    ones, the scenario, the rates, the server's memory at the end."""
    result = base_result(target, "rate", col, reasons)
    receivers_per_write = col.deliveries_expected / col.writes_sent if col.writes_sent else 0.0
    result.update(
        {
            "rooms": spec.rooms,
            "clients_per_room": spec.clients,
            "rate_per_client": spec.rate,
            "duration_s": spec.duration,
            "warmup_s": spec.warmup,
            "pad_bytes": spec.pad,
            "slow_reader": spec.slow_reader,
            "send_rate": col.writes_sent / spec.duration,
            "achieved_rate": (
                col.deliveries_received / receivers_per_write / spec.duration
                if receivers_per_write
                else 0.0
            ),
        }
    )
    if target.server_pid:
        result["server_rss_mib"] = procstat.rss_bytes(target.server_pid) / 2**20
    return result


def base_result(target: Target, kind: str, col: Collector, reasons: list[str]) -> dict[str, Any]:
    """The fields every result has (JSON schema 'intelgraph-collab-bench/1')."""
    latency = summarize_ns(col.delivery_ns)
    ack = summarize_ns(col.ack_ns)
    saturated = bool(reasons)
    return {
        "schema": "intelgraph-collab-bench/1",
        "kind": kind,
        "target": target.label or target.protocol,
        "protocol": target.protocol,
        "url": target.url,
        "server_pid": target.server_pid,
        "writes_sent": col.writes_sent,
        "writes_acked": col.writes_acked,
        "deliveries_expected": col.deliveries_expected,
        "deliveries_received": col.deliveries_received,
        "lost": max(0, col.deliveries_expected - col.deliveries_received),
        "duplicates": col.duplicates,
        "latency_ms": None if saturated or latency is None else latency.as_dict(),
        "ack_latency_ms": None if saturated or ack is None else ack.as_dict(),
        "unreliable_latency_ms": latency.as_dict() if saturated and latency else None,
        "saturated": saturated,
        "saturation": reasons,
        "errors": dict(col.errors),
        "closes": {str(k): v for k, v in col.closes.items()},
    }


# -- ramp ------------------------------------------------------------------

RAMP_STEPS: tuple[int, ...] = (
    250,
    500,
    1000,
    1500,
    2000,
    2500,
    3000,
    4000,
    5000,
    6000,
    8000,
    10000,
    12000,
    16000,
)


def step_passes(step: dict[str, Any], p99_limit_ms: float) -> bool:
    """A ramp step is sustained: no loss, p99 within the limit, rate kept."""
    lat = step.get("latency_ms")
    return (
        not step["saturated"]
        and step["lost"] == 0
        and lat is not None
        and lat["p99"] <= p99_limit_ms
        and step["achieved_rate"] >= 0.95 * step["target_rate"]
    )


async def run_ramp(
    target: Target,
    spec: RateSpec,
    *,
    steps: tuple[int, ...] = RAMP_STEPS,
    p99_limit_ms: float = 100.0,
    progress: ProgressFn = _no_progress,
) -> dict[str, Any]:
    """Raise the room's total write rate step by step until p99 > limit or loss."""
    results: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    stop_reason = "ladder exhausted"
    for total in steps:
        step_spec = RateSpec(
            rooms=1,
            clients=spec.clients,
            rate=total / spec.clients,
            duration=spec.duration,
            warmup=spec.warmup,
            pad=spec.pad,
            measure=spec.measure,
            drain_timeout=spec.drain_timeout,
            room_prefix=f"ramp{total}",
        )

        def step_progress(label: str, done: float, of: float, total: int = total) -> None:
            progress(f"ramp {total}/s {label}", done, of)

        step = await run_rate(target, step_spec, step_progress)
        if step["saturated"] or not step_passes(step, p99_limit_ms):
            # This machine is shared and noisy: a step fails only if it fails twice.
            step["retried"] = True
            results.append(step)
            await asyncio.sleep(0.5)
            step = await run_rate(target, step_spec, step_progress)
        results.append(step)
        if step["saturated"]:
            stop_reason = "generator saturated: " + "; ".join(step["saturation"])
            break
        if not step_passes(step, p99_limit_ms):
            lat = step["latency_ms"]
            stop_reason = (
                f"at {total}/s: p99 {lat['p99']:.1f} ms, lost {step['lost']},"
                f" achieved {step['achieved_rate']:.0f}/s"
                if lat
                else f"at {total}/s: no deliveries"
            )
            break
        best = step
        await asyncio.sleep(0.3)
    last = results[-1]
    return {
        "schema": "intelgraph-collab-bench/1",
        "kind": "ramp",
        "target": target.label or target.protocol,
        "protocol": target.protocol,
        "clients": spec.clients,
        "rooms": 1,
        "duration_s": spec.duration,
        "p99_limit_ms": p99_limit_ms,
        "measuring_clients": spec.measure or spec.clients,
        "max_sustained_rate": best["target_rate"] if best else None,
        "generator_bound": bool(last["saturated"]),
        "stop_reason": stop_reason,
        "best_step": best,
        "steps": results,
    }


async def run_slow_reader(
    target: Target, spec: RateSpec, progress: ProgressFn = _no_progress
) -> dict[str, Any]:
    """The same room with and without one client that stops reading."""
    runs: dict[str, dict[str, Any]] = {}
    for label, slow in (("without", False), ("with", True)):
        s = RateSpec(**{**spec.__dict__, "slow_reader": slow, "room_prefix": f"slow{label}"})

        def p(lbl: str, done: float, of: float, label: str = label) -> None:
            progress(f"{label} slow reader: {lbl}", done, of)

        runs[label] = await run_rate(target, s, p)
        await asyncio.sleep(0.3)
    a = runs["without"].get("latency_ms")
    b = runs["with"].get("latency_ms")
    return {
        "schema": "intelgraph-collab-bench/1",
        "kind": "slow-reader",
        "target": target.label or target.protocol,
        "protocol": target.protocol,
        "clients": spec.clients,
        "rooms": 1,
        "rate_per_client": spec.rate,
        "duration_s": spec.duration,
        "p99_without_ms": a["p99"] if a else None,
        "p99_with_ms": b["p99"] if b else None,
        "p99_ratio": (b["p99"] / a["p99"]) if a and b and a["p99"] else None,
        "lost_with": runs["with"]["lost"],
        "slow_reader_closed_with": runs["with"]["closes"],
        "runs": runs,
    }


# -- reconnect, big graph ----------------------------------------------------


async def _populate(
    target: Target,
    room: str,
    count: int,
    col: Collector,
    progress: ProgressFn,
    *,
    id_prefix: str,
    limit_s: float,
) -> tuple[Session, Session, float]:
    """Fill `room` with `count` writes creating distinct annotations.

    Returns (writer, observer, seconds). Done when an observer client in the
    room has received every one of them, so the server holds them all.
    """
    writer = new_session(target, 1, room, col)
    observer = new_session(target, 2, room, col)
    await writer.open(target.host, target.port)
    await observer.open(target.host, target.port)
    seen = 0
    done = asyncio.get_running_loop().create_future()

    def on_populated(n: int) -> None:
        nonlocal seen
        seen += n
        if seen >= count and not done.done():
            done.set_result(None)

    observer.on_populated = on_populated
    t0 = time.monotonic()
    per_frame = 1000 if target.protocol in ("y-websocket", "hocuspocus") else 200
    step = 5000
    sent = 0
    while sent < count:
        n = min(step, count - sent)
        writer.write_many(n, id_prefix, per_frame)
        sent += n
        # Keep at most two steps in flight: the server's input buffers stay bounded.
        # Polls a counter: flow control, not an event.
        while seen < sent - step and time.monotonic() - t0 < limit_s:  # noqa: ASYNC110
            _check_open(writer, col)
            await asyncio.sleep(0.01)
        progress("populate", seen, count)
    while not done.done() and time.monotonic() - t0 < limit_s:  # noqa: ASYNC110
        _check_open(writer, col)
        await asyncio.sleep(0.01)
    if not done.done():
        raise RuntimeError(f"populate: observer saw {seen} of {count} writes")
    progress("populate", count, count)
    observer.on_populated = None
    return writer, observer, time.monotonic() - t0


def _check_open(session: Session, col: Collector) -> None:
    ws = session.ws
    if ws is not None and ws.closed.done():
        raise RuntimeError(
            f"the server closed the writer ({ws.close_code}); errors: {dict(col.errors)}"
        )


async def run_reconnect(
    target: Target,
    missed: int = 10_000,
    progress: ProgressFn = _no_progress,
    limit_s: float = 120.0,
) -> dict[str, Any]:
    """A client misses `missed` writes, then comes back (with `since`): time to live."""
    col = Collector()
    room = room_name("reconnect", 0)
    client = new_session(target, 0, room, col)
    await client.open(target.host, target.port)
    await client.aclose()
    await asyncio.sleep(0.1)
    since = getattr(client, "seq", None)
    writer, observer, populate_s = await _populate(
        target, room, missed, col, progress, id_prefix="m", limit_s=limit_s
    )
    srv_rss = procstat.rss_bytes(target.server_pid) if target.server_pid else None
    t0 = time.monotonic_ns()
    await client.open(target.host, target.port, since=since, limit_s=limit_s)
    ready_ms = (client.ready_ns - t0) / 1e6
    # Live: the next write reaches the client.
    col.open_window(now_us(), 1 << 62)
    writer.write(2)
    deadline = time.monotonic() + 5
    while col.deliveries_received < 2 and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.001)
    live = summarize_ns(col.delivery_ns)
    await close_all((client, writer, observer))
    return {
        "schema": "intelgraph-collab-bench/1",
        "kind": "reconnect",
        "target": target.label or target.protocol,
        "protocol": target.protocol,
        "missed_writes": missed,
        "since": since,
        "first_message_items": client.state_count,
        "time_to_live_ms": ready_ms,
        "next_write_latency_ms": live.max if live else None,
        "populate_s": populate_s,
        "server_rss_mib": srv_rss / 2**20 if srv_rss else None,
        "errors": dict(col.errors),
    }


async def run_big_graph(
    target: Target,
    annotations: int = 100_000,
    progress: ProgressFn = _no_progress,
    limit_s: float = 240.0,
) -> dict[str, Any]:
    """A graph of `annotations`: time from connect to its initial state applied."""
    col = Collector()
    room = room_name("big", 0)
    writer, observer, populate_s = await _populate(
        target, room, annotations, col, progress, id_prefix="g", limit_s=limit_s
    )
    srv_rss = procstat.rss_bytes(target.server_pid) if target.server_pid else None
    times = []
    counts = []
    for i in range(3):
        fresh = new_session(target, 10 + i, room, col)
        t0 = time.monotonic_ns()
        await fresh.open(target.host, target.port, limit_s=limit_s)
        times.append((fresh.ready_ns - t0) / 1e6)
        counts.append(fresh.state_count)
        await fresh.aclose()
        await asyncio.sleep(0.2)
    await close_all((writer, observer))
    return {
        "schema": "intelgraph-collab-bench/1",
        "kind": "big-graph",
        "target": target.label or target.protocol,
        "protocol": target.protocol,
        "annotations": annotations,
        "initial_state_items": counts,
        "time_to_state_ms": sorted(times)[len(times) // 2],
        "time_to_state_all_ms": times,
        "populate_s": populate_s,
        "server_rss_mib": srv_rss / 2**20 if srv_rss else None,
        "errors": dict(col.errors),
    }


# -- idle connections, room churn -------------------------------------------


async def _settled_rss(pid: int, settle: float) -> int:
    await asyncio.sleep(settle)
    return procstat.rss_bytes(pid)


async def run_idle(
    target: Target,
    connections: int = 5000,
    per_room: int = 50,
    progress: ProgressFn = _no_progress,
    settle: float = 2.0,
) -> dict[str, Any]:
    """Server memory per idle connection (RSS delta by pid)."""
    if not target.server_pid:
        raise SystemExit("the idle preset needs --server-pid")
    col = Collector()
    warm = new_session(target, 0, room_name("idlewarm", 0), col)
    await warm.open(target.host, target.port)
    await warm.aclose()
    base = await _settled_rss(target.server_pid, settle)
    rooms = max(1, connections // per_room)
    names = [room_name("idle", r) for r in range(rooms)]
    sessions = [new_session(target, i, names[i % rooms], col) for i in range(connections)]
    t0 = time.monotonic()
    await open_all(target, sessions, concurrency=200, progress=progress)
    connect_s = time.monotonic() - t0
    loaded = await _settled_rss(target.server_pid, settle)
    await close_all(sessions)
    closed = await _settled_rss(target.server_pid, settle * 2)
    return {
        "schema": "intelgraph-collab-bench/1",
        "kind": "idle",
        "target": target.label or target.protocol,
        "protocol": target.protocol,
        "connections": connections,
        "rooms": rooms,
        "connect_s": connect_s,
        "rss_base_mib": base / 2**20,
        "rss_loaded_mib": loaded / 2**20,
        "rss_after_close_mib": closed / 2**20,
        "kib_per_connection": (loaded - base) / connections / 1024,
        "errors": dict(col.errors),
        "closes": {str(k): v for k, v in col.closes.items()},
    }


async def run_room_churn(
    target: Target,
    graphs: int = 1000,
    progress: ProgressFn = _no_progress,
    settle: float = 5.0,
) -> dict[str, Any]:
    """Open `graphs` graphs (one client, one write each), close them: does RSS return?"""
    if not target.server_pid:
        raise SystemExit("the room-churn preset needs --server-pid")
    col = Collector()
    base = await _settled_rss(target.server_pid, 1.0)
    gate = asyncio.Semaphore(50)
    done = 0
    failed = 0

    async def one(i: int) -> None:
        nonlocal done, failed
        async with gate:
            s = new_session(target, i, room_name("churn", i), col)
            try:
                await s.open(target.host, target.port, limit_s=10.0)
                s.write(0)
                await asyncio.sleep(0.05)
            except (ConnectionError, OSError, TimeoutError):
                failed += 1
            finally:
                await s.aclose()
        done += 1
        if done % 50 == 0:
            progress("churn", done, graphs)

    await asyncio.gather(*(one(i) for i in range(graphs)))
    if not procstat.process_alive(target.server_pid):
        raise RuntimeError(f"the server exited during room churn ({failed} failed connections)")
    peak = procstat.rss_bytes(target.server_pid)
    after = await _settled_rss(target.server_pid, settle)
    return {
        "schema": "intelgraph-collab-bench/1",
        "kind": "room-churn",
        "target": target.label or target.protocol,
        "protocol": target.protocol,
        "graphs": graphs,
        "failed_connections": failed,
        "rss_base_mib": base / 2**20,
        "rss_peak_mib": peak / 2**20,
        "rss_after_mib": after / 2**20,
        "rss_growth_mib": (after - base) / 2**20,
        "settle_s": settle,
        "errors": dict(col.errors),
    }
