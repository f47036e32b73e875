"""The 2-D mode-collapse benchmark: a GAN and its remedies, N seeds at once.

    python -m experiments.mode_collapse --method gan|unrolled|wgan_gp|minibatch --seeds 8

Data: the ring of 8 Gaussians (radius 2, std 0.02; `--dataset grid` for the 5x5 grid, std 0.05).
Networks as in Metz et al. 2017, Appendix A: G has 2 ReLU layers of 128 units on z of 256
dimensions, D one ReLU layer of 128 units; batch 512; Adam(beta1 0.5) at 1e-3 for G and 1e-4 for
D; 25,000 steps; 8 seeds. D's slower rate is what the comparison rests on: with D at G's rate
the plain GAN spreads over the ring by itself (docs/mode_collapse.md). The methods change only
what they are about:

- gan: the non-saturating GAN.
- unrolled: Unrolled GAN, G's loss after k = 10 more D updates (`--unroll K`), full gradient
  through them (`--set loss.unroll_gradient=stop` for the cheap variant); Adam's eps_root 1e-8
  keeps the gradient through Adam finite.
- unrolled_stop: the same with the stop-gradient variant.
- wgan_gp: WGAN-GP with the toy loss and optimizer of Gulrajani et al. 2017 (lambda 0.1, 5 critic
  updates per G update, Adam(1e-4, beta1 0.5, beta2 0.9) for both) on Metz's networks.
- wgan_gp_gulrajani: the same with Gulrajani's toy networks and batch too (gan_toy.py): G and D
  3 ReLU layers of 512, z of 2 dimensions, batch 256.
- minibatch: minibatch discrimination in D (Salimans et al. 2016), 10 kernels of dimension 5.
- feature_matching: G matches the mean of D's hidden features (Salimans et al. 2016).
- pacgan: D judges packs of 2 samples (Lin et al. 2018).

Writes history.csv, seeds.csv, samples/, training.gif, modes.png and results.md/json under the
workdir (default runs/mode_collapse_METHOD_DATASET).
"""

import argparse
import dataclasses
import sys

from jgan.cli import parse_config
from jgan.config import Config, DataConfig, OptimConfig, TrainConfig
from jgan.families.gan import GANLossConfig, GANModelConfig
from jgan.errors import reports_errors

METHODS = ("gan", "unrolled", "unrolled_stop", "wgan_gp", "wgan_gp_gulrajani", "minibatch",
           "feature_matching", "pacgan")


def get_config(method: str = "gan") -> Config:
    config = Config(
        name=f"mode_collapse_{method}", data=DataConfig(dataset="ring"),
        model=GANModelConfig(arch="toy", z_dim=256, hidden=128, g_layers=2, d_layers=1),
        optim=OptimConfig(g_lr=1e-3, d_lr=1e-4, b1=0.5, b2=0.999),
        loss=GANLossConfig(gan_loss="nonsaturating"),
        train=TrainConfig(steps=25000, batch_size=512, log_every=1000, checkpoint_every=5000,
                          seeds=8))
    if method in ("unrolled", "unrolled_stop"):
        return dataclasses.replace(
            config, optim=dataclasses.replace(config.optim, eps_root=1e-8),
            loss=dataclasses.replace(config.loss, unroll_steps=10, unroll_gradient=(
                "full" if method == "unrolled" else "stop")))
    if method in ("wgan_gp", "wgan_gp_gulrajani"):
        config = dataclasses.replace(
            config, optim=dataclasses.replace(config.optim, g_lr=1e-4, d_lr=1e-4, b2=0.9),
            loss=GANLossConfig(gan_loss="wasserstein", gp_weight=0.1),
            train=dataclasses.replace(config.train, n_critic=5))
        if method == "wgan_gp":
            return config
        return dataclasses.replace(
            config, model=dataclasses.replace(config.model, z_dim=2, hidden=512, g_layers=3,
                                              d_layers=3),
            train=dataclasses.replace(config.train, batch_size=256))
    if method == "minibatch":
        return dataclasses.replace(config, model=dataclasses.replace(
            config.model, minibatch_kernels=10, minibatch_kernel_dim=5))
    if method == "feature_matching":
        return dataclasses.replace(config, loss=dataclasses.replace(
            config.loss, g_objective="feature_matching"))
    if method == "pacgan":
        return dataclasses.replace(config, model=dataclasses.replace(config.model, pack=2))
    return config


@reports_errors
def main(argv=None) -> int:
    from jgan.mode_collapse import train_toy

    method_parser = argparse.ArgumentParser(add_help=False)
    method_parser.add_argument("--method", choices=METHODS, default="gan",
                               help="the GAN or remedy to train (default gan)")
    method_parser.add_argument("--seeds", type=int,
                               help="independent seeds, trained at once (default 8)")
    method_parser.add_argument("--unroll", type=int, metavar="K",
                               help="unrolled D updates (loss.unroll_steps; unrolled: 10)")
    known, rest = method_parser.parse_known_args(argv)
    extra = [f"train.seeds={known.seeds}"] if known.seeds is not None else []
    extra += [f"loss.unroll_steps={known.unroll}"] if known.unroll is not None else []
    config, workdir = parse_config(get_config(known.method), [*rest, *(
        arg for setting in extra for arg in ("--set", setting))], description=__doc__,
        parents=[method_parser])
    train_toy(config, workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
