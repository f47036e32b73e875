"""The Pix2Pix family (Isola et al. 2017): a conditional GAN from paired images, x -> G(x) ~ y.

G is a U-Net whose dropout is its only noise (Sec. 3.1), D a PatchGAN that judges (x, y) pairs
patch by patch (Sec. 3.2.2). G minimises the conditional GAN loss plus lambda * L1(y, G(x))
(Eq. 4, lambda = 100); `loss.gan_weight=0` trains the same U-Net with L1 alone. The update
follows the reference code's order: D steps on the pair (x, G(x)), then G steps against the
updated D. `model.direction` picks which side is x: facades' labels -> photo is BtoA.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from jgan import losses
from jgan.config import Bounds, check_bounds
from jgan.families.translation import (DIRECTIONS, TranslationLossConfig, TranslationModelConfig,
                                       TranslationSetup, check_translation, descend,
                                       make_discriminator, make_generator, patch_losses,
                                       run_network, training_images)
from jgan.images import to_uint8
from jgan.optim import make_optimizer
from jgan.train.setup import Family, check_choices
from jgan.train.state import Network, TrainState, apply_gradients


@dataclasses.dataclass(frozen=True, kw_only=True)
class Pix2PixModelConfig(TranslationModelConfig):
    direction: str = "AtoB"  # "AtoB": G maps image_A to image_B; "BtoA" the other way


@dataclasses.dataclass(frozen=True, kw_only=True)
class Pix2PixLossConfig(TranslationLossConfig):
    lambda_l1: float = 100.0  # Eq. 4's lambda; the TensorFlow tutorial found 1000 better for maps
    gan_weight: float = 1.0  # 0: the L1-only baseline (D is neither trained nor used)


PIX2PIX_LOSS_BOUNDS = {"lambda_l1": Bounds(0), "gan_weight": Bounds(0, note="0: L1 alone")}


def sides(direction: str) -> tuple[str, str]:
    """`(source, target)` sides of `direction`: ("A", "B") for AtoB."""
    return (direction[0], direction[-1])


def make_pix2pix_train_step(config, generator: Network, discriminator: Network):
    """`(state, batch, key) -> (state, metrics)`: D's update on real and fake pairs, then G's on
    the conditional GAN loss against the updated D plus lambda * L1."""
    model, loss_cfg = config.model, config.loss
    source, target = sides(model.direction)
    gan = patch_losses(loss_cfg)
    adversarial = loss_cfg.gan_weight > 0

    def step(state: TrainState, batch: dict, run_key: jax.Array):
        k_jitter, k_dropout, k_d_real, k_d_fake, k_d_g = jax.random.split(
            jax.random.fold_in(run_key, state.step), 5)
        images = training_images(batch, k_jitter, jitter=model.jitter, together=True)
        x, y = images[f"image_{source}"], images[f"image_{target}"]
        g, d = state.nets["g"], state.nets["d"]

        def g_forward(params):
            return run_network(generator, g, params, x, key=k_dropout)

        # G's forward pass is kept as a VJP and pulled back from the gradient in G(x), so G runs
        # once per step, as in the reference code.
        fake, g_pullback, g_collections = jax.vjp(g_forward, g.params, has_aux=True)
        metrics = {}
        if adversarial:
            def d_loss(params):
                real_logits, collections = run_network(discriminator, d, params,
                                                       jnp.concatenate([x, y], -1), key=k_d_real)
                fake_logits, collections = run_network(
                    discriminator, d.replace(collections=collections), params,
                    jnp.concatenate([x, jax.lax.stop_gradient(fake)], -1), key=k_d_fake)
                loss = gan.d(real_logits=real_logits, fake_logits=fake_logits)
                return loss, (collections, (real_logits, fake_logits))

            d, metrics["loss/d"], (real_logits, fake_logits) = descend(discriminator, d, d_loss)
            metrics["d/real"] = jnp.mean(real_logits)
            metrics["d/fake"] = jnp.mean(fake_logits)

        def g_loss(fake):
            terms = {"loss/g_l1": loss_cfg.lambda_l1 * losses.l1_loss(prediction=fake, target=y)}
            collections = d.collections
            if adversarial:
                logits, collections = run_network(discriminator, d, None,
                                                  jnp.concatenate([x, fake], -1), key=k_d_g)
                terms["loss/g_gan"] = loss_cfg.gan_weight * gan.g(fake_logits=logits)
            return sum(terms.values()), (terms, collections)

        (loss, (terms, d_collections)), fake_grad = jax.value_and_grad(g_loss, has_aux=True)(fake)
        (g_grads,) = g_pullback(fake_grad)
        nets = {"g": apply_gradients(generator, g, g_grads, g_collections),
                "d": d.replace(collections=d_collections)}
        metrics.setdefault("loss/d", jnp.zeros(()))
        metrics.update({"loss/g": loss, **terms})
        return state.replace(step=state.step + 1, nets=nets), metrics

    return step


@dataclasses.dataclass(frozen=True, kw_only=True)
class Pix2PixSetup(TranslationSetup):
    source: str
    target: str

    def preview_rows(self, state: TrainState, fixed):
        """input | output | target, one held-out pair per column."""
        images, keys = fixed
        direction = f"{self.source}to{self.target}"
        return [to_uint8(images[self.source]),
                self.translated(state, images[self.source], keys, direction),
                to_uint8(images[self.target])]


def check(config, spec) -> dict:
    shapes = check_translation(config, spec, kinds=("paired",), family="pix2pix")
    check_choices({"model.direction": (config.model.direction, DIRECTIONS)})
    check_bounds("loss", config.loss, PIX2PIX_LOSS_BOUNDS)
    return shapes


def build(config, spec) -> Pix2PixSetup:
    shapes = check(config, spec)
    model, optim_cfg = config.model, config.optim
    source, target = sides(model.direction)
    (height, width, in_channels), out_channels = shapes[source], shapes[target][-1]
    networks = {"g": Network(make_generator(model, out_channels),
                             make_optimizer(optim_cfg, optim_cfg.g_lr)),
                "d": Network(make_discriminator(model), make_optimizer(optim_cfg, optim_cfg.d_lr))}
    example_inputs = {"g": (jnp.zeros((1, height, width, in_channels)),),
                      "d": (jnp.zeros((1, height, width, in_channels + out_channels)),)}
    step = make_pix2pix_train_step(config, networks["g"], networks["d"])
    return Pix2PixSetup(networks=networks, example_inputs=example_inputs, train_step=step,
                        directions=(model.direction,), generators={model.direction: "g"},
                        shapes=shapes, source=source, target=target)


FAMILY = Family(name="pix2pix", model_config=Pix2PixModelConfig, loss_config=Pix2PixLossConfig,
                build=build, network_names={"g": "generator", "d": "discriminator"},
                description="paired image-to-image translation: U-Net G, PatchGAN D, GAN + L1")
