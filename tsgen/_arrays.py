"""Arrays in, arrays out (USAGE.md, section 3): public methods take NumPy arrays or tensors and
answer in the same kind."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import torch

__all__ = ["numpy_in_numpy_out"]

F = TypeVar("F", bound=Callable[..., Any])


def numpy_in_numpy_out(method: F) -> F:
    """Convert NumPy array arguments of ``method`` to tensors (on the model's device) and, when
    any was NumPy, its tensor result back to a NumPy array."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        device = getattr(self, "device", None)
        was_numpy = False

        def convert(value: Any) -> Any:
            nonlocal was_numpy
            if isinstance(value, np.ndarray):
                was_numpy = True
                return torch.from_numpy(np.ascontiguousarray(value)).to(device)
            return value

        result = method(
            self, *(convert(a) for a in args), **{k: convert(v) for k, v in kwargs.items()}
        )
        if was_numpy and isinstance(result, torch.Tensor):
            return result.detach().cpu().numpy()
        return result

    return wrapper  # type: ignore[return-value]
