"""Where the reliability tests leave the figures of their last run.

Each test writes one JSON file to `test-artifacts/reliability/` (ignored by
git): RELIABILITY.md quotes them, and `python -m tests.reliability.figures`
prints them all.
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


def main() -> int:
    for path in sorted(DIRECTORY.glob("*.json")):
        print(f"== {path.stem}\n{path.read_text()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
