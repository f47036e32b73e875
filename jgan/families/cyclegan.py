"""The CycleGAN family (Zhu et al. 2017): two mappings G_A: A -> B and G_B: B -> A from unpaired
images, each judged by a PatchGAN (D_A scores B images, D_B scores A images).

G minimises the adversarial losses (LSGAN by default, Sec. 4), the cycle-consistency loss
lambda_A |G_B(G_A(a)) - a| + lambda_B |G_A(G_B(b)) - b| (Eq. 2, lambda = 10) and the identity loss
lambda_idt * (lambda_B |G_A(b) - b| + lambda_A |G_B(a) - a|) (Sec. 5.2, lambda_idt = 0.5). Each D
is trained on a history of generated images, an image pool of 50 (Shrivastava et al. 2017), kept
in the train state so that a resumed run continues exactly. The update follows the reference
code's order: both G step together against the current D, then each D steps on the pool's fakes.
Names follow the reference: real_A, fake_B, rec_A, idt_A; metrics loss/D_A, loss/G_A, ...
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from jgan import losses
from jgan.config import Bounds, check_bounds
from jgan.families.translation import (TranslationLossConfig, TranslationModelConfig,
                                       TranslationSetup, check_translation, descend,
                                       make_discriminator, make_generator, patch_losses,
                                       run_network, training_images)
from jgan.images import to_uint8
from jgan.optim import make_optimizer
from jgan.train.image_pool import init_image_pool, query_image_pool
from jgan.train.setup import Family
from jgan.train.state import Network, TrainState, apply_gradients


@dataclasses.dataclass(frozen=True, kw_only=True)
class CycleGANModelConfig(TranslationModelConfig):
    generator: str = "resnet_9blocks"
    norm: str = "instance"
    dropout: float = 0.0  # the reference's --no_dropout


@dataclasses.dataclass(frozen=True, kw_only=True)
class CycleGANLossConfig(TranslationLossConfig):
    gan_loss: str = "least_squares"
    lambda_A: float = 10.0  # cycle A -> B -> A
    lambda_B: float = 10.0  # cycle B -> A -> B
    lambda_identity: float = 0.5  # identity weight, relative to lambda_A and lambda_B; 0: off
    pool_size: int = 50  # generated images kept per D; 0: D sees only the newest fakes


CYCLEGAN_LOSS_BOUNDS = {"lambda_A": Bounds(0), "lambda_B": Bounds(0),
                        "lambda_identity": Bounds(0, note="0: off"),
                        "pool_size": Bounds(0, note="0: no pool")}
# The networks by state name: the reference's G_A, G_B, D_A, D_B.
GENERATORS = {"AtoB": "g_A", "BtoA": "g_B"}


def make_cyclegan_train_step(config, networks: dict[str, Network]):
    """`(state, batch, key) -> (state, metrics)`: G_A and G_B on the adversarial, cycle and
    identity losses, then D_A and D_B on real images and the pools' fakes."""
    model, loss_cfg = config.model, config.loss
    gan = patch_losses(loss_cfg)
    lambdas = {"A": loss_cfg.lambda_A, "B": loss_cfg.lambda_B}
    identity = loss_cfg.lambda_identity > 0

    def step(state: TrainState, batch: dict, run_key: jax.Array):
        k_jitter, k_pool_A, k_pool_B, k_drop = jax.random.split(
            jax.random.fold_in(run_key, state.step), 4)
        images = training_images(batch, k_jitter, jitter=model.jitter, together=False)
        real = {"A": images["image_A"], "B": images["image_B"]}
        nets = dict(state.nets)
        # One key per network pass: G's six, D's two in G's loss, D's four in its own update.
        names = ("fake_B", "rec_A", "fake_A", "rec_B", "idt_A", "idt_B", "d_A", "d_B",
                 "D_A/real", "D_A/fake", "D_B/real", "D_B/fake")
        drop = dict(zip(names, jax.random.split(k_drop, len(names))))

        def g_loss(params):
            def g(name, x, key):
                return run_network(networks[name], nets[name], params[name], x, key=key)[0]

            def d(name, x):
                return run_network(networks[name], nets[name], None, x, key=drop[name])[0]

            fake = {"B": g("g_A", real["A"], drop["fake_B"]),
                    "A": g("g_B", real["B"], drop["fake_A"])}
            rec = {"A": g("g_B", fake["B"], drop["rec_A"]),
                   "B": g("g_A", fake["A"], drop["rec_B"])}
            terms = {"loss/G_A": gan.g(fake_logits=d("d_A", fake["B"])),
                     "loss/G_B": gan.g(fake_logits=d("d_B", fake["A"]))}
            for side in "AB":
                terms[f"loss/cycle_{side}"] = lambdas[side] * losses.cycle_consistency_loss(
                    real=real[side], reconstructed=rec[side])
            if identity:
                # idt_A = G_A(b) should be b: weighted by lambda_B, as in the reference.
                idt = {"A": g("g_A", real["B"], drop["idt_A"]),
                       "B": g("g_B", real["A"], drop["idt_B"])}
                terms["loss/idt_A"] = (loss_cfg.lambda_identity * lambdas["B"]
                                       * losses.identity_loss(real=real["B"], mapped=idt["A"]))
                terms["loss/idt_B"] = (loss_cfg.lambda_identity * lambdas["A"]
                                       * losses.identity_loss(real=real["A"], mapped=idt["B"]))
            return sum(terms.values()), (terms, fake)

        g_params = {name: nets[name].params for name in ("g_A", "g_B")}
        (loss_g, (terms, fake)), grads = jax.value_and_grad(g_loss, has_aux=True)(g_params)
        # Instance norm keeps no statistics, so G's collections are only BatchNorm's; the
        # reference's several G passes update them in turn, which one pass per G stands for.
        for name in ("g_A", "g_B"):
            nets[name] = apply_gradients(networks[name], nets[name], grads[name],
                                         nets[name].collections)
        extra = dict(state.extra)
        fake_B, fake_A = jax.lax.stop_gradient(fake["B"]), jax.lax.stop_gradient(fake["A"])
        if loss_cfg.pool_size:
            extra["fake_B_pool"], fake_B = query_image_pool(extra["fake_B_pool"], fake_B,
                                                            k_pool_B)
            extra["fake_A_pool"], fake_A = query_image_pool(extra["fake_A_pool"], fake_A,
                                                            k_pool_A)
        metrics = {"loss/g": loss_g, **terms}
        # D_A tells real B from G_A's fakes; D_B tells real A from G_B's.
        for name, reference, real_images, fakes in (("d_A", "D_A", real["B"], fake_B),
                                                    ("d_B", "D_B", real["A"], fake_A)):
            network, net = networks[name], nets[name]

            def d_loss(params, network=network, net=net, real_images=real_images, fakes=fakes,
                       reference=reference):
                real_logits, collections = run_network(network, net, params, real_images,
                                                       key=drop[f"{reference}/real"])
                fake_logits, collections = run_network(
                    network, net.replace(collections=collections), params, fakes,
                    key=drop[f"{reference}/fake"])
                return (gan.d(real_logits=real_logits, fake_logits=fake_logits),
                        (collections, None))

            nets[name], metrics[f"loss/{reference}"], _ = descend(network, net, d_loss)
        metrics["loss/d"] = metrics["loss/D_A"] + metrics["loss/D_B"]
        return state.replace(step=state.step + 1, nets=nets, extra=extra), metrics

    return step


