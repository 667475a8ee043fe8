"""The simulator's invariants are not vacuous: switch a mechanism off and
some seed fails.

- Dedupe off (no cache, no store lookup): resends are applied twice, and
  the checker reports them as duplicated.
- Gap detection off (clients apply a broadcast whatever its `prev`), in
  lossy runs: replicas silently miss writes, and the checker reports the
  divergence.
"""

from __future__ import annotations

import asyncio

import pytest

from intelgraph_collab.room import Room

from .sim.world import SimConfig, SimResult, run_world

SEEDS = range(0, 60)


def first_failure(**config: object) -> SimResult | None:
    async def search() -> SimResult | None:
        for seed in SEEDS:
            result = await run_world(SimConfig(seed, 300, **config))  # type: ignore[arg-type]
            if not result.ok:
                return result
        return None

    return asyncio.run(search())


class _Forgets(dict[tuple[str, str], int]):
    def __setitem__(self, key: tuple[str, str], value: int) -> None:
        return None


def test_without_dedupe_a_resend_is_reported_as_duplicated(monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_lookup(self: Room, pending: object) -> dict[tuple[str, str], int]:
        return _Forgets()

    monkeypatch.setattr(Room, "_lookup_duplicates", no_lookup)
    monkeypatch.setattr(Room, "_remember_op", lambda self, key, seq: None)
    failure = first_failure(backend="room", store="memory", lossy=False)
    assert failure is not None, "no seed caught writes applied twice"
    assert failure.report.duplicated > 0, failure.explain()


def test_without_gap_detection_lossy_runs_diverge() -> None:
    failure = first_failure(backend="room", store="memory", lossy=True, detect_gaps=False)
    assert failure is not None, "no seed caught a replica that missed a write"
    assert failure.error is not None or any(
        "diverged" in violation or " at seq " in violation
        for violation in failure.report.violations
    ), failure.explain()


def test_with_gap_detection_the_same_lossy_runs_converge() -> None:
    async def run() -> list[SimResult]:
        return [await run_world(SimConfig(seed, 300, lossy=True)) for seed in range(0, 20)]

    results = asyncio.run(run())
    assert all(result.ok for result in results), next(r.explain() for r in results if not r.ok)
    assert sum(result.faults.vanished_frames for result in results) > 0
    assert sum(result.faults.gap_resyncs for result in results) > 0
