"""The samples of an unconditional run that the dataset's classifier assigns to one class, as a
grid, with the classifier's second choice for them: what a class share that is too large is made
of (docs/gan.md#the-quick-start).

    python benchmarks/class_samples.py runs/dcgan_mnist 7 --out docs/dcgan_mnist_sevens.png

Draws `--num` images from the run's latest checkpoint with latents from `--seed` (as
`jgan.tools.sample` does), classifies them with the classifier `jgan.tools.evaluate` uses, and
writes the first 64 assigned to the class.
"""

from __future__ import annotations

import argparse

import numpy as np

from jgan.generate import draw_samples
from jgan.images import make_grid, save_png
from jgan.metrics.evaluation import softmax
from jgan.metrics.features import classifier_network
from jgan.tools.sample import load_run_and_spec

SHOWN = 64


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("label", type=int, help="the class whose samples to show")
    parser.add_argument("--num", type=int, default=2000, help="samples drawn")
    parser.add_argument("--seed", type=int, default=0, help="seed of the latents")
    parser.add_argument("--out", required=True, help="the grid, a .png")
    args = parser.parse_args()
    # The checkpoint read once; the images are those `jgan.tools.sample` draws at this seed.
    setup, state, config, _ = load_run_and_spec(args.run_dir)
    images, _ = draw_samples(setup, state, args.num, seed=args.seed)
    _, logits = classifier_network(config.data.dataset)(images)
    probabilities = softmax(logits)
    chosen = np.flatnonzero(probabilities.argmax(axis=1) == args.label)
    second = np.argsort(probabilities[chosen], axis=1)[:, -2]
    print(f"{len(chosen)} of {args.num} samples are assigned to {args.label}; their second "
          "choice: " + " ".join(f"{label}:{count}" for label, count in
                                enumerate(np.bincount(second, minlength=logits.shape[1]))))
    save_png(make_grid(images[chosen[:SHOWN]], columns=8), args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
