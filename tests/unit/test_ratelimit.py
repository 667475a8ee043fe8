"""Token buckets and connection counting (ratelimit.py), on a fake clock."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from intelgraph_collab.ratelimit import (
    ConnectionLimiter,
    ConnectionSettings,
    MessageRateLimiter,
    RateSettings,
    TokenBucket,
    Verdict,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_a_burst_then_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10, capacity=5, clock=clock)
    assert [bucket.take() for _ in range(6)] == [True] * 5 + [False]
    clock.now += 0.25  # 2.5 tokens back
    assert [bucket.take() for _ in range(3)] == [True, True, False]
    clock.now += 100  # refills only up to the capacity
    assert sum(bucket.take() for _ in range(10)) == 5


@given(st.lists(st.floats(min_value=0, max_value=2), min_size=1, max_size=200))
def test_bucket_never_allows_more_than_burst_plus_rate_times_time(gaps: list[float]) -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10, capacity=5, clock=clock)
    start, allowed = clock.now, 0
    for gap in gaps:
        clock.now += gap
        allowed += bucket.take()
    assert allowed <= 5 + 10 * (clock.now - start) + 1e-6


def test_flood_is_refused_then_closed_and_forgiven_when_it_stops() -> None:
    clock = FakeClock()
    limiter = MessageRateLimiter(RateSettings(rate=10, burst=20, close_after=5), clock)
    verdicts = [limiter.check() for _ in range(26)]
    assert verdicts[:20] == [Verdict.ALLOW] * 20
    assert verdicts[20:25] == [Verdict.REFUSE] * 5
    assert verdicts[25] is Verdict.CLOSE
    # A client that slows down after a few refusals is forgiven.
    polite = MessageRateLimiter(RateSettings(rate=10, burst=20, close_after=5), clock)
    for _ in range(23):
        polite.check()
    clock.now += 10
    assert [polite.check() for _ in range(20)] == [Verdict.ALLOW] * 20


def test_rate_zero_turns_the_limit_off() -> None:
    limiter = MessageRateLimiter(RateSettings(rate=0, burst=1, close_after=1), FakeClock())
    assert all(limiter.check() is Verdict.ALLOW for _ in range(10_000))


def test_connections_per_user_and_per_graph() -> None:
    limiter = ConnectionLimiter(ConnectionSettings(per_user=2, per_graph=3))
    assert limiter.admit("alice", "g1") is None
    assert limiter.admit("alice", "g2") is None
    refused = limiter.admit("alice", "g3")
    assert refused is not None and refused[0] == 1008
    assert limiter.admit("bob", "g1") is None
    assert limiter.admit(None, "g1") is None  # auth off: not counted per user
    full = limiter.admit("carol", "g1")
    assert full is not None and full[0] == 1013
    limiter.release("alice", "g1")
    assert limiter.admit("alice", "g1") is None
    # Releasing what was admitted brings the counts back to nothing.
    for user, graph in [("alice", "g1"), ("alice", "g2"), ("bob", "g1"), (None, "g1")]:
        limiter.release(user, graph)
    assert limiter.admit("alice", "g1") is None and limiter.admit("alice", "g1") is None


def test_zero_means_unlimited() -> None:
    limiter = ConnectionLimiter(ConnectionSettings(per_user=0, per_graph=0))
    assert all(limiter.admit("alice", "g1") is None for _ in range(1000))
