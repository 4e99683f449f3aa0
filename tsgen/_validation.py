"""Argument checks shared by the subpackages above ``tsgen.sde`` (which keeps its own, since it
imports nothing else from tsgen)."""

from __future__ import annotations

from numbers import Integral

__all__ = ["check_choice", "check_int", "check_open_fraction"]


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    """``value`` if it is one of ``choices``, else a ``ValueError`` naming ``name``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}; got {value!r}")
    return value


def check_int(name: str, value: object, minimum: int = 1) -> int:
    """``value`` as an ``int`` if it is an integer (Python's or NumPy's, not a bool) of at least
    ``minimum``, else a ``ValueError`` naming ``name``, what was expected and what came."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        expected = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name} must be {expected}; got {value!r}")
    return int(value)


def check_open_fraction(name: str, value: object) -> float:
    """``value`` as a float if it is a number (not a bool) strictly between 0 and 1, else a
    ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be a number strictly between 0 and 1; got {value!r}")
    return float(value)
