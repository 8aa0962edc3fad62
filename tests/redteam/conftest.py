"""tests/redteam: attacks on the daemon's own surface (files, sockets, odd inputs, addresses).

This folder is put on sys.path so the tests import their helper as ``from rtutil import ...``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
