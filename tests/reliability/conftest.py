"""Reliability suite fixtures; puts this directory on ``sys.path`` for ``reliability_support``.

Counts are reduced in CI; ``RELIABILITY_SOAK=1`` (or ``python tests/reliability/soak.py``)
runs the issue's full counts. See docs/reliability.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