@dataclasses.dataclass(frozen=True, kw_only=True)
class CycleGANSetup(TranslationSetup):
    pool_size: int = 0

    def init_state(self, key: jax.Array) -> TrainState:
        """The networks and, unless `pool_size` is 0, the two image pools (a state holds no
        empty arrays: checkpoints cannot store them)."""
        state = super().init_state(key)
        if not self.pool_size:
            return state
        pools = {f"fake_{side}_pool": init_image_pool(self.pool_size, self.shapes[side])
                 for side in "AB"}
        return state.replace(extra=pools)

    def preview_rows(self, state: TrainState, fixed):
        """real_A | fake_B | rec_A over real_B | fake_A | rec_B, one held-out image per column."""
        images, keys = fixed
        rows = []
        for source, there, back in (("A", "AtoB", "BtoA"), ("B", "BtoA", "AtoB")):
            fake = self.translate_fn(state, images[source], keys, direction=there)
            rec = self.translate_fn(state, fake, keys, direction=back)
            rows += [to_uint8(images[source]), to_uint8(fake), to_uint8(rec)]
        return rows


def check(config, spec) -> dict:
    shapes = check_translation(config, spec, kinds=("unpaired", "paired"), family="cyclegan")
    check_bounds("loss", config.loss, CYCLEGAN_LOSS_BOUNDS)
    return shapes


def build(config, spec) -> CycleGANSetup:
    shapes = check(config, spec)
    model, optim_cfg = config.model, config.optim
    height, width = shapes["A"][:2]
    channels = {side: shapes[side][-1] for side in "AB"}
    networks = {
        "g_A": Network(make_generator(model, channels["B"]),
                       make_optimizer(optim_cfg, optim_cfg.g_lr)),
        "g_B": Network(make_generator(model, channels["A"]),
                       make_optimizer(optim_cfg, optim_cfg.g_lr)),
        "d_A": Network(make_discriminator(model), make_optimizer(optim_cfg, optim_cfg.d_lr)),
        "d_B": Network(make_discriminator(model), make_optimizer(optim_cfg, optim_cfg.d_lr)),
    }

    def image(side):
        return (jnp.zeros((1, height, width, channels[side])),)

    example_inputs = {"g_A": image("A"), "g_B": image("B"), "d_A": image("B"), "d_B": image("A")}
    return CycleGANSetup(networks=networks, example_inputs=example_inputs,
                         train_step=make_cyclegan_train_step(config, networks),
                         directions=("AtoB", "BtoA"), generators=GENERATORS, shapes=shapes,
                         pool_size=config.loss.pool_size)


FAMILY = Family(name="cyclegan", model_config=CycleGANModelConfig,
                loss_config=CycleGANLossConfig, build=build,
                network_names={"g_A": "generator A->B", "g_B": "generator B->A",
                               "d_A": "discriminator of B", "d_B": "discriminator of A"},
                description="unpaired image-to-image translation: two G, two PatchGAN D, "
                            "cycle and identity losses, image pools")
