"""Atomic file writes: a reader never sees a half-written file, and an interrupted run leaves
none (the project's rule: never lose work)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_write"]


def atomic_write(path: Path, write: Callable[[IO[Any]], object], text: bool = False) -> None:
    """Call ``write(handle)`` on a temporary file in the directory of ``path``, then rename it to
    ``path`` (``os.replace`` is atomic on POSIX and Windows). The data reach the disk before
    the rename, so that after a crash or a power loss ``path`` holds the old file or the new
    one, never an empty one."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "w" if text else "wb", **({"newline": ""} if text else {})) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
