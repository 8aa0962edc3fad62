"""scanguard-ids: block port scanners from what the scanned host sends back."""

from __future__ import annotations

__version__ = "0.1.0"
