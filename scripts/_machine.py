"""What both benchmark scripts record about the machine and the code: git commit, CPU model,
load average. Imported by ``scripts/bench_*.py`` (the scripts' directory is on ``sys.path``
when they run)."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

__all__ = ["cpu_model", "device_description", "git_commit", "load_average"]


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args],
        cwd=Path(__file__).resolve().parent,
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    ).stdout.strip()


# What the reproduction scripts write: a record saved by one run does not make the code of the
# next one (in the same chain of runs) differ from the commit.
_OUTPUTS = (":(exclude,top)docs/results", ":(exclude,top)docs/results.md")


def git_commit() -> str:
    """The short commit of the checkout, with ``+dirty`` when tracked code differs from it."""
    try:
        commit = _git("rev-parse", "--short", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no", "--", ":/", *_OUTPUTS)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def device_description(accelerator: str = "cpu") -> str:
    """The GPU's name when ``accelerator`` is a GPU and one is present, else the CPU model."""
    import torch

    kind = "cuda" if accelerator in ("gpu", "auto") else torch.device(accelerator).type
    if kind == "cuda" and torch.cuda.is_available():
        index = torch.device(accelerator).index if accelerator.startswith("cuda") else None
        return torch.cuda.get_device_name(index or 0)
    return f"CPU: {cpu_model()} ({os.cpu_count()} cores)"
