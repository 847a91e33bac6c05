"""Soak mode: the reliability suite at the issue's full counts.

    python tests/reliability/soak.py [extra pytest args]
    python -m tests.reliability.soak [extra pytest args]     (from the repository root)

Same as ``RELIABILITY_SOAK=1 pytest tests/reliability -s``: 2,000 plain requests through the
router and 2,000 through the gateway at concurrency 50, 1,000 streams, 5,000 acknowledged
requests before the SIGKILL, RSS after 2,000 vs 20,000 requests, 10x the fuzz examples.
The per-test timeout is raised to 30 minutes; figures are printed (``-s``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    here = Path(__file__).resolve().parent
    env = {**os.environ, "RELIABILITY_SOAK": "1"}
    command = [sys.executable, "-m", "pytest", str(here), "-s", "-q", "-p", "no:cacheprovider",
               "-o", "timeout=1800", "-rxX", *argv]
    return subprocess.call(command, cwd=here.parents[1], env=env)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
