"""``R`` independent one-layer GRUs with a linear read-out, trained together as one model.

The discriminative and predictive scores (Yoon et al. 2019, TimeGAN) train a tiny GRU per
repeat. Training the repeats one after another leaves a GPU almost idle, so
:class:`StackedGRU` packs them into one ``torch.nn.GRU`` of hidden size ``R * H`` over inputs of
size ``R * in`` whose weight matrices are block-diagonal: block ``r`` maps repeat ``r``'s inputs
and hidden state to repeat ``r``'s gates only. The dense weights are stored as parameters and
multiplied by a fixed 0/1 block mask in every forward pass, so the off-block entries never
influence the output and receive exactly zero gradient. With a loss that is the *sum* of the
per-repeat losses, every block's gradient equals the gradient of that repeat trained alone, and
Adam's element-wise update keeps them independent: one optimizer step of the stack is ``R``
separate steps (up to floating-point reduction order).

Initialisation follows the TF1 ``GRUCell`` of the reference code, mapped onto torch's
parametrisation (per repeat, with ``in`` inputs and ``H`` hidden units):

- TF's gate kernel is one ``(in + H) x 2H`` matrix for ``[x, h] -> (r, u)``, Glorot-uniform with
  limit ``sqrt(6 / (in + 3H))``; its slices become torch's ``W_ir, W_iz, W_hr, W_hz``.
- TF's candidate kernel is ``(in + H) x H``, limit ``sqrt(6 / (in + 2H))``: ``W_in, W_hn``.
- TF has one bias per gate, initialised to 1.0 (reset and update) and 0.0 (candidate). torch has
  two (``b_i*`` and ``b_h*``); the TF bias goes to ``b_ir, b_iz, b_in`` and ``b_h*`` is frozen
  at 0. Freezing matters: two trainable copies of one bias would move the effective bias twice
  as fast under Adam, whose step size does not shrink when a gradient is duplicated.
- The read-out ``Linear(H, out)`` (TF ``fully_connected``): Glorot-uniform weight with limit
  ``sqrt(6 / (H + out))``, zero bias.

Deviation from TF's cell, kept on purpose: torch's GRU applies the reset gate *after* the hidden
matmul, ``n = tanh(W_in x + b_in + r * (W_hn h))``, whereas TF's ``GRUCell`` applies it before,
``c = tanh(W_in x + W_hn (r * h) + b_in)``. Keeping torch's cell lets the whole stack run as a
single cuDNN kernel; the two cells have the same parameters and initialisation and differ only in
this product.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call

from tsgen._validation import check_int

__all__ = ["StackedGRU"]

# cuDNN copies weights that are not one flat buffer into one before each call; here they are
# fresh masked tensors by design (the copy is tiny), so torch's advice to flatten does not apply.
_NON_CONTIGUOUS_WARNING = r"RNN module weights are not part of single contiguous chunk"


def _glorot(
    shape: tuple[int, int],
    limit: float,
    generator: torch.Generator | None,
    device: torch.device,
    dtype: torch.dtype,
) -> Tensor:
    """``U(-limit, limit)`` of ``shape``, drawn from ``generator`` (the default one if None)."""
    u = torch.rand(shape, generator=generator, device=device, dtype=dtype)
    return (2.0 * u - 1.0) * limit


class StackedGRU(nn.Module):
    """``repeats`` independent one-layer tanh GRUs, each with its own ``Linear(H, out)`` read-out,
    evaluated as one block-diagonal GRU.

    Args:
        repeats: ``R``, the number of independent models.
        input_size: ``in``, features per time step of each model.
        hidden_size: ``H``, hidden units of each model.
        output_size: ``out``, outputs of each model's read-out.
        generators: ``R`` generators on ``device``; model ``r``'s initial weights are drawn from
            ``generators[r]`` only (so they do not depend on ``R``). ``None`` draws every model
            from torch's default generator.
        device: where the parameters live.
        dtype: the parameters' floating dtype.

    Shapes: :meth:`forward` maps ``(B, L, R, in)`` to the hidden states ``(B, L, R, H)`` and the
    last state ``(B, R, H)``; :meth:`head` maps ``(..., R, H)`` to ``(..., R, out)``.
    """

    def __init__(
        self,
        repeats: int,
        input_size: int,
        hidden_size: int,
        output_size: int = 1,
        *,
        generators: Sequence[torch.Generator] | None = None,
        device: str | torch.device | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        self.repeats = check_int("repeats", repeats)
        self.input_size = check_int("input_size", input_size)
        self.hidden_size = check_int("hidden_size", hidden_size)
        self.output_size = check_int("output_size", output_size)
        if generators is not None and len(generators) != repeats:
            raise ValueError(
                f"generators must hold one generator per repeat ({repeats}); got {len(generators)}"
            )
        device = torch.device("cpu") if device is None else torch.device(device)
        r, i, h = repeats, input_size, hidden_size
        self.gru = nn.GRU(r * i, r * h, num_layers=1, batch_first=True, device=device, dtype=dtype)
        # TF's cell has one bias per gate: torch's hidden-side biases stay 0 (see module doc).
        self.gru.bias_hh_l0.requires_grad_(False)
        self.head_weight = nn.Parameter(torch.empty(r, h, output_size, device=device, dtype=dtype))
        self.head_bias = nn.Parameter(torch.empty(r, output_size, device=device, dtype=dtype))
        # Block r of each gate's rows (r*H .. r*H+H) sees only repeat r's inputs / hidden units.
        ones_ih = torch.ones(h, i, device=device, dtype=dtype)
        ones_hh = torch.ones(h, h, device=device, dtype=dtype)
        self.register_buffer("mask_ih", torch.block_diag(*[ones_ih] * r).repeat(3, 1))
        self.register_buffer("mask_hh", torch.block_diag(*[ones_hh] * r).repeat(3, 1))
        self.reset_parameters(generators)

    # ----------------------------------------------------------------------------------------
    # Per-repeat views of the packed parameters
    # ----------------------------------------------------------------------------------------

    def _blocks(self, packed: Tensor, columns: int) -> Tensor:
        """``(3RH, R*columns)`` packed gate weights as ``(R, 3H, columns)`` diagonal blocks
        (a copy)."""
        r, h = self.repeats, self.hidden_size
        view = packed.view(3, r, h, r, columns)
        idx = torch.arange(r, device=packed.device)
        # view[:, k, :, k, :] for every k: (R, 3, H, columns) after advanced indexing.
        return view[:, idx, :, idx, :].reshape(r, 3 * h, columns)

    def block(self, repeat: int) -> dict[str, Tensor]:
        """Model ``repeat``'s parameters (detached copies) under ``torch.nn.GRU`` names,
        ``weight_ih_l0`` ``(3H, in)``, ``weight_hh_l0`` ``(3H, H)``, ``bias_ih_l0`` ``(3H,)``,
        ``bias_hh_l0`` ``(3H,)``, plus ``head_weight`` ``(out, H)`` and ``head_bias``
        ``(out,)`` under ``torch.nn.Linear``'s layout."""
        check_int("repeat", repeat, minimum=0)
        if repeat >= self.repeats:
            raise ValueError(f"repeat must be < repeats = {self.repeats}; got {repeat}")
        r, h = self.repeats, self.hidden_size
        with torch.no_grad():
            return {
                "weight_ih_l0": self._blocks(self.gru.weight_ih_l0, self.input_size)[repeat],
                "weight_hh_l0": self._blocks(self.gru.weight_hh_l0, h)[repeat],
                "bias_ih_l0": self.gru.bias_ih_l0.view(3, r, h)[:, repeat].reshape(-1).clone(),
                "bias_hh_l0": self.gru.bias_hh_l0.view(3, r, h)[:, repeat].reshape(-1).clone(),
                "head_weight": self.head_weight[repeat].T.clone(),
                "head_bias": self.head_bias[repeat].clone(),
            }

    @torch.no_grad()
    def reset_parameters(self, generators: Sequence[torch.Generator] | None = None) -> None:
        """TF1-style initialisation (module docstring), model ``r`` from ``generators[r]``.

        Per model the draws are, in order: the ``(in + H, 2H)`` gate kernel, the ``(in + H, H)``
        candidate kernel, the ``(H, out)`` read-out weight.
        """
        r, i, h, o = self.repeats, self.input_size, self.hidden_size, self.output_size
        w_ih = self.gru.weight_ih_l0.view(3, r, h, r, i)
        w_hh = self.gru.weight_hh_l0.view(3, r, h, r, h)
        w_ih.zero_()
        w_hh.zero_()
        device, dtype = w_ih.device, w_ih.dtype
        gate_limit = math.sqrt(6.0 / (i + h + 2 * h))
        cand_limit = math.sqrt(6.0 / (i + h + h))
        head_limit = math.sqrt(6.0 / (h + o))
        for k in range(r):
            g = None if generators is None else generators[k]
            gate = _glorot((i + h, 2 * h), gate_limit, g, device, dtype)  # columns [r | u]
            cand = _glorot((i + h, h), cand_limit, g, device, dtype)
            # TF multiplies row vectors [x, h] by the kernel; torch multiplies W by columns.
            w_ih[0, k, :, k] = gate[:i, :h].T  # reset gate
            w_ih[1, k, :, k] = gate[:i, h:].T  # update gate (TF's u is torch's z)
            w_ih[2, k, :, k] = cand[:i].T  # candidate
            w_hh[0, k, :, k] = gate[i:, :h].T
            w_hh[1, k, :, k] = gate[i:, h:].T
            w_hh[2, k, :, k] = cand[i:].T
            self.head_weight[k] = _glorot((h, o), head_limit, g, device, dtype)
        bias_ih = self.gru.bias_ih_l0.view(3, r, h)
        bias_ih[:2] = 1.0  # reset and update gates, as TF's gate bias
        bias_ih[2] = 0.0  # candidate
        self.gru.bias_hh_l0.zero_()
        self.head_bias.zero_()

    # ----------------------------------------------------------------------------------------
    # Forward
    # ----------------------------------------------------------------------------------------

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Run every model on its own slice of ``x``.

        Args:
            x: ``(B, L, R, in)``; ``x[:, :, r]`` is model ``r``'s input sequence.

        Returns:
            ``(states, last)``: the hidden states ``(B, L, R, H)`` at every step and the final
            hidden state ``(B, R, H)`` (initial state 0).
        """
        if x.dim() != 4 or x.shape[2:] != (self.repeats, self.input_size):
            raise ValueError(
                f"x must have shape (B, L, R={self.repeats}, in={self.input_size}); "
                f"got {tuple(x.shape)}"
            )
        b, length = x.shape[:2]
        weights = {
            "weight_ih_l0": self.gru.weight_ih_l0 * self.mask_ih,
            "weight_hh_l0": self.gru.weight_hh_l0 * self.mask_hh,
        }
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_NON_CONTIGUOUS_WARNING)
            states, last = functional_call(self.gru, weights, (x.reshape(b, length, -1),))
        states = states.view(b, length, self.repeats, self.hidden_size)
        return states, last[0].view(b, self.repeats, self.hidden_size)

    def head(self, h: Tensor) -> Tensor:
        """Each model's read-out: ``(..., R, H)`` -> ``(..., R, out)``."""
        return torch.einsum("...rh,rho->...ro", h, self.head_weight) + self.head_bias


