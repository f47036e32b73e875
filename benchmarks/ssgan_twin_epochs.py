"""The PyTorch twin of the K+1 GAN (benchmarks/ssgan_twin.py) trained on its own for whole
epochs, issue 31's "the twin to 20 epochs", for the error-against-epochs curve in docs/ssgan.md.

    python benchmarks/ssgan_twin_epochs.py --data-dir ../shared/datasets \
        --out runs/ssgan_epochs/twin_s0 [--epochs 20] [--seed 0]

It starts where jgan's run of the same seed starts (`ssgan_twin_check.real_run`): jgan's initial
state, D's data-dependent init from `trainx[:500]` included, the same 100 labelled images and
the loader's unlabelled batches in jgan's order. Its own random draws come from torch's
generator, seeded by `--seed`, in the authors' forms: z ~ U[0, 1], each labelled minibatch a
fresh permutation of the labelled set, D's Gaussian noise (std 0.3 on the input, 0.5 after each
hidden layer) in each of its five passes per step. So it is the authors' procedure with its own
randomness, not jgan's: the two runs part within a few steps (docs/ssgan.md), and what can be
compared is their curves. After every epoch (600 steps) D in inference mode (no noise)
classifies the 10,000 test images; OUT/results.json holds the curve in experiments/ssgan.py's
form, so `python benchmarks/ssgan_curves.py runs/ssgan_epochs` draws it beside jgan's runs.
Torch runs on `--threads` threads (2: the machine's cores; run it alone).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

import ssgan_twin  # benchmarks/ is the script's folder, on the path
from jgan.data import find_dataset
from jgan.metrics.reference import split_images
from ssgan_twin_check import flat_variables, real_run

STEPS_PER_EPOCH = 600
TEST_CHUNK = 1000


def draw(generator: torch.Generator, widths: list[int], labelled_count: int, config) -> dict:
    """One step's draws, in `ssgan_twin.run_twin`'s form, and the labelled minibatch's index."""
    batch, model = config.train.batch_size, config.model

    def noise():
        return ([model.input_noise * torch.randn(batch, widths[0], generator=generator)]
                + [model.hidden_noise * torch.randn(batch, width, generator=generator)
                   for width in widths[1:]])

    return {"z_d": torch.rand(batch, model.z_dim, generator=generator),
            "z_g": torch.rand(batch, model.z_dim, generator=generator),
            "d_lab": noise(), "d_unl": noise(), "d_fake": noise(),
            "g_real": noise(), "g_fake": noise(),
            "labelled_index": torch.randperm(labelled_count, generator=generator)[:batch]}


@torch.no_grad()
def test_error(variables: dict, images: np.ndarray, labels: np.ndarray) -> float:
    """D's error as a classifier, in inference mode: no noise (zero draws)."""
    widths = d_widths(variables)
    wrong = 0
    for start in range(0, len(images), TEST_CHUNK):
        x = ssgan_twin.pixels_to_unit(images[start:start + TEST_CHUNK])
        logits, _ = ssgan_twin.discriminator(
            variables, x, [torch.zeros(len(x), width) for width in widths])
        wrong += int((logits.argmax(-1).numpy() != labels[start:start + TEST_CHUNK]).sum())
    return wrong / len(images)


def d_widths(variables: dict) -> list[int]:
    """D's input width, then each hidden layer's: the widths of its noise draws."""
    depth = ssgan_twin.hidden_layers(variables)
    kernels = [variables[f"d/params/WeightNormDense_{index}/kernel"] for index in range(depth)]
    return [kernels[0].shape[0]] + [kernel.shape[1] for kernel in kernels]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True, help="the folder holding mnist/")
    parser.add_argument("--out", type=Path, required=True, help="folder for results.json")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    config, _, state, (images, labels), _, loader = real_run(args.data_dir, args.seed)
    source = find_dataset(config.data.dataset, config.data.data_dir, split="test")
    test_images, test_labels = split_images(source.open("test"), None, flag="--test-num",
                                            what="test")
    test_labels = np.asarray(test_labels)
    variables, moments = ssgan_twin.as_tensors(flat_variables(state)), {}
    widths = d_widths(variables)
    generator = torch.Generator().manual_seed(args.seed)
    images, labels = np.asarray(images), np.asarray(labels)
    args.out.mkdir(parents=True, exist_ok=True)
    curve, start = [], time.perf_counter()
    for step in range(1, args.epochs * STEPS_PER_EPOCH + 1):
        noise = draw(generator, widths, len(labels), config)
        index = noise.pop("labelled_index").numpy()
        unlabelled = np.asarray(loader.batch(step - 1)["image"])
        # The loader's rows 2i go to D's update and 2i + 1 to G's, as jgan's step splits them.
        batch = {"labelled": images[index], "labels": labels[index],
                 "unlabelled_d": unlabelled[0::2], "unlabelled_g": unlabelled[1::2]}
        ssgan_twin.train_step(variables, moments, step, batch, noise, config)
        if step % STEPS_PER_EPOCH == 0:
            wall = time.perf_counter() - start
            error = test_error(variables, test_images, test_labels)
            curve.append({"step": step, "train_wall_s": round(wall, 1), "test_error": error})
            print(f"epoch {step // STEPS_PER_EPOCH}: twin D's test error {100 * error:.2f}% "
                  f"({wall:.0f} s)", flush=True)
            (args.out / "results.json").write_text(json.dumps(
                {"twin": True, "seed": args.seed, "steps": step, "curve": curve,
                 "test_error": error, "test_images": len(test_labels)}, indent=2) + "\n")


if __name__ == "__main__":
    main()
