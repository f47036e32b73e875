"""DANN's MNIST networks (Ganin et al. 2016, section 5.2.2 and figure 4; as in tf-dann).

Feature extractor G_f: conv 5x5 32, ReLU, max-pool 2x2; conv 5x5 48, ReLU, max-pool 2x2 ->
4 * 4 * 48 = 768 features. The paper does not give the padding; these convolutions are unpadded
(28 -> 24 -> 12 -> 8 -> 4, the default of Caffe, the authors' framework) where tf-dann pads them
(SAME, 7 * 7 * 48 features), which costs more per step on a CPU. Label predictor G_y: fc 100,
ReLU, fc 100, ReLU, fc 10. Domain classifier G_d: fc 100, ReLU, fc 1 (the logit of "from the
target domain"). The gradient-reversal layer sits outside, in the step, between G_f and G_d.
"""

from __future__ import annotations

import flax.linen as nn


def max_pool_2x2(x):  # [B, H, W, C] -> [B, H / 2, W / 2, C]
    """2x2 max-pooling with stride 2 as a reshape and a max: the same values as `nn.max_pool`,
    and a quarter less time per DANN step on XLA:CPU, whose max-pool gradient is slow."""
    batch, height, width, channels = x.shape
    return x.reshape(batch, height // 2, 2, width // 2, 2, channels).max(axis=(2, 4))


class DANNFeatures(nn.Module):
    features: tuple[int, ...] = (32, 48)  # narrower for tests

    @nn.compact
    def __call__(self, x, *, train: bool = True):  # [B, 28, 28, 3] -> [B, 4 * 4 * 48]
        del train  # no BatchNorm or dropout
        for features in self.features:
            x = max_pool_2x2(nn.relu(nn.Conv(features, (5, 5), padding="VALID")(x)))
        return x.reshape(x.shape[0], -1)


class DANNLabelPredictor(nn.Module):
    num_classes: int = 10
    hidden: int = 100

    @nn.compact
    def __call__(self, features, *, train: bool = True):  # [B, F] -> [B, num_classes] logits
        del train
        x = features
        for _ in range(2):
            x = nn.relu(nn.Dense(self.hidden)(x))
        return nn.Dense(self.num_classes)(x)


class DANNDomainClassifier(nn.Module):
    hidden: int = 100

    @nn.compact
    def __call__(self, features, *, train: bool = True):  # [B, F] -> [B] logits of "target"
        del train
        return nn.Dense(1)(nn.relu(nn.Dense(self.hidden)(features)))[:, 0]
