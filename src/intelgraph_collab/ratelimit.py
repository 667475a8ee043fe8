"""Abuse limits: a token bucket per connection, and connections per user and per graph.

A connection may send `rate` messages a second on average, in bursts of up
to `burst` (a reconnecting client resends its offline queue at once). Past
that, each message is refused with `rate_limited` and changes nothing. A
client that keeps flooding after being told (more than `close_after`
refusals, forgiven at a tenth of `rate`) is closed with 1008: its refusals
would cost the server more than its messages. Other connections have their
own buckets, so their traffic flows on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from .session import CLOSE_POLICY, CLOSE_TRY_AGAIN

Clock = Callable[[], float]


class TokenBucket:
    """`capacity` tokens, refilled at `rate` a second; `take` never blocks."""

    def __init__(self, rate: float, capacity: float, clock: Clock = time.monotonic) -> None:
        self.rate = rate
        self.capacity = capacity
        self.clock = clock
        self.tokens = capacity
        self._last = clock()

    def take(self, count: float = 1.0) -> bool:
        """Take `count` tokens if there are that many; False (nothing taken) if not."""
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self._last) * self.rate)
        self._last = now
        if self.tokens >= count:
            self.tokens -= count
            return True
        return False


class Verdict(Enum):
    ALLOW = "allow"
    REFUSE = "refuse"
    """Answer `rate_limited`; the message changes nothing."""
    CLOSE = "close"
    """The flood goes on: close the connection with 1008."""


@dataclass(frozen=True, slots=True)
class RateSettings:
    rate: float = 200.0
    """Messages a second a connection may send on average; 0 turns the limit off."""
    burst: int = 2000
    """Messages a connection may send at once (a batch counts each message)."""
    close_after: int = 1000
    """Refused messages, forgiven at rate/10 a second, before a 1008 close."""


class MessageRateLimiter:
    """The rate limit of one connection."""

    def __init__(self, settings: RateSettings, clock: Clock = time.monotonic) -> None:
        self.enabled = settings.rate > 0
        self._messages = TokenBucket(settings.rate, settings.burst, clock)
        self._patience = TokenBucket(settings.rate / 10, settings.close_after, clock)

    def check(self) -> Verdict:
        """The verdict on one more message."""
        if not self.enabled or self._messages.take():
            return Verdict.ALLOW
        return Verdict.REFUSE if self._patience.take() else Verdict.CLOSE


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    per_user: int = 20
    """Open connections one user (a token's `sub`) may hold; 0: unlimited."""
    per_graph: int = 1000
    """Open connections one graph may hold; 0: unlimited."""


class ConnectionLimiter:
    """Counts open connections per user and per graph. `admit` before serving
    a connection; `release` exactly once for each admitted one."""

    def __init__(self, settings: ConnectionSettings) -> None:
        self.settings = settings
        self._per_user: dict[str, int] = {}
        self._per_graph: dict[str, int] = {}

    def admit(self, user: str | None, graph_id: str) -> tuple[int, str] | None:
        """Count the connection in, or give the close code and reason why not
        (nothing counted then). Too many for the user is a policy violation
        (1008: retrying will not help until one closes); a full graph is an
        overload (1013: try again later). `user` None (auth off: names are
        self-declared) is not limited per user."""
        limit_user, limit_graph = self.settings.per_user, self.settings.per_graph
        if user is not None and limit_user and self._per_user.get(user, 0) >= limit_user:
            return CLOSE_POLICY, f"user already has {limit_user} connections open"
        if limit_graph and self._per_graph.get(graph_id, 0) >= limit_graph:
            return CLOSE_TRY_AGAIN, f"graph already has {limit_graph} connections open"
        if user is not None:
            self._per_user[user] = self._per_user.get(user, 0) + 1
        self._per_graph[graph_id] = self._per_graph.get(graph_id, 0) + 1
        return None

    def release(self, user: str | None, graph_id: str) -> None:
        if user is not None:
            _decrement(self._per_user, user)
        _decrement(self._per_graph, graph_id)


def _decrement(counts: dict[str, int], key: str) -> None:
    left = counts.get(key, 0) - 1
    if left > 0:
        counts[key] = left
    else:
        counts.pop(key, None)
