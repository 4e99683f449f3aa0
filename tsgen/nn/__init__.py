"""Backbone networks: denoisers ``(x, t) -> x``-shaped predictions, independent of any SDE.

- :class:`TrendSeasonTransformer`: the interpretable trend + season transformer (Diffusion-TS),
  the TimeBridge backbone; ``return_components=True`` gives its :class:`TrendSeasonComponents`.
"""

from tsgen.nn import embeddings, transformer
from tsgen.nn.embeddings import *  # noqa: F403 - re-exported: the names listed in its __all__
from tsgen.nn.transformer import *  # noqa: F403 - re-exported: the names listed in its __all__

__all__ = sorted([*embeddings.__all__, *transformer.__all__])
