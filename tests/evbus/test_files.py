"""evbus.files.write_once: one file, whoever starts first, never half-written, readable only by us."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from evbus.files import write_once


def test_the_first_call_creates_and_later_calls_read(tmp_path: Path) -> None:
    path = tmp_path / "data" / "secret"
    assert write_once(path, lambda: "one") == ("one", True)
    assert write_once(path, lambda: "two") == ("one", False)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["secret"], "no draft left behind"


def test_racing_first_calls_agree_on_one_file(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda n: write_once(path, lambda: f"value-{n}"), range(64)))
    texts = {text for text, _ in results}
    assert len(texts) == 1, texts
    assert sum(created for _, created in results) == 1
    assert path.read_text().strip() in texts
    assert [p.name for p in tmp_path.iterdir()] == ["secret"]
