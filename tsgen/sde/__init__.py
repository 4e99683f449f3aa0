"""The shared SDE layer: processes with closed forms, bridges, the spectral Hilbert-space OU,
solvers, time grids and noise sources. It imports nothing else from tsgen.

Example::

    import torch
    from tsgen.sde import VPSDE, solve, uniform_grid

    out = solve(VPSDE(), torch.randn(16, 24, 6), uniform_grid(0.0, 1.0, 100), method="euler")
    out.x.shape  # (16, 24, 6)
"""

from tsgen.sde.base import ODE, SDE, GaussianTransitions, LinearSDE, NoiseType, expand_time
from tsgen.sde.bridges import (
    BridgeCoefficients,
    BridgePreconditioning,
    LinearBridge,
    ReverseBridge,
    bridge_coefficients,
    bridge_preconditioning,
    ddbm_vp_coefficients,
    h_transform,
)
from tsgen.sde.grids import (
    karras_grid,
    log_snr_grid,
    uniform_grid,
    uniform_then_karras_grid,
    validate_grid,
)
from tsgen.sde.noise import (
    BrownianIntervalNoise,
    ExplicitIncrements,
    GaussianNoise,
    Increments,
    NoiseSource,
    PerSampleNoise,
    coarsen_increments,
    standard_normal,
)
from tsgen.sde.processes import (
    VESDE,
    VPSDE,
    BrownianMotion,
    ControlledSDE,
    GeometricBrownianMotion,
    OrnsteinUhlenbeck,
)
from tsgen.sde.solvers import SOLVERS, Solver, SolverOutput, bridge_sample, make_solver, solve
from tsgen.sde.spectral import (
    SpectralBasis,
    SpectralOU,
    cameron_martin_norm2,
    gaussian_shift_log_rnd,
)

__all__ = [
    "ODE",
    "SDE",
    "SOLVERS",
    "VESDE",
    "VPSDE",
    "BridgeCoefficients",
    "BridgePreconditioning",
    "BrownianIntervalNoise",
    "BrownianMotion",
    "ControlledSDE",
    "ExplicitIncrements",
    "GaussianNoise",
    "GaussianTransitions",
    "GeometricBrownianMotion",
    "Increments",
    "LinearBridge",
    "LinearSDE",
    "NoiseSource",
    "NoiseType",
    "OrnsteinUhlenbeck",
    "PerSampleNoise",
    "ReverseBridge",
    "Solver",
    "SolverOutput",
    "SpectralBasis",
    "SpectralOU",
    "bridge_coefficients",
    "bridge_preconditioning",
    "bridge_sample",
    "cameron_martin_norm2",
    "coarsen_increments",
    "ddbm_vp_coefficients",
    "expand_time",
    "gaussian_shift_log_rnd",
    "h_transform",
    "karras_grid",
    "log_snr_grid",
    "make_solver",
    "solve",
    "standard_normal",
    "uniform_grid",
    "uniform_then_karras_grid",
    "validate_grid",
]
