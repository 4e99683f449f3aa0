"""Spectral Hilbert-space Ornstein-Uhlenbeck process (sde.md, "Spectral Hilbert-space OU").

Functions on the box ``[0, L_1] x ... x [0, L_d]`` are expanded in an orthonormal eigenbasis
``e_k`` of the Laplacian (a tensor product of one 1-D basis per axis):

- ``sine`` (Dirichlet): ``sqrt(2/L) sin(pi k x / L)``, k = 1..K, on the interior points
  ``x_j = j L / (N + 1)``, j = 1..N, of a uniform grid (DST-I).
- ``cosine`` (Neumann): ``1 / sqrt(L)`` then ``sqrt(2/L) cos(pi k x / L)``, k = 1..K-1, on the cell
  centres ``x_j = (j + 1/2) L / N``, j = 0..N-1, as pixels are (DCT-II, inverse DCT-III).
- ``fourier`` (periodic): ``1 / sqrt(L)`` then the pairs ``sqrt(2/L) cos(2 pi j x / L)``,
  ``sqrt(2/L) sin(2 pi j x / L)``, j = 1, 2, ..., on ``x_j = j L / N``, j = 0..N-1 (rfft).

The first ``K`` functions of each list are kept. The Laplacian eigenvalue of a mode is
``|freq|^2``, summed over axes, with the physical angular frequency (``pi k / L`` for sine and
cosine, ``2 pi j / L`` for the Fourier pair ``j``), so the prior does not depend on the grid.

The OU process ``dX = -A X dt + s Q^{1/2} dW`` with ``A e_k = a_k e_k`` and ``Q e_k = lambda_k e_k``
is one independent 1-D OU per mode (:class:`SpectralOU`), and Gaussian measures on the coefficients
are products over modes (:func:`cameron_martin_norm2`, :func:`gaussian_shift_log_rnd`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, get_args

import torch
from einops import rearrange
from torch import Tensor

from tsgen.sde.base import broadcasts_to
from tsgen.sde.noise import NoiseSource, standard_normal
from tsgen.sde.processes import OrnsteinUhlenbeck

__all__ = [
    "BasisKind",
    "SpectralBasis",
    "SpectralOU",
    "cameron_martin_norm2",
    "gaussian_shift_log_rnd",
]

BasisKind = Literal["sine", "cosine", "fourier"]
_KINDS: tuple[str, ...] = get_args(BasisKind)


# --------------------------------------------------------------------------------------------
# 1-D building blocks along the last dimension (unnormalised sums; the basis adds the scaling).
# --------------------------------------------------------------------------------------------


def _dst1(x: Tensor) -> Tensor:
    """DST-I along the last dim: ``S_k = sum_{j=1}^{N} x_j sin(pi k j / (N + 1))``, k = 1..N.

    The odd extension ``g = [0, x, 0, -reverse(x)]`` of length ``2 (N + 1)`` has the DFT
    ``G_k = -2i S_k``, so ``S_k = -Im(G_k) / 2``.

    Args:
        x: ``(..., N)``.

    Returns:
        ``(..., N)``, entry ``k - 1`` holding ``S_k``.
    """
    n = x.shape[-1]
    zero = torch.zeros_like(x[..., :1])
    extended = torch.cat([zero, x, zero, -x.flip(-1)], dim=-1)
    return -0.5 * torch.fft.rfft(extended, dim=-1).imag[..., 1 : n + 1]


def _dct2(x: Tensor) -> Tensor:
    """DCT-II along the last dim: ``C_k = sum_{j=0}^{N-1} x_j cos(pi k (j + 1/2) / N)``.

    The even extension ``y = [x, reverse(x)]`` of length ``2N`` has the DFT
    ``Y_k = 2 e^{i theta_k} C_k`` with ``theta_k = pi k / (2N)``, so
    ``C_k = Re(e^{-i theta_k} Y_k) / 2 = (Re Y_k cos theta_k + Im Y_k sin theta_k) / 2``.

    Args:
        x: ``(..., N)``.

    Returns:
        ``(..., N)``, entry ``k`` holding ``C_k``.
    """
    n = x.shape[-1]
    spectrum = torch.fft.rfft(torch.cat([x, x.flip(-1)], dim=-1), dim=-1)[..., :n]
    theta = torch.arange(n, dtype=x.dtype, device=x.device) * (math.pi / (2 * n))
    return 0.5 * (spectrum.real * torch.cos(theta) + spectrum.imag * torch.sin(theta))


def _dct3(w: Tensor) -> Tensor:
    """DCT-III along the last dim: ``f_j = sum_{k=0}^{N-1} w_k cos(pi k (j + 1/2) / N)``.

    ``f_j = Re sum_k w_k e^{i theta_k} e^{2 pi i k j / (2N)}`` with ``theta_k = pi k / (2N)``. An
    unnormalised inverse real FFT of length ``2N`` evaluates ``Z_0 + 2 Re sum_{0<k<N} Z_k e^{...}``
    (plus a Nyquist term, here zero), so ``Z_0 = w_0`` and ``Z_k = w_k e^{i theta_k} / 2``.

    Args:
        w: ``(..., N)``.

    Returns:
        ``(..., N)``, entry ``j`` holding ``f_j``.
    """
    n = w.shape[-1]
    theta = torch.arange(n, dtype=w.dtype, device=w.device) * (math.pi / (2 * n))
    half = torch.full_like(theta, 0.5)
    half[0] = 1.0
    spectrum = torch.complex(w * half * torch.cos(theta), w * half * torch.sin(theta))
    spectrum = torch.cat([spectrum, torch.zeros_like(spectrum[..., :1])], dim=-1)
    return torch.fft.irfft(spectrum, n=2 * n, dim=-1, norm="forward")[..., :n]


def _real_dft(x: Tensor) -> Tensor:
    """Real DFT along the last dim in the interleaved real basis.

    With ``F_m = sum_j x_j e^{-2 pi i m j / N}`` (rfft), returns
    ``[F_0, Re F_1, -Im F_1, Re F_2, -Im F_2, ...]`` for m = 1..floor(N/2), i.e. the sums of
    ``x_j`` against ``1``, ``cos(2 pi m j / N)`` and ``sin(2 pi m j / N)``.

    Args:
        x: ``(..., N)``.

    Returns:
        ``(..., 1 + 2 floor(N/2))``.
    """
    spectrum = torch.fft.rfft(x, dim=-1)
    pairs = torch.stack([spectrum.real[..., 1:], -spectrum.imag[..., 1:]], dim=-1)
    return torch.cat([spectrum.real[..., :1], rearrange(pairs, "... m two -> ... (m two)")], dim=-1)


def _inverse_real_dft(w: Tensor, n: int) -> Tensor:
    """``f_j = w_0 + sum_m [w_{2m-1} cos(2 pi m j / N) + w_{2m} sin(2 pi m j / N)]`` on N points.

    ``w`` holds ``1 + 2 floor(N/2)`` entries in :func:`_real_dft`'s order. An unnormalised inverse
    real FFT evaluates ``Z_0 + 2 Re sum_{0<m<N/2} Z_m e^{2 pi i m j / N} + Re Z_{N/2} (-1)^j``
    (last term for even N only), so ``Z_0 = w_0``, ``Z_m = (w_{2m-1} - i w_{2m}) / 2`` and, at
    the Nyquist frequency of an even N, ``Z_{N/2} = w_{N-1}`` (its sine vanishes on the grid).

    Args:
        w: ``(..., 1 + 2 floor(N/2))``.
        n: the number of grid points N.

    Returns:
        ``(..., N)``.
    """
    pairs = rearrange(w[..., 1:], "... (m two) -> ... m two", two=2)
    halves = torch.full((pairs.shape[-2],), 0.5, dtype=w.dtype, device=w.device)
    if n % 2 == 0:
        halves[-1] = 1.0
    spectrum = torch.complex(pairs[..., 0] * halves, -pairs[..., 1] * halves)
    zero_mode = torch.complex(w[..., :1], torch.zeros_like(w[..., :1]))
    return torch.fft.irfft(torch.cat([zero_mode, spectrum], dim=-1), n=n, dim=-1, norm="forward")


def _pad_last(x: Tensor, size: int) -> Tensor:
    """Zero-pad the last dim of ``x`` (``(..., K)``, ``K <= size``) to ``(..., size)``."""
    return torch.nn.functional.pad(x, (0, size - x.shape[-1]))


# --------------------------------------------------------------------------------------------
# The basis
# --------------------------------------------------------------------------------------------


def _broadcast_axes(
    name: str, value: int | float | Sequence[int | float], ndim: int
) -> tuple[int | float, ...]:
    """Repeat a scalar ``ndim`` times, or check that a sequence has ``ndim`` entries."""
    if isinstance(value, (tuple, list)):
        if len(value) != ndim:
            raise ValueError(
                f"{name} must be a number or a tuple with one entry per axis (ndim={ndim}); "
                f"got {len(value)} entries: {tuple(value)}"
            )
        return tuple(value)
    return (value,) * ndim


def _axis_ints(name: str, value: int | Sequence[int], ndim: int) -> tuple[int, ...]:
    """Per-axis positive integers from an int or a sequence of ``ndim`` ints."""
    entries = _broadcast_axes(name, value, ndim)
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in entries):
        raise ValueError(f"{name} must hold positive integers (one per axis); got {entries}")
    return tuple(int(v) for v in entries)


def _axis_floats(name: str, value: float | Sequence[float], ndim: int) -> tuple[float, ...]:
    """Per-axis finite positive floats from a float or a sequence of ``ndim`` floats."""
    entries = tuple(float(v) for v in _broadcast_axes(name, value, ndim))
    if not all(math.isfinite(v) and v > 0 for v in entries):
        raise ValueError(f"{name} must be finite and positive on every axis; got {entries}")
    return entries


class SpectralBasis:
    """Orthonormal Laplacian eigenbasis on ``[0, L_1] x ... x [0, L_d]`` and its grid transforms.

    Basis functions are products of one 1-D function per axis (module docstring); a mode is a
    multi-index ``(k_1, ..., k_d)`` and mode tensors have shape ``modes = n_modes``. Coefficients
    approximate the L2 inner products ``<f, e_k>`` by quadrature with weight = cell size, so they
    do not depend on the grid size. Transforms run on torch FFTs and are differentiable.

    Args:
        kind: ``"sine"`` (Dirichlet), ``"cosine"`` (Neumann) or ``"fourier"`` (periodic).
        n_modes: modes ``K`` per axis: an int (every axis) or a tuple of ``ndim`` ints, each > 0.
        length: box side ``L``: a float (every axis) or a tuple of ``ndim`` floats, each > 0.
        ndim: the spatial dimension ``d >= 1``.
    """

    def __init__(
        self,
        kind: BasisKind,
        n_modes: int | tuple[int, ...],
        length: float | tuple[float, ...] = 1.0,
        ndim: int = 1,
    ) -> None:
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {_KINDS}; got {kind!r}")
        if not isinstance(ndim, int) or isinstance(ndim, bool) or ndim < 1:
            raise ValueError(f"ndim must be an integer >= 1; got {ndim!r}")
        self.kind: BasisKind = kind
        self.ndim = ndim
        self.n_modes: tuple[int, ...] = _axis_ints("n_modes", n_modes, ndim)
        self.length: tuple[float, ...] = _axis_floats("length", length, ndim)

    def __repr__(self) -> str:
        return (
            f"SpectralBasis(kind={self.kind!r}, n_modes={self.n_modes}, length={self.length}, "
            f"ndim={self.ndim})"
        )

    @property
    def has_zero_mode(self) -> bool:
        """Whether the constant function is a basis function (Laplacian eigenvalue 0)."""
        return self.kind != "sine"

    # ---- frequencies and eigenvalues ---------------------------------------------------------

    def _frequencies(self, axis: int, dtype: torch.dtype, device: torch.device | None) -> Tensor:
        """Physical angular frequency of each mode on ``axis``, ``(K_axis,)``.

        sine: ``pi k / L`` for k = 1..K; cosine: ``pi k / L`` for k = 0..K-1; fourier: index i
        is the pair ``j = ceil(i / 2)`` with frequency ``2 pi j / L``.
        """
        index = torch.arange(self.n_modes[axis], dtype=dtype, device=device)
        length = self.length[axis]
        if self.kind == "sine":
            return (math.pi / length) * (index + 1)
        if self.kind == "cosine":
            return (math.pi / length) * index
        return (2 * math.pi / length) * torch.ceil(index / 2)

    @property
    def laplacian_eigenvalues(self) -> Tensor:
        """Eigenvalues of ``-Laplacian``, ``sum_axes freq_axis^2``, shape ``modes``.

        Computed in float64 and returned in ``torch.get_default_dtype()`` on the CPU.
        """
        total = torch.zeros(self.n_modes, dtype=torch.float64)
        for axis in range(self.ndim):
            freq2 = self._frequencies(axis, torch.float64, None) ** 2
            shape = [1] * self.ndim
            shape[axis] = -1
            total = total + freq2.reshape(shape)
        return total.to(torch.get_default_dtype())

    # ---- grids and point evaluation ----------------------------------------------------------

    def _resolution(self, resolution: int | tuple[int, ...]) -> tuple[int, ...]:
        """Per-axis grid sizes from an int or a tuple, each at least the number of modes."""
        sizes = _axis_ints("resolution", resolution, self.ndim)
        if any(n < k for n, k in zip(sizes, self.n_modes, strict=True)):
            raise ValueError(
                f"resolution must have at least n_modes={self.n_modes} points per axis; got {sizes}"
            )
        return sizes

    def _axis_points(self, axis: int, n: int) -> Tensor:
        """The ``n`` grid points on ``axis`` (float64): module docstring's grid column."""
        length = self.length[axis]
        j = torch.arange(n, dtype=torch.float64)
        if self.kind == "sine":
            return (j + 1) * length / (n + 1)
        if self.kind == "cosine":
            return (j + 0.5) * length / n
        return j * length / n

    def grid(self, resolution: int | tuple[int, ...]) -> Tensor:
        """Coordinates of the grid on which :meth:`to_coefficients` and :meth:`to_grid` work.

        Args:
            resolution: points per axis, an int or a tuple of ``ndim`` ints (``>= n_modes``).

        Returns:
            ``(*spatial, d)`` in ``torch.get_default_dtype()``, also for ``d = 1`` (``(N, 1)``):
            entry ``[j_1, ..., j_d]`` is the point ``(x_{j_1}, ..., x_{j_d})``.
        """
        sizes = self._resolution(resolution)
        axes = [self._axis_points(a, n) for a, n in enumerate(sizes)]
        points = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)
        return points.to(torch.get_default_dtype())

    def _evaluate_axis(self, axis: int, x: Tensor) -> Tensor:
        """1-D basis functions of ``axis`` at ``x`` (``(...,)``), returned as ``(..., K_axis)``."""
        length = self.length[axis]
        freq = self._frequencies(axis, x.dtype, x.device)
        phase = x.unsqueeze(-1) * freq
        norm = math.sqrt(2 / length)
        if self.kind == "sine":
            return norm * torch.sin(phase)
        # Constant mode: 1 / sqrt(L); cosine modes sqrt(2/L) cos; Fourier sines at even i >= 2.
        scale = torch.full_like(freq, norm)
        scale[0] = 1 / math.sqrt(length)
        if self.kind == "cosine":
            return scale * torch.cos(phase)
        is_sine = torch.arange(freq.shape[0], device=x.device) % 2 == 0
        is_sine[0] = False
        return scale * torch.where(is_sine, torch.sin(phase), torch.cos(phase))

    def evaluate(self, points: Tensor) -> Tensor:
        """Values of every basis function at arbitrary points.

        Args:
            points: ``(..., d)`` coordinates (outside the box the functions extend by their
                formulas).

        Returns:
            ``(..., *modes)``: ``out[..., k_1, ..., k_d] = prod_a e_{k_a}(points[..., a])``.
        """
        if points.ndim < 1 or points.shape[-1] != self.ndim:
            raise ValueError(
                f"points must have shape (..., d) with d = ndim = {self.ndim}; "
                f"got {tuple(points.shape)}"
            )
        out = self._evaluate_axis(0, points[..., 0])
        for axis in range(1, self.ndim):
            values = self._evaluate_axis(axis, points[..., axis])
            # Tensor product: (..., K_1..K_a) x (..., K_{a+1}) -> (..., K_1..K_{a+1}).
            out = out.unsqueeze(-1) * values.reshape(*values.shape[:-1], *([1] * axis), -1)
        return out

    # ---- grid <-> coefficients ---------------------------------------------------------------

    def _check_layout(self, name: str, tensor: Tensor, layout: str) -> None:
        if tensor.ndim != 2 + self.ndim:
            raise ValueError(
                f"{name} must have shape {layout} with {self.ndim} spatial dim(s), i.e. "
                f"{2 + self.ndim} dims; got shape {tuple(tensor.shape)}"
            )

    def _analyse_axis(self, x: Tensor, axis: int) -> Tensor:
        """Coefficients on ``axis`` of grid values ``(..., N)``: ``(..., K_axis)``.

        ``c_k = h sum_j f(x_j) e_k(x_j)`` with cell size ``h`` (``L / (N+1)`` for sine, ``L / N``
        otherwise): the quadrature of ``<f, e_k>``. The discrete basis is orthonormal for this
        weight except the Fourier Nyquist cosine of an even N (its sine partner vanishes on the
        grid and it has discrete norm^2 2), whose coefficient is the orthogonal projection
        ``h sum_j f e / 2``.
        """
        n, k, length = x.shape[-1], self.n_modes[axis], self.length[axis]
        if self.kind == "sine":
            # c_k = h sqrt(2/L) sum_j f_j sin(pi k j / (N+1)), h = L / (N+1).
            return (length / (n + 1)) * math.sqrt(2 / length) * _dst1(x)[..., :k]
        h = length / n
        weight = torch.full((n,), h * math.sqrt(2 / length), dtype=x.dtype, device=x.device)
        weight[0] = h / math.sqrt(length)
        if self.kind == "cosine":
            # c_0 = h / sqrt(L) C_0, c_k = h sqrt(2/L) C_k with C the DCT-II.
            return (weight * _dct2(x))[..., :k]
        if n % 2 == 0:
            weight[n - 1] = weight[n - 1] / 2
        # c = h [1/sqrt(L), sqrt(2/L), ...] * [sum f, sum f cos, sum f sin, ...]; index N (the
        # Nyquist sine of an even N, zero on the grid) is dropped by the truncation k <= N.
        return (weight * _real_dft(x)[..., :n])[..., :k]

    def _synthesise_axis(self, c: Tensor, axis: int, n: int) -> Tensor:
        """The series ``sum_k c_k e_k(x_j)`` on ``axis``'s ``n``-point grid.

        Maps ``(..., K_axis)`` coefficients to ``(..., n)`` values, ``n >= K_axis``.
        """
        length = self.length[axis]
        norm = math.sqrt(2 / length)
        if self.kind == "sine":
            # f_j = sqrt(2/L) sum_k c_k sin(pi k j / (N+1)): a DST-I of the zero-padded c.
            return norm * _dst1(_pad_last(c, n))
        scale = torch.full((c.shape[-1],), norm, dtype=c.dtype, device=c.device)
        scale[0] = 1 / math.sqrt(length)
        if self.kind == "cosine":
            # f_j = c_0 / sqrt(L) + sqrt(2/L) sum_k c_k cos(pi k (j + 1/2) / N): a DCT-III.
            return _dct3(_pad_last(scale * c, n))
        return _inverse_real_dft(_pad_last(scale * c, 1 + 2 * (n // 2)), n)

    def to_coefficients(self, values: Tensor) -> Tensor:
        """Grid values to the first ``n_modes`` coefficients ``<f, e_k>`` (quadrature).

        Args:
            values: ``(B, C, *spatial)`` samples on :meth:`grid` of resolution ``spatial``, with
                at least ``n_modes`` points per axis.

        Returns:
            ``(B, C, *modes)``, in ``values``' dtype.
        """
        self._check_layout("values", values, "(B, C, *spatial)")
        spatial = tuple(values.shape[2:])
        if any(n < k for n, k in zip(spatial, self.n_modes, strict=True)):
            raise ValueError(
                f"values must have at least n_modes={self.n_modes} grid points per axis; "
                f"got spatial shape {spatial}"
            )
        out = values
        for axis in range(self.ndim):
            dim = 2 + axis
            out = self._analyse_axis(out.movedim(dim, -1), axis).movedim(-1, dim)
        return out

    def to_grid(self, coeffs: Tensor, resolution: int | tuple[int, ...]) -> Tensor:
        """Synthesis: the series ``sum_k c_k e_k`` evaluated on :meth:`grid` of ``resolution``.

        The exact inverse of :meth:`to_coefficients` when ``resolution == n_modes``.

        Args:
            coeffs: ``(B, C, *modes)``.
            resolution: points per axis, an int or a tuple of ``ndim`` ints (``>= n_modes``).

        Returns:
            ``(B, C, *spatial)`` with ``spatial`` the per-axis resolution.
        """
        self._check_layout("coeffs", coeffs, "(B, C, *modes)")
        if tuple(coeffs.shape[2:]) != self.n_modes:
            raise ValueError(
                f"coeffs must have mode shape n_modes={self.n_modes}; got {tuple(coeffs.shape[2:])}"
            )
        sizes = self._resolution(resolution)
        out = coeffs
        for axis, n in enumerate(sizes):
            dim = 2 + axis
            out = self._synthesise_axis(out.movedim(dim, -1), axis, n).movedim(-1, dim)
        return out


# --------------------------------------------------------------------------------------------
# The spectral OU process
# --------------------------------------------------------------------------------------------


class SpectralOU(OrnsteinUhlenbeck):
    """``dX = -A X dt + s Q^{1/2} dW`` on coefficient tensors ``(B, C, *modes)``.

    Per mode: rate ``a_k = c + |freq_k|^2`` (Laplacian eigenvalue), noise covariance eigenvalue
    ``lambda_k = a_k^{-gamma}``, so mode k is the 1-D OU ``dX_k = -a_k X_k dt + s sqrt(lambda_k)
    dW_k`` and every closed form of :class:`OrnsteinUhlenbeck` applies per mode. The stationary
    covariance ``s^2 lambda_k / (2 a_k) ~ |k|^{-2 (1 + gamma)}`` is trace class iff
    ``2 (1 + gamma) > d``, checked analytically at construction.

    Coefficients ``rate`` (``a_k``), ``scale`` (``s sqrt(lambda_k)``) and
    ``covariance_eigenvalues`` (``lambda_k``) are buffers of shape ``modes`` in the default dtype.

    Args:
        basis: the eigenbasis (sets ``modes`` and the eigenvalues).
        c: shift ``c >= 0`` of the rate; ``c > 0`` when the basis has a constant mode.
        gamma: smoothness ``gamma >= 0`` of the noise.
        scale: amplitude ``s > 0``.
    """

    def __init__(
        self, basis: SpectralBasis, c: float = 1.0, gamma: float = 1.0, scale: float = 1.0
    ) -> None:
        c, gamma, scale = float(c), float(gamma), float(scale)
        if not math.isfinite(c) or c < 0 or (basis.has_zero_mode and c == 0):
            need = "> 0 (the constant mode has eigenvalue 0)" if basis.has_zero_mode else ">= 0"
            raise ValueError(f"c must be finite and {need} for a {basis.kind} basis; got c={c}")
        if not math.isfinite(gamma) or gamma < 0:
            raise ValueError(f"gamma must be finite and >= 0; got gamma={gamma}")
        if not 2 * (1 + gamma) > basis.ndim:
            raise ValueError(
                f"gamma and d: the stationary covariance decays like |k|^(-2 (1 + gamma)) and is "
                f"trace class iff 2 (1 + gamma) > d; got gamma={gamma}, d={basis.ndim}"
            )
        rate = c + basis.laplacian_eigenvalues  # a_k = c + |freq_k|^2
        lam = rate ** (-gamma)  # lambda_k = a_k^(-gamma)
        super().__init__(rate=rate, scale=scale * lam.sqrt())
        self.register_buffer("covariance_eigenvalues", lam)
        self.basis = basis
        self.c = c
        self.gamma = gamma
        self.amplitude = scale

    def extra_repr(self) -> str:
        return f"basis={self.basis!r}, c={self.c}, gamma={self.gamma}, scale={self.amplitude}"

    @property
    def modes(self) -> tuple[int, ...]:
        """The mode shape ``n_modes`` of the basis."""
        return self.basis.n_modes

    def stationary_covariance_eigenvalues(self) -> Tensor:
        """``s^2 lambda_k / (2 a_k)``, the stationary variance per mode, shape ``modes``."""
        return self.scale**2 / (2 * self.rate)

    def sample_stationary(
        self, n: int, channels: int, noise: NoiseSource | Tensor | None = None
    ) -> Tensor:
        """Draw from the stationary law ``N(0, s^2 lambda_k / (2 a_k))`` per mode.

        Args:
            n: batch size ``B``.
            channels: channels ``C``.
            noise: where the standard normals ``(n, channels, *modes)`` come from (see
                :func:`tsgen.sde.noise.standard_normal`).

        Returns:
            ``(n, channels, *modes)`` on the buffers' device and dtype.
        """
        std = self.stationary_covariance_eigenvalues().sqrt()
        shape = (n, channels, *self.modes)
        return std * standard_normal(shape, std.dtype, std.device, noise)


# --------------------------------------------------------------------------------------------
# Gaussian measures per mode
# --------------------------------------------------------------------------------------------


def _inverse_weighted(name: str, h: Tensor, variances: Tensor) -> Tensor:
    """``h / variances`` after checking that ``variances`` broadcasts to ``h``'s event shape."""
    if h.ndim < 1:
        raise ValueError(f"{name} must have a batch dim, shape (B, *event); got a scalar")
    event = tuple(h.shape[1:])
    if not broadcasts_to(variances.shape, event):
        raise ValueError(
            f"variances must broadcast to the event shape {event} of {name}; "
            f"got shape {tuple(variances.shape)}"
        )
    return h / variances


def cameron_martin_norm2(h: Tensor, variances: Tensor) -> Tensor:
    """Squared Cameron-Martin norm ``|h|^2_{C^{-1}} = sum_k h_k^2 / C_k`` of ``N(0, diag C)``.

    Args:
        h: ``(B, *event)`` coefficients.
        variances: positive ``C_k``, broadcastable to ``event``.

    Returns:
        ``(B,)``, summed over all non-batch dims.
    """
    return (h * _inverse_weighted("h", h, variances)).flatten(1).sum(-1)


def gaussian_shift_log_rnd(x: Tensor, shift: Tensor, variances: Tensor) -> Tensor:
    """``log dN(shift, C) / dN(0, C) (x) = <shift, x>_{C^{-1}} - |shift|^2_{C^{-1}} / 2``.

    Per mode ``log N(x; m, C) - log N(x; 0, C) = (2 m x - m^2) / (2 C)``, summed over modes.

    Args:
        x: ``(B, *event)``.
        shift: ``m``, broadcastable to ``x`` (e.g. ``(B, *event)`` or ``event``).
        variances: positive ``C_k``, broadcastable to ``event``.

    Returns:
        ``(B,)``.
    """
    try:
        shift = shift.expand_as(x)
    except RuntimeError as error:
        raise ValueError(
            f"shift must broadcast to x's shape {tuple(x.shape)}; got {tuple(shift.shape)}"
        ) from error
    weighted = _inverse_weighted("shift", shift, variances)
    return (weighted * (x - 0.5 * shift)).flatten(1).sum(-1)
