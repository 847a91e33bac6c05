"""Fixtures for the stream guarantees (issue 13): a simulator with cached-prompt models, providers on it,
and a gateway stack in front of it.

Puts this directory and ``tests/gateway`` on ``sys.path`` so the tests can import ``streams_support``
(request shapes, helpers) and the gateway's ``gateway_support`` (config builder, loopback server).
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).parent
for _dir in (_HERE, _HERE.parent / "gateway"):
    if str(_dir) not in sys.path:
        sys.path.insert(0, str(_dir))
