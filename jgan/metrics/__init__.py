"""Sample-quality metrics on feature arrays (FID, KID, IS, precision/recall, density/coverage).

Feature networks (a classifier of jgan's own, InceptionV3) and the evaluation command are the
next part of this package.
"""

from jgan.metrics.distances import (density_coverage, feature_statistics, fid, frechet_distance,
                                    inception_score, kid, precision_recall)

__all__ = ["density_coverage", "feature_statistics", "fid", "frechet_distance",
           "inception_score", "kid", "precision_recall"]