# --------------------------------------------------------------------------------------------
# Training plumbing shared by the discriminative and predictive scores
# --------------------------------------------------------------------------------------------

# Bound on the uniform keys drawn at once for batch sampling (bytes), so 5000 iterations over a
# large set are drawn in a few chunks instead of one multi-gigabyte tensor.
_MAX_KEY_BYTES = 2**27


def draw_batch_indices(
    generator: torch.Generator, iterations: int, n: int, batch: int, device: torch.device
) -> Tensor:
    """``(iterations, batch)`` int64 indices into ``range(n)``, each row ``batch`` distinct
    indices in random order (the first ``batch`` of a fresh permutation), all drawn up front
    from ``generator`` so the training loop needs no host synchronisation.

    The ``batch`` largest of ``n`` i.i.d. uniform keys, in decreasing order, are a uniformly
    random ordered ``batch``-subset; ``topk`` finds them without sorting the whole row. The chunk
    size depends on ``n`` only, so a repeat's draws do not depend on how many repeats run.
    """
    rows = max(1, _MAX_KEY_BYTES // (4 * n))
    chunks = []
    for start in range(0, iterations, rows):
        keys = torch.rand(min(rows, iterations - start), n, generator=generator, device=device)
        chunks.append(torch.topk(keys, batch, dim=1, sorted=True).indices)
    return torch.cat(chunks)


def make_adam(model: nn.Module) -> torch.optim.Adam:
    """Adam with the reference's (TF1 default) settings over the trainable parameters."""
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
