"""Sample quality, as GAN papers report it.

- `distances`: FID, KID, IS, precision/recall, density/coverage on feature arrays.
- `features`: feature networks (jgan's 28x28 `classifier`, the FID `inception`).
- `reference`: cached features of a dataset split.
- `evaluation`: the `Evaluator` that `python -m jgan.tools.evaluate` and `--eval-every` use.
"""

from jgan.metrics.distances import (density_coverage, feature_statistics, fid, frechet_distance,
                                    inception_score, kid, precision_recall)

__all__ = ["density_coverage", "feature_statistics", "fid", "frechet_distance",
           "inception_score", "kid", "precision_recall"]
