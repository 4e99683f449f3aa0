"""TS2Vec (Yue et al. 2022, "TS2Vec: Towards Universal Representation of Time Series"), the
encoder behind Context-FID, with ``R`` independent repeats trained at once as one stacked network.

The network and its training follow the reference implementation (github.com/zhihanyue/ts2vec)
as called by Diffusion-TS's ``Context_FID``, which produced the published Context-FID numbers:

- **Encoder** (``TSEncoder``): a linear input projection ``C -> 64``; in training a random
  timestamp mask (each time step of each window kept with probability 0.5, masked hidden vectors
  set to 0); a dilated convolutional encoder of 10 residual blocks of width 64 and a final block
  to 320 channels, block ``i`` with dilation ``2**i``; each block computes
  ``conv2(gelu(conv1(gelu(x)))) + residual(x)`` with kernel-3 convolutions and ``residual`` a 1x1
  convolution where the width changes or in the final block, the identity otherwise; dropout 0.1
  on the output (training only).
- **Padding**: like the reference, every convolution uses *symmetric* "same" zero padding
  (``dilation`` zeros on both sides), so a time step's representation sees the future as well as
  the past. This is not the causal padding the TS2Vec paper describes; we follow the code, since
  the published Context-FID values come from it.
- **Training**: AdamW (lr 1e-3, weight decay 0.01); batches of ``min(8, N)`` windows from an
  epoch-wise permutation (``drop_last``); per iteration two overlapping random crops of the batch
  (the reference's ``crop_l, crop_left, crop_eleft, crop_eright`` and per-window ``crop_offset``),
  both encoded, their common segment contrasted by the hierarchical contrastive loss (instance
  and temporal terms with weight 0.5 each, max-pooling by 2 between levels).
- **Averaging**: the reference encodes with ``torch.optim.swa_utils.AveragedModel``: the
  equal-weight mean of the initial weights (it calls ``update_parameters`` once when the model is
  built) and of the weights after every optimizer step. We keep the same average.

Batched repeats: the ``R`` encoders are one module whose every weight has a leading repeat
dimension; the input projection and the convolutions are batched matrix products over ``R``
(``torch.baddbmm``), so repeat ``r`` only ever touches its own weights. The training loss is the
sum of the per-repeat losses, hence each repeat's gradients, its (elementwise) AdamW update and its
weight average equal those of training it alone. Crop lengths differ between repeats, so each crop
lies left-aligned in a buffer of the full window length ``T``; activations past a crop's length are
zeroed before every kernel-3 convolution, which with zero "same" padding gives exactly the
convolution of the shorter sequence. The loss masks the invalid positions likewise.

Randomness: repeat ``r`` draws its initial weights, batches, crops, timestamp masks and dropout
masks from its own CPU generator ``repeat_generators(seed, R, cpu)[r]`` (moved to the device where
needed), so a repeat's result depends neither on ``R`` nor on the device, up to floating-point
error.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import Tensor, nn
from torch.nn.functional import gelu, log_softmax, pad

from tsgen._validation import check_int
from tsgen.metrics._repeats import progress as progress_bar
from tsgen.metrics._repeats import repeat_generators, resolve_device

__all__ = ["StackedTS2Vec", "encode", "hierarchical_contrastive_loss", "train_ts2vec"]

HIDDEN_DIMS = 64
OUTPUT_DIMS = 320
DEPTH = 10
KERNEL_SIZE = 3
MASK_KEEP = 0.5  # reference: generate_binomial_mask(p=0.5)
DROPOUT = 0.1  # reference: TSEncoder.repr_dropout
ALPHA = 0.5  # reference: hierarchical_contrastive_loss(alpha=0.5)


def protocol_iterations(n: int, length: int, channels: int) -> int:
    """The reference's TS2Vec training length for ``n`` windows of ``length`` x ``channels``:
    200 optimizer steps up to 100 000 values, else 600."""
    return 200 if n * length * channels <= 100_000 else 600


def _default_init(shape: tuple[int, ...], fan_in: int, generators: list[torch.Generator]) -> Tensor:
    """``(R, *shape)`` float32, repeat ``r`` drawn from ``generators[r]`` like torch's default
    ``nn.Linear`` / ``nn.Conv1d`` init: ``kaiming_uniform_(a=sqrt(5))`` for weights and the bias
    rule both reduce to ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``."""
    bound = 1.0 / math.sqrt(fan_in)
    return torch.stack(
        [torch.empty(shape).uniform_(-bound, bound, generator=g) for g in generators]
    )


class _StackedBlock(nn.Module):
    """One residual block of the reference ``DilatedConvEncoder`` (``ConvBlock``) for ``R``
    repeats. Weights are stored as ``(R, k, C_in, C_out)`` (kernel taps ``k = 0, 1, 2`` read
    ``x[t - d], x[t], x[t + d]``, as ``nn.Conv1d(padding=d, dilation=d)`` does)."""

    def __init__(
        self,
        in_dims: int,
        out_dims: int,
        dilation: int,
        final: bool,
        generators: list[torch.Generator],
    ) -> None:
        super().__init__()
        self.dilation = dilation
        fan1, fan2 = in_dims * KERNEL_SIZE, out_dims * KERNEL_SIZE
        # Draw order per generator: conv1 (weight, bias), conv2, projector (as the reference
        # builds them). Weights are drawn in torch's (C_out, C_in, k) layout, then permuted.
        self.conv1_weight = nn.Parameter(
            _default_init((out_dims, in_dims, KERNEL_SIZE), fan1, generators)
            .permute(0, 3, 2, 1)
            .contiguous()
        )
        self.conv1_bias = nn.Parameter(_default_init((out_dims,), fan1, generators))
        self.conv2_weight = nn.Parameter(
            _default_init((out_dims, out_dims, KERNEL_SIZE), fan2, generators)
            .permute(0, 3, 2, 1)
            .contiguous()
        )
        self.conv2_bias = nn.Parameter(_default_init((out_dims,), fan2, generators))
        # Reference: a 1x1 projection when the width changes or in the final block.
        self.projector_weight: nn.Parameter | None = None
        self.projector_bias: nn.Parameter | None = None
        if in_dims != out_dims or final:
            self.projector_weight = nn.Parameter(
                _default_init((out_dims, in_dims), in_dims, generators).transpose(1, 2).contiguous()
            )
            self.projector_bias = nn.Parameter(_default_init((out_dims,), in_dims, generators))

    def _conv(self, x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        """Kernel-3 convolution, dilation ``d``, symmetric zero padding ``d`` (the reference's
        ``SamePadConv``), batched over repeats. ``x``: ``(R, B, T, C_in)`` ->
        ``(R, B, T, C_out)``."""
        r, b, t, c_in = x.shape
        d = self.dilation
        if d >= t:
            # Both outer taps read only padding zeros: the convolution is the centre tap alone
            # (exactly; the outer taps then get zero gradients, as in the padded convolution).
            cols, w = x.reshape(r, b * t, c_in), weight[:, 1]
        else:
            padded = pad(x, (0, 0, d, d))
            cols = torch.cat([padded[:, :, :t], x, padded[:, :, 2 * d :]], dim=-1)
            cols, w = cols.reshape(r, b * t, 3 * c_in), weight.reshape(r, 3 * c_in, -1)
        return torch.baddbmm(bias[:, None, :], cols, w).view(r, b, t, -1)

    def forward(self, x: Tensor, valid: Tensor | None) -> Tensor:
        """``x``: ``(R, B, T, C_in)``; ``valid``: ``(R, B, T, 1)`` 1.0 inside each crop, 0.0 past
        it (``None``: all valid). Returns ``(R, B, T, C_out)``; entries past a crop's length are
        meaningless (and zeroed before the next convolution)."""
        if self.projector_weight is None:
            residual = x
        else:
            r, b, t, c_in = x.shape
            residual = torch.baddbmm(
                self.projector_bias[:, None, :], x.reshape(r, b * t, c_in), self.projector_weight
            ).view(r, b, t, -1)
        h = gelu(x)
        if valid is not None:
            h = h * valid  # zero past the crop, as the padding of the shorter sequence would be
        h = gelu(self._conv(h, self.conv1_weight, self.conv1_bias))
        if valid is not None:
            h = h * valid
        return self._conv(h, self.conv2_weight, self.conv2_bias) + residual


class StackedTS2Vec(nn.Module):
    """``R`` TS2Vec encoders (``TSEncoder`` of the reference) stacked into one module.

    Every parameter has a leading repeat dimension ``R``; repeat ``r`` is initialised like
    torch's default ``nn.Linear`` / ``nn.Conv1d`` init from ``generators[r]``.

    Args:
        input_dims: ``C``, the features per time step.
        generators: one CPU ``torch.Generator`` per repeat (``R = len(generators)``).
        hidden_dims: width of the 10 hidden blocks (64 in the reference).
        output_dims: ``D``, the representation size (320 in the reference).
        depth: hidden blocks (10 in the reference); a final block to ``output_dims`` follows.
    """

    def __init__(
        self,
        input_dims: int,
        generators: list[torch.Generator],
        hidden_dims: int = HIDDEN_DIMS,
        output_dims: int = OUTPUT_DIMS,
        depth: int = DEPTH,
    ) -> None:
        super().__init__()
        check_int("input_dims", input_dims)
        check_int("hidden_dims", hidden_dims)
        check_int("output_dims", output_dims)
        check_int("depth", depth, minimum=0)
        if not generators:
            raise ValueError("generators must hold one torch.Generator per repeat; got none")
        self.repeats, self.input_dims, self.output_dims = len(generators), input_dims, output_dims
        # Reference: nn.Linear(input_dims, hidden_dims), stored here as (R, C, H).
        self.input_weight = nn.Parameter(
            _default_init((hidden_dims, input_dims), input_dims, generators)
            .transpose(1, 2)
            .contiguous()
        )
        self.input_bias = nn.Parameter(_default_init((hidden_dims,), input_dims, generators))
        widths = [hidden_dims] * depth + [output_dims]
        self.blocks = nn.ModuleList(
            _StackedBlock(
                widths[i - 1] if i > 0 else hidden_dims,
                widths[i],
                dilation=2**i,
                final=i == len(widths) - 1,
                generators=generators,
            )
            for i in range(len(widths))
        )

    def forward(
        self,
        x: Tensor,
        lengths: Tensor | None = None,
        timestamp_mask: Tensor | None = None,
        dropout_keep: Tensor | None = None,
    ) -> Tensor:
        """Per-time-step representations.

        Args:
            x: ``(R, B, T, C)`` one batch per repeat, or ``(B, T, C)`` shared by all repeats.
            lengths: ``(R, B)`` integer valid lengths: window ``b`` of repeat ``r`` is the
                left-aligned sequence ``x[r, b, :lengths[r, b]]`` and is encoded exactly as that
                shorter sequence would be. ``None``: all ``T`` steps valid.
            timestamp_mask: ``(R, B, T)`` bool, False where the hidden vector (after the input
                projection) is set to 0 (the reference's training-time binomial mask). ``None``:
                no mask (the reference at encoding time).
            dropout_keep: ``(R, B, T, D)`` bool, the kept entries of the output dropout (kept
                ones are scaled by ``1 / 0.9``). ``None``: no dropout.

        Returns:
            ``(R, B, T, D)`` representations; entries at ``t >= lengths[r, b]`` are meaningless.
        """
        r = self.repeats
        if x.dim() == 3:
            b, t, c = x.shape
            h = torch.matmul(x.reshape(1, b * t, c), self.input_weight) + self.input_bias[:, None]
        elif x.dim() == 4 and x.shape[0] == r:
            _, b, t, c = x.shape
            h = torch.baddbmm(self.input_bias[:, None], x.reshape(r, b * t, c), self.input_weight)
        else:
            raise ValueError(
                f"x must have shape (R={r}, B, T, C) or (B, T, C); got {tuple(x.shape)}"
            )
        h = h.view(r, b, t, -1)
        valid = None
        if lengths is not None:
            steps = torch.arange(t, device=x.device)
            valid = (steps < lengths[..., None]).unsqueeze(-1).to(h.dtype)  # (R, B, T, 1)
        keep = valid
        if timestamp_mask is not None:
            mask = timestamp_mask.unsqueeze(-1).to(h.dtype)
            keep = mask if keep is None else keep * mask
        if keep is not None:
            h = h * keep
        for block in self.blocks:
            h = block(h, valid)
        if dropout_keep is not None:
            h = h * dropout_keep.to(h.dtype) * (1.0 / (1.0 - DROPOUT))
        return h

    @torch.no_grad()
    def encode(self, windows: Tensor, batch_size: int = 1024) -> Tensor:
        """Whole-window embeddings: the representations max-pooled over all time steps (the
        reference's ``encode(..., encoding_window='full_series')``), no mask, no dropout.

        Args:
            windows: ``(N, T, C)`` float windows (moved to this module's device and dtype).
            batch_size: windows encoded per chunk (bounds memory; the result does not depend on
                it beyond floating-point error).

        Returns:
            ``(R, N, D)`` embeddings on this module's device.
        """
        check_int("batch_size", batch_size)
        weight = self.input_weight
        windows = windows.to(device=weight.device, dtype=weight.dtype)
        chunks = [
            self(windows[i : i + batch_size]).amax(dim=2)
            for i in range(0, windows.shape[0], batch_size)
        ]
        return torch.cat(chunks, dim=1)

    def select(self, repeats: list[int]) -> StackedTS2Vec:
        """A new stacked module holding copies of the given repeats' weights, in that order."""
        index = torch.as_tensor(repeats, dtype=torch.long)
        selected = copy.deepcopy(self)
        with torch.no_grad():
            for (_, dst), (_, src) in zip(
                selected.named_parameters(), self.named_parameters(), strict=True
            ):
                dst.data = src.data[index.to(src.device)].clone()
        selected.repeats = len(repeats)
        return selected


def encode(model: StackedTS2Vec, windows: Tensor, batch_size: int = 1024) -> Tensor:
    """``model.encode(windows, batch_size)``: ``(N, T, C)`` windows -> ``(R, N, D)`` max-pooled
    embeddings, one set per repeat, in eval mode (no mask, no dropout)."""
    was_training = model.training
    model.eval()
    try:
        return model.encode(windows, batch_size)
    finally:
        model.train(was_training)


def _instance_loss(z1: Tensor, z2: Tensor, lengths: Tensor) -> Tensor:
    """Reference ``instance_contrastive_loss`` for each repeat, over its valid time steps.

    ``z1, z2``: ``(R, B, T, D)`` left-aligned, entries past ``lengths`` zero; ``lengths``: ``(R,)``
    with every entry >= 1. Per time step, each of the 2B representations is contrasted against the
    other 2B - 1 (same window in the other view positive); the cross-entropy is averaged over
    rows and valid time steps. Returns ``(R,)``.
    """
    r, b, t, _ = z1.shape
    z = torch.cat([z1, z2], dim=1).transpose(1, 2)  # (R, T, 2B, D)
    sim = z @ z.transpose(-1, -2)  # (R, T, 2B, 2B)
    eye = torch.eye(2 * b, dtype=torch.bool, device=z.device)
    log_p = log_softmax(sim.masked_fill(eye, -math.inf), dim=-1)
    positive = (torch.arange(2 * b, device=z.device) + b) % (2 * b)
    nll = -log_p.gather(-1, positive.expand(r, t, -1)[..., None]).squeeze(-1).mean(-1)  # (R, T)
    valid = torch.arange(t, device=z.device) < lengths[:, None]
    return torch.where(valid, nll, 0.0).sum(-1) / lengths.to(nll.dtype)


def _temporal_loss(z1: Tensor, z2: Tensor, lengths: Tensor) -> Tensor:
    """Reference ``temporal_contrastive_loss`` for each repeat, over its valid time steps.

    ``z1, z2``: ``(R, B, T, D)`` left-aligned; ``lengths``: ``(R,)`` each >= 1. Per window, each of
    the 2 * length valid time steps of both views is contrasted against the other valid ones (the
    same step in the other view positive); invalid steps get ``-inf`` logits. The cross-entropy is
    averaged over valid rows and windows. Returns ``(R,)``.
    """
    r, b, t, _ = z1.shape
    z = torch.cat([z1, z2], dim=2)  # (R, B, 2T, D)
    sim = z @ z.transpose(-1, -2)  # (R, B, 2T, 2T)
    steps = torch.arange(2 * t, device=z.device)
    valid = (steps % t) < lengths[:, None]  # (R, 2T)
    invalid = (~valid)[:, None, None, :] | torch.eye(2 * t, dtype=torch.bool, device=z.device)
    log_p = log_softmax(sim.masked_fill(invalid, -math.inf), dim=-1)
    positive = (steps + t) % (2 * t)
    nll = -log_p.gather(-1, positive.expand(r, b, -1)[..., None]).squeeze(-1)  # (R, B, 2T)
    nll = torch.where(valid[:, None, :], nll, 0.0).sum((1, 2))
    return nll / (2 * b * lengths.to(nll.dtype))


def hierarchical_contrastive_loss(z1: Tensor, z2: Tensor, lengths: Tensor) -> Tensor:
    """The reference ``hierarchical_contrastive_loss`` (alpha 0.5, temporal_unit 0) for each
    repeat, with per-repeat sequence lengths.

    At each level, while a repeat's length ``l > 1``: add ``0.5 * instance + 0.5 * temporal``
    losses; at ``l == 1``: add ``0.5 * instance`` (the instance loss is 0 when ``B == 1``); then
    max-pool by 2 along time (``l -> l // 2``). The sum is divided by the repeat's number of
    levels, ``floor(log2(l0)) + 1``.

    Args:
        z1, z2: ``(R, B, T, D)`` representations of the two views' common segment, left-aligned:
            repeat ``r`` uses time steps ``[0, lengths[r])``; later entries are ignored.
        lengths: ``(R,)`` integer lengths in ``[1, T]``.

    Returns:
        ``(R,)`` per-repeat losses (their sum is the stacked training objective).
    """
    r, b, t, _ = z1.shape
    steps = torch.arange(t, device=z1.device)
    valid = (steps < lengths[:, None])[:, None, :, None]
    z1, z2 = z1 * valid, z2 * valid  # ignore whatever lies past each repeat's segment
    total = z1.new_zeros(r)
    levels = z1.new_zeros(r)
    level = 0
    while t >= 1:
        current = lengths >> level  # (R,) valid length at this level (floor halving)
        active = current >= 1
        safe = current.clamp(min=1)  # avoid empty softmax rows for finished repeats
        term = z1.new_zeros(r)
        if b > 1:
            term = term + ALPHA * _instance_loss(z1, z2, safe)
        if t > 1:
            temporal = _temporal_loss(z1, z2, safe)
            term = term + torch.where(current >= 2, (1 - ALPHA) * temporal, 0.0)
        total = total + torch.where(active, term, 0.0)
        levels = levels + active.to(levels.dtype)
        if t == 1:
            break
        # Reference: F.max_pool1d(kernel_size=2) along time (an odd last step is dropped).
        t //= 2
        z1 = z1[:, :, : 2 * t].reshape(r, b, t, 2, -1).amax(3)
        z2 = z2[:, :, : 2 * t].reshape(r, b, t, 2, -1).amax(3)
        level += 1
    return total / levels


def _uniform_int(u: Tensor, low: Tensor | int, high: Tensor | int) -> Tensor:
    """Integers uniform in ``[low, high]`` (inclusive) from uniforms ``u`` in ``[0, 1)``."""
    span = high - low + 1
    if not isinstance(span, Tensor):
        span = torch.tensor(span)
    value = torch.floor(u * span).long()
    return low + torch.minimum(value, span - 1)


def _draw_schedule(
    generators: list[torch.Generator], n: int, length: int, iterations: int, batch: int
) -> tuple[Tensor, Tensor]:
    """The batches and crops of every iteration, per repeat (CPU).

    Returns ``batches (R, iterations, batch)`` window indices (consecutive slices of epoch-wise
    permutations, incomplete last batches dropped) and ``crops (R, iterations, 4 + batch)``:
    ``crop_l, crop_left, crop_eleft, crop_eright`` and the per-window ``crop_offset`` of the
    reference's ``TS2Vec.fit``.
    """
    per_epoch = n // batch
    epochs = -(-iterations // per_epoch)
    batches, uniforms = [], []
    for g in generators:
        perms = torch.cat(
            [torch.randperm(n, generator=g)[: per_epoch * batch] for _ in range(epochs)]
        )
        batches.append(perms[: iterations * batch].view(iterations, batch))
        uniforms.append(torch.rand(iterations, 4 + batch, generator=g, dtype=torch.float64))
    u = torch.stack(uniforms)
    # Reference: crop_l ~ randint(2, T + 1); crop_left ~ randint(T - crop_l + 1); crop_eleft ~
    # randint(crop_left + 1); crop_eright ~ randint(crop_right, T + 1); crop_offset ~
    # randint(-crop_eleft, T - crop_eright + 1, size=B) (numpy's exclusive upper bounds).
    crop_l = _uniform_int(u[..., 0], 2, length)
    crop_left = _uniform_int(u[..., 1], 0, length - crop_l)
    crop_right = crop_left + crop_l
    crop_eleft = _uniform_int(u[..., 2], 0, crop_left)
    crop_eright = _uniform_int(u[..., 3], crop_right, length)
    offset = _uniform_int(u[..., 4:], -crop_eleft[..., None], (length - crop_eright)[..., None])
    crops = torch.cat(
        [torch.stack([crop_l, crop_left, crop_eleft, crop_eright], dim=-1), offset], dim=-1
    )
    return torch.stack(batches), crops


def _crop_views(x: Tensor, crops: Tensor) -> tuple[Tensor, Tensor]:
    """The two overlapping crops of every window (the reference's ``take_per_row`` calls),
    left-aligned in length-``T`` buffers.

    Args:
        x: ``(R, B, T, C)`` each repeat's batch.
        crops: ``(R, 4 + B)`` integer ``crop_l, crop_left, crop_eleft, crop_eright`` and the
            per-window ``crop_offset`` of one iteration (see :func:`_draw_schedule`).

    Returns:
        ``views (R, 2B, T, C)``: rows ``[0, B)`` hold view 1 ``x[offset + crop_eleft : offset +
        crop_right]``, rows ``[B, 2B)`` view 2 ``x[offset + crop_left : offset + crop_eright]``,
        each followed by meaningless entries; ``lengths (R, 2B)``: their lengths.
    """
    _, batch, length, channels = x.shape
    crop_l, crop_left, crop_eleft, crop_eright = crops[:, :4].unbind(-1)
    offset = crops[:, 4:]  # (R, B)
    crop_right = crop_left + crop_l
    starts = torch.cat([offset + crop_eleft[:, None], offset + crop_left[:, None]], dim=1)
    lengths = torch.cat(
        [
            (crop_right - crop_eleft)[:, None].expand(-1, batch),
            (crop_eright - crop_left)[:, None].expand(-1, batch),
        ],
        dim=1,
    )  # (R, 2B)
    steps = torch.arange(length, device=x.device)
    source = (starts[..., None] + steps).clamp(max=length - 1)  # (R, 2B, T)
    views = torch.gather(
        torch.cat([x, x], dim=1), 2, source[..., None].expand(-1, -1, -1, channels)
    )
    return views, lengths


def _common_segments(out: Tensor, crops: Tensor) -> tuple[Tensor, Tensor]:
    """The representations of the views' common segment, both left-aligned.

    Args:
        out: ``(R, 2B, T, D)`` encoder output of :func:`_crop_views`' views.
        crops: ``(R, 4 + B)`` the iteration's crops.

    Returns:
        ``out1, out2 (R, B, T, D)``: the reference's ``encoder(view1)[:, -crop_l:]`` (gathered
        from positions ``crop_left - crop_eleft + t``) and ``encoder(view2)[:, :crop_l]``, valid
        for ``t < crop_l``.
    """
    batch, length = out.shape[1] // 2, out.shape[2]
    crop_left, crop_eleft = crops[:, 1], crops[:, 2]
    # View 1 has length crop_right - crop_eleft, so its last crop_l steps start at
    # crop_left - crop_eleft.
    shift = (crop_left - crop_eleft)[:, None] + torch.arange(length, device=out.device)
    index = shift.clamp(max=length - 1)[:, None, :, None]
    out1 = torch.gather(out[:, :batch], 2, index.expand(-1, batch, -1, out.shape[-1]))
    return out1, out[:, batch:]


def _to_device(mask: Tensor, device: torch.device) -> Tensor:
    """A CPU-drawn mask on ``device``; to CUDA through pinned memory without blocking, so the
    copy does not stall the kernels queued before it."""
    if device.type != "cuda":
        return mask
    return mask.pin_memory().to(device, non_blocking=True)


def _train(
    windows: Tensor,
    generators: list[torch.Generator],
    iterations: int,
    batch_size: int,
    lr: float,
    device: torch.device,
    progress: bool,
) -> StackedTS2Vec:
    """Train ``len(generators)`` encoders at once on ``windows (N, T, C)``; see
    :func:`train_ts2vec`. Returns the weight-averaged encoders in eval mode."""
    n, length, channels = windows.shape
    batch = min(batch_size, n)
    repeats = len(generators)
    model = StackedTS2Vec(channels, generators).to(device)
    batches, crops = _draw_schedule(generators, n, length, iterations, batch)
    batches, crops = batches.to(device), crops.to(device)
    windows = windows.to(device=device, dtype=torch.float32)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    # Reference: AveragedModel(net) followed by update_parameters(net): the average starts as a
    # copy of the initial weights.
    averaged = copy.deepcopy(model).requires_grad_(False)
    params, avg_params = list(model.parameters()), list(averaged.parameters())
    n_masks = 2 * batch * length
    for it in progress_bar(range(iterations), "TS2Vec", progress):
        views, lengths = _crop_views(windows[batches[:, it]], crops[:, it])
        # The reference draws a timestamp mask per forward pass and dropout per element; here
        # both views share one pass, each repeat drawing its masks in one call.
        u = torch.stack([torch.rand(n_masks * (1 + OUTPUT_DIMS), generator=g) for g in generators])
        timestamp_mask = (u[:, :n_masks] < MASK_KEEP).view(repeats, 2 * batch, length)
        dropout_keep = (u[:, n_masks:] >= DROPOUT).view(repeats, 2 * batch, length, OUTPUT_DIMS)
        out = model(
            views, lengths, _to_device(timestamp_mask, device), _to_device(dropout_keep, device)
        )  # (R, 2B, T, D)
        out1, out2 = _common_segments(out, crops[:, it])
        loss = hierarchical_contrastive_loss(out1, out2, crops[:, it, 0]).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        # Reference: AveragedModel.update_parameters after every step, the running equal-weight
        # mean avg += (w - avg) / (k + 1) over the k weights averaged so far.
        with torch.no_grad():
            torch._foreach_lerp_(avg_params, params, 1.0 / (it + 2))
    return averaged.eval()


def train_ts2vec(
    windows: Tensor,
    *,
    repeats: int,
    seed: int,
    iterations: int | None = None,
    batch_size: int = 8,
    lr: float = 1e-3,
    device: str | torch.device | None = None,
    progress: bool = False,
) -> StackedTS2Vec:
    """Train ``repeats`` TS2Vec encoders at once on ``windows`` (the reference ``TS2Vec.fit``).

    Args:
        windows: ``(N, T, C)`` finite float windows (the real ones, in ``[0, 1]`` for
            Context-FID), ``T >= 2``.
        repeats: ``R``, independent encoders; repeat ``r`` draws all its randomness from
            ``repeat_generators(seed, R, cpu)[r]``, so it is the same for any ``R``.
        seed: the metric seed.
        iterations: optimizer steps; ``None``: 200 if ``N * T * C <= 100000`` else 600 (the
            reference default).
        batch_size: windows per batch (``min(batch_size, N)`` is used).
        lr: AdamW learning rate (weight decay stays at torch's 0.01).
        device: where to train; ``None``: CUDA when available.
        progress: show a progress bar.

    Returns:
        The weight-averaged encoders (``R`` stacked), in eval mode, on ``device``.
    """
    if not isinstance(windows, Tensor) or windows.dim() != 3 or not windows.is_floating_point():
        got = tuple(windows.shape) if isinstance(windows, Tensor) else type(windows).__name__
        raise ValueError(f"windows must be a float tensor of shape (N, T, C); got {got}")
    n, length, channels = windows.shape
    if n < 1 or channels < 1 or length < 2:
        raise ValueError(
            f"windows need N >= 1, T >= 2 (the shortest crop is 2 steps) and C >= 1; got shape "
            f"{tuple(windows.shape)}"
        )
    if not bool(torch.isfinite(windows).all()):
        raise ValueError("windows must be finite; got NaN or infinite entries")
    check_int("repeats", repeats)
    check_int("seed", seed, minimum=0)
    if iterations is None:
        iterations = protocol_iterations(n, length, channels)
    check_int("iterations", iterations)
    check_int("batch_size", batch_size)
    if isinstance(lr, bool) or not isinstance(lr, int | float) or not lr > 0:
        raise ValueError(f"lr must be a positive number; got {lr!r}")
    device = resolve_device(device)
    generators = repeat_generators(seed, repeats, torch.device("cpu"))
    return _train(windows, generators, iterations, batch_size, float(lr), device, progress)
