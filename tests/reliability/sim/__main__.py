"""Run or replay simulated histories: `python -m tests.reliability.sim --seed 17`,
or a range for a long run: `--seeds 0:100000 --steps 1000`."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from .world import SimConfig, faults_total, run_world


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability.sim", description=__doc__)
    parser.add_argument("--seed", type=int, help="replay one seed")
    parser.add_argument("--seeds", default="0:100", help="a range START:STOP of seeds")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--clients", type=int, default=5)
    parser.add_argument("--backend", choices=("room", "engine"), default="room")
    parser.add_argument("--store", choices=("memory", "sqlite"), default="memory")
    parser.add_argument("--lossy", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--stop-on-failure", action="store_true")
    args = parser.parse_args(argv)
    if args.seed is not None:
        seeds = range(args.seed, args.seed + 1)
    else:
        start, stop = (int(part) for part in args.seeds.split(":"))
        seeds = range(start, stop)
    started = time.perf_counter()
    failures, results = 0, []
    for seed in seeds:
        config = SimConfig(seed, args.steps, args.clients, args.backend, args.store, args.lossy)
        result = asyncio.run(run_world(config))
        results.append(result)
        if not result.ok:
            failures += 1
            print(result.explain(), file=sys.stderr)
            if args.stop_on_failure:
                break
    totals = faults_total(results)
    totals.update(
        runs=len(results),
        failures=failures,
        steps=args.steps * len(results),
        records=sum(r.report.records for r in results),
        acked=sum(r.report.acked for r in results),
        lost=sum(r.report.lost for r in results),
        duplicated=sum(r.report.duplicated for r in results),
        seconds=round(time.perf_counter() - started, 1),
    )
    print(json.dumps(totals, indent=1))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
