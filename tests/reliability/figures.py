"""Where the reliability tests leave the figures of their last run.

Each test writes one JSON file to `test-artifacts/reliability/` (ignored by
git): `python -m tests.reliability.figures` prints them all, and with
`--markdown` the table RELIABILITY.md quotes.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

DIRECTORY = Path(
    os.environ.get(
        "COLLAB_FIGURES_DIR", Path(__file__).resolve().parents[2] / "test-artifacts" / "reliability"
    )
)


def record(name: str, **figures: Any) -> None:
    DIRECTORY.mkdir(parents=True, exist_ok=True)
    figures["recorded_at"] = time.strftime("%Y-%m-%d %H:%M:%S")
    (DIRECTORY / f"{name}.json").write_text(json.dumps(figures, indent=1, sort_keys=True) + "\n")


def env_int(name: str, default: int) -> int:
    """A size from the environment (the long versions set them), else the CI size."""
    return int(os.environ.get(name, default))


SUMMARY = {
    "sim_room_memory": (
        "seeds",
        "steps",
        "writes",
        "text_edits",
        "records",
        "acked",
        "drops",
        "zombie_frames",
        "lost_frames",
        "vanished_frames",
        "resends",
        "duplicate_acks",
        "catch_ups",
        "initial_states",
        "crashes",
        "restarts",
        "slow_reader_closes",
        "gap_resyncs",
        "refusals_overturned",
        "lost",
        "duplicated",
        "failures",
    ),
    "sim_engine": (
        "seeds",
        "steps",
        "records",
        "acked",
        "drops",
        "crashes",
        "duplicate_acks",
        "lost",
        "duplicated",
        "failures",
    ),
    "sim_room_sqlite": (
        "seeds",
        "steps",
        "records",
        "acked",
        "drops",
        "crashes",
        "restarts",
        "duplicate_acks",
        "lost",
        "duplicated",
        "failures",
    ),
    "app_state_machine": ("runs", "restarts", "connects", "records", "acked", "lost", "duplicated"),
    "reconnect_churn": (
        "clients",
        "cycles",
        "aborts",
        "clean_closes",
        "connects",
        "writes",
        "text_edits",
        "acked",
        "resends",
        "duplicate_acks",
        "catch_ups",
        "initial_states",
        "lost",
        "duplicated",
        "agreed_seconds_after_last_write",
    ),
    "kill9_restarts": (
        "restarts",
        "clients",
        "writes",
        "acked",
        "unacked_writes_at_kills",
        "resends",
        "duplicate_acks",
        "lost",
        "duplicated",
    ),
    "chaos_proxy": (
        "clients",
        "injected",
        "connects",
        "writes",
        "acked",
        "resends",
        "duplicate_acks",
        "lost",
        "duplicated",
        "agreed_seconds_after_last_write",
    ),
    "reconnect_storm": (
        "clients",
        "graphs",
        "connects",
        "server_down_seconds",
        "all_back_seconds_after_restart",
        "handshake_p50_ms",
        "handshake_p99_ms",
        "handshake_max_ms",
        "lost",
        "duplicated",
    ),
    "memory_flat": (
        "cycles",
        "graphs",
        "rss_before_kb",
        "rss_after_kb",
        "growth_percent",
        "rooms_live_after",
    ),
    "slow_reader": (
        "clients",
        "writers",
        "writes",
        "update_bytes",
        "send_queue_max",
        "others_caught_up_seconds",
        "victim_close_codes",
        "lost",
        "duplicated",
    ),
}


def markdown() -> str:
    """The figures of the last run as RELIABILITY.md's table."""
    rows = ["| test | figures |", "|---|---|"]
    for name, keys in SUMMARY.items():
        path = DIRECTORY / f"{name}.json"
        if not path.exists():
            continue
        figures = json.loads(path.read_text())
        shown = []
        for key in keys:
            value = figures.get(key)
            if isinstance(value, dict):
                value = ", ".join(f"{k} {v}" for k, v in value.items() if v)
            shown.append(f"{key.replace('_', ' ')} **{value}**")
        rows.append(f"| `{name}` ({figures['recorded_at'][:10]}) | {'; '.join(shown)} |")
    return "\n".join(rows)


def main() -> int:
    if sys.argv[1:] == ["--markdown"]:
        print(markdown())
        return 0
    for path in sorted(DIRECTORY.glob("*.json")):
        print(f"== {path.stem}\n{path.read_text()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
