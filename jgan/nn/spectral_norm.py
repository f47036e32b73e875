"""Spectral normalization (Miyato et al. 2018, Eq. 8): a layer's weight W is used as W / sigma(W).

sigma(W), the largest singular value, is estimated by one power iteration per training call
(Algorithm 1) with `flax.linen.SpectralNorm`. Its vector u and the estimate sigma live in the
"spectral_stats" collection, so they sit in the train state beside BatchNorm's statistics: they are
checkpointed, and a resumed run continues the same iteration.
"""

import flax.linen as nn

SPECTRAL_STATS = "spectral_stats"


def maybe_spectral_norm(layer: nn.Module, x, *, enabled: bool, train: bool):
    """`layer(x)`, with the layer's weights spectrally normalized when `enabled`.

    Call it inside a compact `__call__`. Convolution kernels are flattened to [K*K*C_in, C_out].
    Outside training the stored u is used as it is, so evaluation does not move the estimate.
    """
    if not enabled:
        return layer(x)
    return nn.SpectralNorm(layer, collection_name=SPECTRAL_STATS)(x, update_stats=train)
