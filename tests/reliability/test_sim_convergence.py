"""Seeded simulated histories converge: the real Room (memory and SQLite
stores) and the pure engine, every fault of `sim/world.py`, the invariants
of `support/history_check.py` after every run.

CI sizes: 1,000 seeds x 300 steps on the Room, 300 on the engine, 20 on an
SQLite file, spread over one process per core. Long versions:
COLLAB_SIM_SEEDS=0:100000 COLLAB_SIM_STEPS=1000 (see RELIABILITY.md). A
failure names its seed; replay it alone with
`python -m tests.reliability.sim --seed N ...` or COLLAB_SIM_SEED=N.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

import pytest

from .figures import env_int, record
from .sim.world import SimConfig, SimResult, faults_total, run_world


def seed_range(default: str) -> range:
    single = os.environ.get("COLLAB_SIM_SEED")
    if single is not None:
        return range(int(single), int(single) + 1)
    start, stop = (int(part) for part in os.environ.get("COLLAB_SIM_SEEDS", default).split(":"))
    return range(start, stop)


def run_chunk(seeds: list[int], steps: int, config: dict[str, object]) -> list[SimResult]:
    async def run_all() -> list[SimResult]:
        return [await run_world(SimConfig(seed, steps, **config)) for seed in seeds]  # type: ignore[arg-type]

    return asyncio.run(run_all())


def run_seeds(seeds: range, **config: object) -> list[SimResult]:
    """Every seed, split over one process per core (histories are independent)."""
    steps = env_int("COLLAB_SIM_STEPS", 300)
    workers = min(os.cpu_count() or 1, 4)
    if len(seeds) < 50 or workers == 1:
        return run_chunk(list(seeds), steps, config)
    chunks = [list(seeds[index::workers]) for index in range(workers)]
    context = multiprocessing.get_context("spawn")  # no fork of a threaded test process
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        parts = list(pool.map(run_chunk, chunks, [steps] * workers, [config] * workers))
    return sorted((result for part in parts for result in part), key=lambda r: r.config.seed)


def judge(name: str, results: list[SimResult]) -> None:
    failed = [result for result in results if not result.ok]
    totals = faults_total(results)
    record(
        name,
        seeds=len(results),
        steps=sum(r.config.steps for r in results),
        failures=len(failed),
        records=sum(r.report.records for r in results),
        acked=sum(r.report.acked for r in results),
        refused=sum(r.report.refused for r in results),
        text_ops=sum(r.report.text_ops for r in results),
        lost=sum(r.report.lost for r in results),
        duplicated=sum(r.report.duplicated for r in results),
        refusals_overturned=sum(r.report.overturned for r in results),
        **totals,
    )
    assert not failed, "\n\n".join(result.explain() for result in failed[:5])
    # The run exercised what it claims to (a generator regression would pass vacuously).
    assert (
        totals["drops"]
        and totals["duplicate_acks"]
        and totals["catch_ups"]
        and totals["initial_states"]
    )
    assert sum(r.report.text_ops for r in results) > 0


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_room_histories_converge() -> None:
    results = run_seeds(seed_range("0:1000"), backend="room", store="memory")
    judge("sim_room_memory", results)
    assert sum(r.faults.crashes + r.faults.restarts for r in results) > 0 or len(results) < 50


def test_engine_histories_converge() -> None:
    judge("sim_engine", run_seeds(seed_range("0:300"), backend="engine"))


def test_room_on_sqlite_histories_converge() -> None:
    judge("sim_room_sqlite", run_seeds(seed_range("0:20"), backend="room", store="sqlite"))
