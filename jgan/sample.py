"""Sample a trained run: `python -m jgan.sample RUN_DIR --num 64 --seed 0 --out grid.png`.

The generator comes from the run's latest checkpoint (or `--step`), with BatchNorm in inference
mode, so the same command on the same checkpoint writes the same pixels.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import jax
import numpy as np

from jgan import config as config_lib
from jgan.checkpoint import Checkpointer
from jgan.errors import UserError
from jgan.images import make_grid, save_png, to_uint8
from jgan.train.loop import abstract_train_state, run_keys
from jgan.train.parallel import make_mesh
from jgan.train.setup import build_gan

CHUNK = 256  # images per generator call, to bound memory


def load_run(run_dir, step: int | None = None):
    """`(setup, state)` of a run directory's checkpoint (the latest unless `step` is given)."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise UserError(f"{run_dir} is not a run directory (no config.json): pass the --workdir "
                        "of a training run")
    checkpointer = Checkpointer(run_dir / "checkpoints")
    step = checkpointer.latest_step() if step is None else step
    if step is None:
        checkpointer.close()
        raise UserError(f"{run_dir} has no checkpoint yet: train it first")
    if step not in checkpointer.all_steps():
        steps = checkpointer.all_steps()
        checkpointer.close()
        raise UserError(f"{run_dir} has no checkpoint at step {step}: choose one of {steps}")
    try:
        meta = checkpointer.restore_meta(step)
        config = config_lib.from_dict(meta["config"])
        setup = build_gan(config, tuple(meta["image_shape"]))
        abstract = abstract_train_state(setup, run_keys(config.train.seed)["init"], make_mesh())
        state, _, _ = checkpointer.restore(step, abstract)
    finally:
        checkpointer.close()
    return setup, state


def generate_images(run_dir, num_images: int, save_folder=None, *, seed: int = 0,
                    step: int | None = None) -> np.ndarray:
    """uint8 images `[num_images, H, W, C]` from the run's generator, z drawn from `seed`.

    With `save_folder`, each image is also written as `000000.png`, `000001.png`, ...
    """
    if num_images < 1:
        raise UserError(f"num_images is {num_images}: ask for at least 1")
    setup, state = load_run(run_dir, step)
    z = jax.random.normal(jax.random.key(seed), (num_images, setup.z_dim))
    sample = jax.jit(setup.sample)
    images = np.concatenate([to_uint8(sample(state, z[i:i + CHUNK]))
                             for i in range(0, num_images, CHUNK)])
    if save_folder is not None:
        for index, image in enumerate(images):
            save_png(image, Path(save_folder) / f"{index:06d}.png")
    return images


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jgan.sample", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", help="a training run's --workdir")
    parser.add_argument("--num", type=int, default=64, help="number of images (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the latents (default 0)")
    parser.add_argument("--step", type=int, default=None, help="checkpoint step (default latest)")
    parser.add_argument("--out", default="samples.png", help="PNG grid to write")
    parser.add_argument("--save-folder", default=None, help="also write each image here")
    args = parser.parse_args(argv)
    try:
        images = generate_images(args.run_dir, args.num, args.save_folder, seed=args.seed,
                                 step=args.step)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    save_png(make_grid(images, columns=math.ceil(math.sqrt(len(images)))), args.out)
    print(f"wrote {len(images)} images to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
