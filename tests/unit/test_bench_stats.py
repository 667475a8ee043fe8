"""The load generator's pure statistics: percentiles, summaries, saturation."""

from __future__ import annotations

import random

import pytest

from intelgraph_collab.bench.collector import Collector, DeliveryTracker
from intelgraph_collab.bench.stats import (
    SaturationLimits,
    cpu_percent,
    percentile,
    ratio,
    saturation_reasons,
    summarize_ns,
)


def test_percentile_nearest_rank_of_1_to_100() -> None:
    values = list(range(1, 101))
    assert percentile(values, 0.50) == 50
    assert percentile(values, 0.90) == 90
    assert percentile(values, 0.99) == 99
    assert percentile(values, 0.999) == 100
    assert percentile(values, 1.0) == 100


def test_percentile_is_always_an_observed_sample() -> None:
    rng = random.Random(7)
    values = sorted(rng.random() for _ in range(37))
    for q in (0.01, 0.5, 0.9, 0.99, 0.999, 1.0):
        assert percentile(values, q) in values


def test_percentile_of_one_sample_is_that_sample() -> None:
    assert percentile([4.2], 0.5) == 4.2
    assert percentile([4.2], 0.999) == 4.2


def test_percentile_is_monotonic_in_q() -> None:
    rng = random.Random(11)
    values = sorted(rng.expovariate(1.0) for _ in range(1000))
    qs = [0.1, 0.5, 0.9, 0.99, 0.999, 1.0]
    got = [percentile(values, q) for q in qs]
    assert got == sorted(got)


@pytest.mark.parametrize("q", [0.0, -0.1, 1.5])
def test_percentile_rejects_fractions_out_of_range(q: float) -> None:
    with pytest.raises(ValueError):
        percentile([1, 2, 3], q)


def test_percentile_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError):
        percentile([], 0.5)


def test_summarize_converts_ns_to_ms_and_sorts() -> None:
    samples = [3_000_000, 1_000_000, 2_000_000, 10_000_000]  # 3, 1, 2, 10 ms
    s = summarize_ns(samples)
    assert s is not None
    assert s.count == 4
    assert s.p50 == pytest.approx(2.0)
    assert s.max == pytest.approx(10.0)
    assert s.mean == pytest.approx(4.0)
    assert s.p50 <= s.p90 <= s.p99 <= s.p999 <= s.max


def test_summarize_of_no_samples_is_none_not_zero() -> None:
    assert summarize_ns([]) is None


def test_cpu_percent_is_relative_to_one_core() -> None:
    assert cpu_percent(100, 1.0, 100) == pytest.approx(100.0)
    assert cpu_percent(50, 2.0, 100) == pytest.approx(25.0)
    assert cpu_percent(400, 2.0, 100) == pytest.approx(200.0)  # two busy cores
    with pytest.raises(ValueError):
        cpu_percent(1, 0.0, 100)


def _reasons(**overrides: object) -> list[str]:
    kwargs: dict[str, object] = {
        "generator_cpu_percent": 30.0,
        "loop_lag_p99_ms": 1.0,
        "send_lag_p99_ms": 1.0,
        "writes_sent": 1000,
        "writes_planned": 1000,
    }
    kwargs.update(overrides)
    return saturation_reasons(**kwargs)  # type: ignore[arg-type]


def test_an_idle_generator_is_not_saturated() -> None:
    assert _reasons() == []


def test_unknown_figures_do_not_count_as_saturation() -> None:
    assert _reasons(generator_cpu_percent=None, loop_lag_p99_ms=None, send_lag_p99_ms=None) == []


@pytest.mark.parametrize(
    ("overrides", "word"),
    [
        ({"generator_cpu_percent": 97.0}, "CPU"),
        ({"loop_lag_p99_ms": 45.0}, "event-loop lag"),
        ({"send_lag_p99_ms": 60.0}, "send-schedule lag"),
        ({"writes_sent": 800}, "sent only 800 of 1000"),
    ],
)
def test_each_saturation_signal_is_reported(overrides: dict[str, object], word: str) -> None:
    reasons = _reasons(**overrides)
    assert len(reasons) == 1
    assert word in reasons[0]


def test_a_busy_machine_is_named_as_the_likely_cause() -> None:
    reasons = _reasons(loop_lag_p99_ms=200.0, other_cpu_percent=140.0)
    assert any("machine was busy" in r for r in reasons)
    # ...but only when something else already flags the run.
    assert _reasons(other_cpu_percent=140.0) == []


def test_limits_are_configurable() -> None:
    strict = SaturationLimits(max_cpu_percent=20.0)
    assert saturation_reasons(
        generator_cpu_percent=30.0,
        loop_lag_p99_ms=None,
        send_lag_p99_ms=None,
        writes_sent=1,
        writes_planned=1,
        limits=strict,
    )


def test_ratio_handles_missing_figures() -> None:
    assert ratio(3.0, 2.0) == pytest.approx(1.5)
    assert ratio(None, 2.0) is None
    assert ratio(3.0, None) is None
    assert ratio(3.0, 0.0) is None


def test_collector_counts_only_writes_inside_the_window() -> None:
    col = Collector()
    col.open_window(1_000, 2_000)
    col.sent(999, receivers=3)  # warm-up
    col.sent(1_000, receivers=3)
    col.sent(1_999, receivers=3)
    col.sent(2_000, receivers=3)  # after the window
    assert col.writes_sent == 2
    assert col.deliveries_expected == 6


def test_tracker_counts_each_delivery_once_and_flags_duplicates() -> None:
    col = Collector()
    col.open_window(0, 10_000)
    tracker = DeliveryTracker(col)
    now_ns = 5_000_000
    tracker.deliver(writer=1, index=0, t_us=1_000, now_ns=now_ns)
    tracker.deliver(writer=1, index=1, t_us=2_000, now_ns=now_ns)
    tracker.deliver(writer=1, index=1, t_us=2_000, now_ns=now_ns)  # duplicate
    tracker.deliver(writer=2, index=0, t_us=1_000, now_ns=now_ns)
    tracker.deliver(writer=2, index=5, t_us=20_000, now_ns=now_ns)  # outside the window
    assert col.deliveries_received == 3
    assert col.duplicates == 1
    # latency = now - send time: 5 ms - 1 ms, 5 ms - 2 ms, 5 ms - 1 ms
    assert sorted(col.delivery_ns) == [3_000_000, 4_000_000, 4_000_000]


def test_tracker_accepts_writes_out_of_order() -> None:
    # A Yjs server may merge updates: one map event, keys in any order.
    col = Collector()
    col.open_window(0, 10_000)
    tracker = DeliveryTracker(col)
    for index in (3, 1, 2, 0):
        tracker.deliver(writer=7, index=index, t_us=1_000, now_ns=2_000_000)
    assert col.deliveries_received == 4
    assert col.duplicates == 0
