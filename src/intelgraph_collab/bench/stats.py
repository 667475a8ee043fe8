"""Pure statistics of the load generator: percentiles, CPU shares, saturation.

No I/O here: everything takes numbers and returns numbers, so it is tested
without a server (tests/unit/test_bench_stats.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

#: The percentiles every latency summary reports, as (name, fraction).
PERCENTILES: tuple[tuple[str, float], ...] = (
    ("p50", 0.50),
    ("p90", 0.90),
    ("p99", 0.99),
    ("p999", 0.999),
)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile `q` (0 < q <= 1) of already sorted values.

    Nearest rank: the smallest value such that at least q of the samples are
    <= it. Never interpolates, so the result is always an observed sample
    (p99 of 100 samples is the 99th smallest, p100 the max).
    """
    if not sorted_values:
        raise ValueError("percentile of no samples")
    if not 0.0 < q <= 1.0:
        raise ValueError(f"percentile fraction out of range: {q}")
    rank = math.ceil(q * len(sorted_values))
    return sorted_values[max(rank, 1) - 1]


@dataclass(frozen=True)
class LatencySummary:
    """Latency percentiles in milliseconds over `count` samples."""

    count: int
    mean: float
    p50: float
    p90: float
    p99: float
    p999: float
    max: float

    def as_dict(self) -> dict[str, float | int]:
        return {
            "count": self.count,
            "mean": self.mean,
            "p50": self.p50,
            "p90": self.p90,
            "p99": self.p99,
            "p999": self.p999,
            "max": self.max,
        }


def summarize_ns(samples_ns: Iterable[int]) -> LatencySummary | None:
    """Summarise latency samples given in nanoseconds, as milliseconds.

    None when there are no samples (a figure that was not measured is not 0).
    """
    ordered = sorted(samples_ns)
    if not ordered:
        return None
    to_ms = 1e-6
    return LatencySummary(
        count=len(ordered),
        mean=sum(ordered) / len(ordered) * to_ms,
        p50=percentile(ordered, 0.50) * to_ms,
        p90=percentile(ordered, 0.90) * to_ms,
        p99=percentile(ordered, 0.99) * to_ms,
        p999=percentile(ordered, 0.999) * to_ms,
        max=ordered[-1] * to_ms,
    )


def cpu_percent(ticks_delta: int, wall_seconds: float, ticks_per_second: int) -> float:
    """CPU use as a percentage of one core over a wall-clock interval.

    `ticks_delta` is utime+stime growth in clock ticks (/proc/PID/stat). A
    process using two cores fully reads 200.
    """
    if wall_seconds <= 0:
        raise ValueError("empty interval")
    return 100.0 * ticks_delta / ticks_per_second / wall_seconds


@dataclass(frozen=True)
class SaturationLimits:
    """When the generator's own figures stop being trustworthy.

    The generator is one asyncio process on one core: past ~90 % CPU, or
    when its event loop falls behind its timers or its send schedule by
    tens of milliseconds, latencies it measures include its own queueing.
    """

    max_cpu_percent: float = 90.0
    max_loop_lag_ms: float = 20.0
    max_send_lag_ms: float = 20.0
    min_send_ratio: float = 0.95


def saturation_reasons(
    *,
    generator_cpu_percent: float | None,
    loop_lag_p99_ms: float | None,
    send_lag_p99_ms: float | None,
    writes_sent: int,
    writes_planned: int,
    other_cpu_percent: float | None = None,
    limits: SaturationLimits = SaturationLimits(),
) -> list[str]:
    """Why the generator was saturated during a run; empty when it was not.

    A saturated run reports no latency figure: the number would describe
    the generator, not the server.
    """
    reasons: list[str] = []
    if generator_cpu_percent is not None and generator_cpu_percent >= limits.max_cpu_percent:
        reasons.append(
            f"generator CPU {generator_cpu_percent:.0f}% >= {limits.max_cpu_percent:.0f}%"
        )
    if loop_lag_p99_ms is not None and loop_lag_p99_ms > limits.max_loop_lag_ms:
        reasons.append(
            f"generator event-loop lag p99 {loop_lag_p99_ms:.1f} ms"
            f" > {limits.max_loop_lag_ms:.0f} ms"
        )
    if send_lag_p99_ms is not None and send_lag_p99_ms > limits.max_send_lag_ms:
        reasons.append(
            f"generator send-schedule lag p99 {send_lag_p99_ms:.1f} ms"
            f" > {limits.max_send_lag_ms:.0f} ms"
        )
    if writes_planned > 0 and writes_sent < limits.min_send_ratio * writes_planned:
        reasons.append(f"generator sent only {writes_sent} of {writes_planned} planned writes")
    if reasons and other_cpu_percent is not None and other_cpu_percent >= 50.0:
        reasons.append(f"other processes used {other_cpu_percent:.0f}% CPU: the machine was busy")
    return reasons


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, or None when either is missing or the denominator is 0."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator
