"""Command-line tools over a training run, each `python -m jgan.tools.<name> RUN_DIR ...`.

- `sample`: a grid (and single images) from a run's generator;
- `evaluate`: FID, KID, IS, precision/recall of a checkpoint;
- `evaluate_bigan`: a BiGAN encoder's probes, reconstructions and interpolations;
- `components`: one network of a run, exported weights-only or combined with another run's.
"""
