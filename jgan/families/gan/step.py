"""The alternating GAN update (Goodfellow et al. 2014, Algorithm 1) as one pure, jitted step.

One step = `n_critic` D updates, each on its own real minibatch and fresh fakes (WGAN, Arjovsky
et al. 2017, Algorithm 1), run by an unrolled `lax.scan` inside the step; then one G update. The
objective is chosen by config: any loss of `jgan.losses`, a gradient penalty (WGAN-GP), R1/R2
(optionally lazy, as a separate D update every `reg_interval` steps, Karras et al. 2020 Appendix
B), and for ACGAN (Odena et al. 2017, Eq. 2-3) the auxiliary classification loss on both sides.
G minimises the adversarial loss or, with `loss.g_objective=feature_matching`, the distance
between the mean D features of real and generated data (Salimans et al. 2016, Sec. 3.1).

Unrolled GAN (Metz et al. 2017, Sec. 2.2): with `loss.unroll_steps` = k > 0, G's loss is taken
against D after k more updates (D's own optimizer, on the step's real batch and fakes) beyond the
step's real D update, which stays the one that is kept. The "full" gradient differentiates G's
loss through those k optax updates (Eq. 6, both terms); "stop" treats the unrolled D as a
constant (Eq. 6's first term only). k = 0 is the plain alternating step.

With n_critic = 1 the G update reuses the fakes D was just trained on, and G's forward pass is
kept as a VJP, so G runs once per step as in the reference PyTorch DCGAN. With n_critic > 1 G
draws fresh z, as in WGAN's Algorithm 1. When `train.ema_kimg` is set, an exponential moving
average of G's weights moves in the same step (`state.extra["g_ema"]`).

The pieces: `GANPlayers` calls G and D with labels where the conditioning puts them,
`DiscriminatorObjective` is D's loss and update (with its penalties, lazy or not, and the
unrolled lookahead), `GeneratorObjective` is G's loss of its fakes, and `make_gan_train_step`
puts them in order.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp

from jgan import losses
from jgan.augment import Augment
from jgan.train.state import Network, NetworkState, TrainState, apply_gradients
from jgan.train.step_parts import (PROBABILITY_LOSSES, GANPlayers, ema_decay, ema_update,
                                   images_to_float, split_critic_batches)


def lazy_regularization_interval(loss_cfg) -> int:
    """Steps between separate R1/R2 updates; 1 when R1/R2 (if any) join every D update."""
    regularized = loss_cfg.r1_gamma > 0 or loss_cfg.r2_gamma > 0
    return loss_cfg.reg_interval if regularized else 1


@dataclasses.dataclass(frozen=True)
class DiscriminatorObjective:
    """D's loss and update: the adversarial loss, ACGAN's class loss on both sides, and the
    penalties (gradient penalty, R1, R2), in every update or lazily in one of their own."""

    players: GANPlayers
    gan_loss: losses.GANLoss
    loss_cfg: Any
    to_score: Callable  # D's output -> what d/real and d/fake report
    update_d: bool = True  # False: compute D's loss but keep its parameters (a G-only step)

    @property
    def reg_interval(self) -> int:
        return lazy_regularization_interval(self.loss_cfg)

    def penalties(self, d: NetworkState, params, real, real_labels, fake, fake_labels, key):
        """Regularizer terms of D's loss. D's collection updates in these passes are dropped."""
        cfg, players = self.loss_cfg, self.players
        k_interpolate, k_drop_gp, k_drop_r1, k_drop_r2 = jax.random.split(key, 4)

        def scores(labels, k_drop):
            return lambda images: players.discriminate(d, params, images, labels, k_drop)[0]

        terms = {}
        if cfg.gp_weight:
            # Interpolates between a real and a fake image keep the real image's label.
            terms["loss/d/gp"] = losses.gradient_penalty(
                scores(real_labels, k_drop_gp), real=real, fake=fake, key=k_interpolate,
                weight=cfg.gp_weight)
        if cfg.r1_gamma:
            terms["loss/d/r1"] = losses.r1_penalty(scores(real_labels, k_drop_r1), real=real,
                                                   gamma=cfg.r1_gamma)
        if cfg.r2_gamma:
            terms["loss/d/r2"] = losses.r2_penalty(scores(fake_labels, k_drop_r2), fake=fake,
                                                   gamma=cfg.r2_gamma)
        return terms

    def update(self, d: NetworkState, real, real_labels, fake, fake_labels, key, *,
               apply: bool | None = None):
        """`(D after one update on real and fake, metrics)`; `apply` overrides `update_d`."""
        players, auxiliary = self.players, self.players.conditioning == "auxiliary"
        k_real, k_fake, k_reg = jax.random.split(key, 3)

        def loss_fn(params):
            real_logits, real_class, collections = players.discriminate(d, params, real,
                                                                        real_labels, k_real)
            # The fake pass sees the statistics the real pass left, as two calls of D in PyTorch.
            fake_logits, fake_class, collections = players.discriminate(
                d.replace(collections=collections), params, fake, fake_labels, k_fake)
            terms = {"loss/d/adv": self.gan_loss.d(real_logits=real_logits,
                                                   fake_logits=fake_logits)}
            if auxiliary:
                terms["loss/d/class"] = self.loss_cfg.class_weight * (
                    losses.classification_loss(class_logits=real_class, labels=real_labels)
                    + losses.classification_loss(class_logits=fake_class, labels=fake_labels))
            if self.reg_interval == 1:
                terms.update(self.penalties(d, params, real, real_labels, fake, fake_labels,
                                            k_reg))
            return sum(terms.values()), (collections, terms, real_logits, fake_logits, real_class)

        (loss, (collections, terms, real_logits, fake_logits, real_class)), grads = (
            jax.value_and_grad(loss_fn, has_aux=True)(d.params))
        if self.update_d if apply is None else apply:
            d = apply_gradients(players.discriminator, d, grads, collections)
        metrics = {"loss/d": loss, "d/real": jnp.mean(self.to_score(real_logits)),
                   "d/fake": jnp.mean(self.to_score(fake_logits)),
                   **players.augment.r_t(real_logits)}
        if len(terms) > 1:
            metrics.update(terms)
        if auxiliary:
            metrics["d/class_accuracy"] = jnp.mean(jnp.argmax(real_class, -1) == real_labels)
        return d, metrics

    def unrolled(self, d: NetworkState, real, real_labels, fake, fake_labels, key, *,
                 steps: int) -> NetworkState:
        """D after `steps` more updates on the same batch, differentiable in `fake`."""

        def one_update(d, k):
            return self.update(d, real, real_labels, fake, fake_labels, k, apply=True)[0], None

        return jax.lax.scan(one_update, d, jax.random.split(key, steps))[0]

    def lazy_regularization(self, d: NetworkState, step, real, real_labels, fake, fake_labels,
                            key):
        """Every reg_interval steps, one more D update on reg_interval x (R1 + R2) alone."""
        interval = self.reg_interval

        def regularize(d):
            def loss_fn(params):
                terms = self.penalties(d, params, real, real_labels, fake, fake_labels, key)
                return interval * sum(terms.values()), terms

            (_, terms), grads = jax.value_and_grad(loss_fn, has_aux=True)(d.params)
            if self.update_d:
                d = apply_gradients(self.players.discriminator, d, grads, d.collections)
            return d, {name: interval * value for name, value in terms.items()}

        def skip(d):
            return d, jax.tree.map(jnp.zeros_like, jax.eval_shape(lambda: regularize(d)[1]))

        # The logged value is this step's share: reg_interval x penalty on due steps, else 0.
        return jax.lax.cond(step % interval == 0, regularize, skip, d)


@dataclasses.dataclass(frozen=True)
class GeneratorObjective:
    """G's loss of its fakes: adversarial or feature matching, ACGAN's class loss, against D
    as it is or after `unroll_steps` more updates."""

    players: GANPlayers
    gan_loss: losses.GANLoss
    loss_cfg: Any
    d_objective: DiscriminatorObjective

    def loss(self, fake, *, d: NetworkState, real, real_labels, fake_labels, k_drop, k_unroll):
        """`(G's loss, its terms)`, differentiable in `fake`."""
        cfg, players = self.loss_cfg, self.players
        # D's statistics from this pass are discarded: D was updated on this batch already.
        target = d
        if cfg.unroll_steps:
            unroll_fake = fake if cfg.unroll_gradient == "full" else jax.lax.stop_gradient(fake)
            target = self.d_objective.unrolled(d, real, real_labels, unroll_fake, fake_labels,
                                               k_unroll, steps=cfg.unroll_steps)
        # Under feature matching only ACGAN's class logits are used; XLA drops the rest.
        logits, class_logits, _ = players.discriminate(target, target.params, fake, fake_labels,
                                                       k_drop)
        if cfg.g_objective == "feature_matching":
            k_fake, k_real = jax.random.split(k_drop)
            terms = {"loss/g/feature_matching": losses.feature_matching_loss(
                real_features=players.features(target, real, real_labels, k_real),
                fake_features=players.features(target, fake, fake_labels, k_fake))}
        else:
            terms = {"loss/g/adv": self.gan_loss.g(fake_logits=logits)}
        if players.conditioning == "auxiliary":
            terms["loss/g/class"] = cfg.class_weight * losses.classification_loss(
                class_logits=class_logits, labels=fake_labels)
        return sum(terms.values()), terms


def make_gan_train_step(config, *, generator: Network, discriminator: Network,
                        update_d: bool = True, update_g: bool = True,
                        augment: Augment = Augment()):
    """The step `(state, batch, key) -> (state, metrics)` of the config's GAN.

    Args:
      config: a `jgan.config.Config`; the step reads its model, loss and train groups.
      generator, discriminator: the networks `state.nets["g"]` and `state.nets["d"]` belong to.
      update_d, update_g: turn either update off (a G-only step, a D-only step).
      augment: applied to every image D sees (`jgan.augment`); an adaptive one reads and moves
        its p in `state.extra["ada"]`.
    The batch holds `n_critic * batch_size` real images (and labels for a conditional GAN). The
    key is the run key: the step folds in `state.step`, so step k sees the same noise however the
    run was interrupted.
    """
    model, loss_cfg, train_cfg = config.model, config.loss, config.train
    gan_loss = losses.get_losses(loss_cfg.gan_loss, real_label=loss_cfg.real_label,
                                 focal_gamma=loss_cfg.focal_gamma)
    run_players = GANPlayers(generator, discriminator, model.z_dim, model.conditioning,
                             model.num_classes, augment)
    to_score = jax.nn.sigmoid if loss_cfg.gan_loss in PROBABILITY_LOSSES else (lambda x: x)

    def objectives(extra):
        """The players and objectives of one step: ADA's p is the state's."""
        players = run_players.at_step(extra)
        d_objective = DiscriminatorObjective(players, gan_loss, loss_cfg, to_score, update_d)
        return players, d_objective, GeneratorObjective(players, gan_loss, loss_cfg, d_objective)

    n_critic = train_cfg.n_critic
    ema_beta = ema_decay(train_cfg.batch_size, train_cfg.ema_kimg) if train_cfg.ema_kimg else None

    def real_minibatch(chunk):
        return images_to_float(chunk["image"]), chunk.get("label")

    def critic_updates(players, d_objective, g: NetworkState, d: NetworkState, chunks, k_critic,
                       k_g_latents):
        """D's n_critic updates, and the fakes G's update differentiates: `(g, d, metrics,
        fake, its labels, G's VJP, G's collections, the last real minibatch, its labels)`."""
        batch_size = chunks["image"].shape[1]
        if n_critic == 1:
            k_latents, k_d = jax.random.split(k_critic)
            z, fake_labels = players.latents(k_latents, batch_size)
            fake, g_vjp, g_collections = jax.vjp(
                lambda params: players.generate(g, params, z, fake_labels), g.params,
                has_aux=True)
            real, real_labels = real_minibatch(jax.tree.map(lambda x: x[0], chunks))
            d, metrics = d_objective.update(d, real, real_labels, fake, fake_labels, k_d)
            return g, d, metrics, fake, fake_labels, g_vjp, g_collections, real, real_labels

        def critic_iteration(carry, inputs):
            g_collections, d = carry
            chunk, k = inputs
            k_latents, k_d = jax.random.split(k)
            z, fake_labels = players.latents(k_latents, batch_size)
            fake, g_collections = players.generate(g.replace(collections=g_collections),
                                                   g.params, z, fake_labels)
            real, real_labels = real_minibatch(chunk)
            d, metrics = d_objective.update(d, real, real_labels, fake, fake_labels, k_d)
            return (g_collections, d), metrics

        # Unrolled: XLA:CPU ran the convolutions of a rolled loop body 15x slower (measured:
        # 1932 against 132 ms for two critic updates); n_critic is small.
        (g_collections, d), metrics = jax.lax.scan(
            critic_iteration, (g.collections, d),
            (chunks, jax.random.split(k_critic, n_critic)), unroll=True)
        metrics = jax.tree.map(jnp.mean, metrics)
        g = g.replace(collections=g_collections)
        z, fake_labels = players.latents(k_g_latents, batch_size)
        fake, g_vjp, g_collections = jax.vjp(
            lambda params: players.generate(g, params, z, fake_labels), g.params, has_aux=True)
        real, real_labels = real_minibatch(jax.tree.map(lambda x: x[n_critic - 1], chunks))
        return g, d, metrics, fake, fake_labels, g_vjp, g_collections, real, real_labels

    def train_step(state: TrainState, batch: dict, key: jax.Array):
        key = jax.random.fold_in(key, state.step)
        k_critic, k_g_latents, k_g_drop, k_reg = jax.random.split(key, 4)
        players, d_objective, g_objective = objectives(state.extra)
        g, d, metrics, fake, fake_labels, g_vjp, g_collections, real, real_labels = (
            critic_updates(players, d_objective, state.nets["g"], state.nets["d"],
                           split_critic_batches(batch, n_critic), k_critic, k_g_latents))
        if d_objective.reg_interval > 1:
            d, reg_terms = d_objective.lazy_regularization(
                d, state.step, real, real_labels, jax.lax.stop_gradient(fake), fake_labels,
                k_reg)
            metrics.update(reg_terms)

        # Unrolling draws its own stream, folded in, so the plain step's keys stay as they were.
        (g_loss, g_terms), fake_grad = jax.value_and_grad(g_objective.loss, has_aux=True)(
            fake, d=d, real=real, real_labels=real_labels, fake_labels=fake_labels,
            k_drop=k_g_drop, k_unroll=jax.random.fold_in(key, 1))
        if update_g:
            (g_grads,) = g_vjp(fake_grad)
            g = apply_gradients(generator, g, g_grads, g_collections)
        metrics["loss/g"] = g_loss
        if len(g_terms) > 1:
            metrics.update(g_terms)
        extra, augment_metrics = augment.adapt(
            dict(state.extra), r_t=metrics.pop("augment/r_t", None),
            count=n_critic * fake.shape[0], step=state.step + 1)
        metrics.update(augment_metrics)
        if ema_beta is not None:
            extra["g_ema"] = ema_update(state.extra["g_ema"], g.params, ema_beta)
        nets = {**state.nets, "g": g, "d": d}
        return state.replace(step=state.step + 1, nets=nets, extra=extra), metrics

    return train_step
