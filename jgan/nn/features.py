"""D's last hidden features, which feature matching (Salimans et al. 2016, Sec. 3.1) compares.

A discriminator calls `sow_features(self, h)` on the features its output layer reads; sowing costs
nothing unless the caller asks for the collection (`jgan.train.state.apply_network` with
`features=True`).
"""

import flax.linen as nn

FEATURES_COLLECTION, FEATURES_NAME = "intermediates", "features"


def sow_features(module: nn.Module, features) -> None:
    module.sow(FEATURES_COLLECTION, FEATURES_NAME, features)


def sown_features(collections: dict):
    """The features a `sow_features` call left in an apply's mutable collections."""
    return collections[FEATURES_COLLECTION][FEATURES_NAME][0]
