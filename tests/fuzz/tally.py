"""What the fuzz tests tried, printed at the end of the run (tests/fuzz/conftest.py)."""

from __future__ import annotations

from collections import Counter

TRIED: Counter[str] = Counter()  # e.g. "frames parsed", "frames sent to a live gateway", "API calls"
