"""Files evbus writes once and then only reads: the admin token's hash, the upload tickets' key."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path


def write_once(path: Path, content: Callable[[], str]) -> tuple[str, bool]:
    """The text of ``path`` (stripped), and whether this call created it with ``content()``.

    The file is written under a draft name (mode 0600: these files hold secrets or their hashes)
    and linked into place, so two processes starting at once on one data directory agree on one
    file: the one that links second reads the first one's, and nobody ever reads a half-written file.
    """
    if path.is_file():
        return path.read_text().strip(), False
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(content() + "\n")
    created = True
    try:
        os.link(draft, path)
    except FileExistsError:
        created = False  # another process made it first: use its file
    finally:
        with contextlib.suppress(FileNotFoundError):
            draft.unlink()
    return path.read_text().strip(), created
