"""Rendering results: rich tables for people, JSON for machines."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def fmt(value: Any, digits: int = 2, unit: str = "") -> str:
    """A table cell: '—' for a figure that was not measured."""
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.{digits}f}{unit}"
    if isinstance(value, int):
        return f"{value:,}{unit}"
    return f"{value}{unit}"


def latency_cells(lat: dict[str, Any] | None) -> str:
    if not lat:
        return "—"
    return " / ".join(fmt(lat[k]) for k in ("p50", "p90", "p99", "p999", "max"))


def rate_rows(r: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [
        ("target", f"{r['target']} ({r['protocol']}, {r.get('url', '')})"),
        ("clients x rooms", f"{r['clients']} ({r['clients_per_room']} per room x {r['rooms']})"),
        ("rate per client", fmt(r["rate_per_client"], 1, " writes/s")),
        ("duration", fmt(r["duration_s"], 1, " s") + f" (+{fmt(r['warmup_s'], 1)} s warm-up)"),
        (
            "writes sent / acked",
            f"{fmt(r['writes_sent'])} / {fmt(r['writes_acked'])}"
            + (
                f" (of {fmt(r['acks_expected'])} read by measuring clients)"
                if r.get("acks_expected") not in (None, r["writes_sent"])
                else ""
            ),
        ),
        (
            "deliveries expected / received (lost)",
            f"{fmt(r['deliveries_expected'])} / {fmt(r['deliveries_received'])} ({fmt(r['lost'])})",
        ),
        ("delivery latency ms p50/p90/p99/p99.9/max", latency_cells(r["latency_ms"])),
        ("ack latency ms p50/p90/p99/p99.9/max", latency_cells(r["ack_latency_ms"])),
        (
            "achieved rate (target)",
            f"{fmt(r['achieved_rate'], 0)} writes/s ({fmt(r['target_rate'], 0)})",
        ),
        ("server CPU", fmt(r.get("server_cpu_pct"), 0, " %")),
        ("generator CPU", fmt(r.get("generator_cpu_pct"), 0, " %")),
        ("generator loop lag p99", fmt(r.get("loop_lag_p99_ms"), 2, " ms")),
        (
            "other processes' CPU (VM steal)",
            fmt(r.get("other_cpu_pct"), 0, " %") + f" ({fmt(r.get('steal_cpu_pct'), 0, ' %')})",
        ),
    ]
    if r.get("server_rss_mib") is not None:
        rows.append(("server RSS", fmt(r["server_rss_mib"], 1, " MiB")))
    if r.get("errors"):
        rows.append(("errors", str(r["errors"])))
    if r.get("closes"):
        rows.append(("closes", str(r["closes"])))
    return rows


def render(result: dict[str, Any], console: Console, title: str = "") -> None:
    kind = result["kind"]
    if result.get("saturated"):
        console.print(
            "[bold red]warning: the generator was saturated; no latency figure reported:[/] "
            + "; ".join(result["saturation"])
        )
    if kind == "rate":
        table = Table(title=title or "bench", show_header=False)
        table.add_column("metric", style="bold")
        table.add_column("value")
        for name, value in rate_rows(result):
            table.add_row(name, value)
        console.print(table)
    elif kind == "ramp":
        table = Table(title=title or f"ramp: 1 room x {result['clients']} clients")
        for col in (
            "target writes/s",
            "achieved",
            "p50 ms",
            "p99 ms",
            "max ms",
            "lost",
            "server CPU %",
            "gen CPU %",
            "ok",
        ):
            table.add_column(col, justify="right")
        for step in result["steps"]:
            lat = step["latency_ms"] or {}
            table.add_row(
                fmt(step["target_rate"], 0),
                fmt(step["achieved_rate"], 0),
                fmt(lat.get("p50")),
                fmt(lat.get("p99")),
                fmt(lat.get("max")),
                fmt(step["lost"]),
                fmt(step.get("server_cpu_pct"), 0),
                fmt(step.get("generator_cpu_pct"), 0),
                "saturated"
                if step["saturated"]
                else ("yes" if step is result["best_step"] or _passed(step, result) else "no"),
            )
        console.print(table)
        bound = " (generator-bound: the server may go higher)" if result["generator_bound"] else ""
        console.print(
            f"highest sustained rate: [bold]{fmt(result['max_sustained_rate'])} writes/s[/]"
            f"{bound}; stopped: {result['stop_reason']}"
        )
    elif kind == "slow-reader":
        for label in ("without", "with"):
            render(result["runs"][label], console, f"{label} a slow reader")
        console.print(
            f"others' p99: {fmt(result['p99_without_ms'])} ms without, "
            f"{fmt(result['p99_with_ms'])} ms with a slow reader "
            f"(ratio {fmt(result['p99_ratio'])}); slow reader's close codes: "
            f"{result['slow_reader_closed_with'] or 'none'}"
        )
    else:
        table = Table(title=title or kind, show_header=False)
        table.add_column("metric", style="bold")
        table.add_column("value")
        for key, value in result.items():
            if key in ("schema",):
                continue
            table.add_row(key, fmt(value) if not isinstance(value, (dict, list)) else str(value))
        console.print(table)


def _passed(step: dict[str, Any], result: dict[str, Any]) -> bool:
    best = result.get("best_step")
    return best is not None and bool(step["target_rate"] <= best["target_rate"])
