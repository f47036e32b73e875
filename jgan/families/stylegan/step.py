"""The StyleGAN training step (Karras et al. 2019): pure `(state, batch, key) -> (state, metrics)`.

One step: D on real images and on fakes drawn with style mixing, then G against the updated D,
with G's forward pass kept as a VJP so G runs once per step (as `jgan.families.gan.step` does).
The loss is the non-saturating logistic loss with R1 on reals (Mescheder et al. 2018, Eq. 9).

Lazy R1 (Karras et al. 2020, App. B) cuts R1's cost by `reg_interval`: StyleGAN2 takes R1 on the
whole batch every reg_interval-th step, in an update of its own. On XLA:CPU a convolution inside
`lax.cond` ran 13x slower than outside it (31 s against 2.4 s for the 64x64 step), so here R1
takes every reg_interval-th real image of every step instead: the same expected gradient, at the
same 1/reg_interval of the full cost, with no branch.
The step also moves the tracked mean w (for the truncation trick, Sec. 3.3 / App. B), G's weight
EMA when the run keeps one, and the level of detail when the networks grow (ProGAN).

The pieces that sampling shares with training (mixing, truncation, growth) are functions here.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jgan import losses
from jgan.augment import AUGMENT_STREAM, Augment
from jgan.families.stylegan.networks import fade_reals
from jgan.train.state import Network, TrainState, apply_gradients, apply_network
from jgan.train.step_parts import ema_decay, ema_update, prior


def level_of_detail(step, *, max_lod: int, phase_steps: int):
    """ProGAN's schedule (Karras et al. 2018, Sec. 2 and App. A.1) in steps: start at `max_lod`
    (the start resolution); each phase holds its resolution for `phase_steps` steps, then fades
    the next one in linearly over `phase_steps`; 0 is the full resolution. phase_steps = 0: no
    growing."""
    if not phase_steps or not max_lod:
        return jnp.zeros((), jnp.float32)
    step = jnp.asarray(step, jnp.float32)
    phase = jnp.floor(step / (2 * phase_steps))
    fade = jnp.clip((step - phase * 2 * phase_steps - phase_steps) / phase_steps, 0.0, 1.0)
    return jnp.maximum(max_lod - phase - fade, 0.0).astype(jnp.float32)


def layer_mask(crossover, num_layers: int):
    """[B, L] True for the layers before each example's `crossover` layer [B]."""
    return jnp.arange(num_layers)[None, :] < jnp.asarray(crossover)[:, None]


def mix_styles(w_first, w_second, crossover, num_layers: int):
    """Per-layer styles [B, L, D]: w_first [B, D] before `crossover` [B], w_second from it on
    (style mixing, Sec. 3.1)."""
    return jnp.where(layer_mask(crossover, num_layers)[..., None], w_first[:, None],
                     w_second[:, None])


def truncate(ws, w_avg, psi, cutoff):
    """The truncation trick in W (Sec. 3.3 / App. B): w' = w_avg + psi (w - w_avg) in the layers
    before `cutoff` [B] (all of them when cutoff = L), per example's `psi` [B]; ws [B, L, D]."""
    mask = layer_mask(cutoff, ws.shape[1])[..., None]
    truncated = w_avg + jnp.asarray(psi)[:, None, None] * (ws - w_avg)
    return jnp.where(mask, truncated, ws)


def mixing_latents(key, batch_size: int, *, z_dim: int, num_layers: int, probability: float):
    """z, a second z, each example's crossover layer and its noise keys. With `probability` an
    example mixes, at a crossover drawn uniformly from 1..L-1; otherwise its crossover is L.
    Drawn per example (the reference draws one per batch), so a batch's split across devices
    never changes what an example gets."""
    k_z, k_z2, k_mix, k_cross, k_noise = jax.random.split(key, 5)
    mixes = jax.random.uniform(k_mix, (batch_size,)) < probability
    crossover = jnp.where(mixes, jax.random.randint(k_cross, (batch_size,), 1, num_layers),
                          num_layers)
    return {"z": prior(k_z, batch_size, z_dim), "z2": prior(k_z2, batch_size, z_dim),
            "crossover": crossover, "noise_keys": jax.random.split(k_noise, batch_size)}


def generate(generator: Network, params, collections, latents, lod):
    """`(images, mean of the first w)` for `mixing_latents`' latents."""
    variables = {"params": params, **collections}
    module = generator.module

    def styles(module, z, z2, crossover):
        w = module.map(z)
        return w, mix_styles(w, module.map(z2), crossover, module.num_layers)

    w, ws = module.apply(variables, latents["z"], latents["z2"], latents["crossover"],
                         method=styles)
    images = module.apply(variables, ws, latents["noise_keys"], lod, method="synthesize")
    return images, jnp.mean(w, axis=0)


def make_stylegan_train_step(*, generator: Network, discriminator: Network, to_model,
                             z_dim: int, num_layers: int, style_mixing: float, r1_gamma: float,
                             reg_interval: int, w_avg_beta: float, max_lod: int,
                             phase_steps: int, gan_loss: str = "nonsaturating",
                             ema_kimg: float = 0.0, augment: Augment = Augment()):
    """The step. `to_model` maps the batch's uint8 images to G's output space
    (`jgan.data.preprocess`); `max_lod`, `phase_steps`: growth (`level_of_detail`). `augment`
    (`jgan.augment`) is applied to every image D sees, R1's reals included (the penalty is on
    the gradient with respect to the image before augmentation, as in ADA)."""
    loss = losses.get_losses(gan_loss)

    def discriminate(d, params, images, lod, key, augment):
        return apply_network(discriminator.module, d.variables(params), augment(key, images),
                             lod, train=True)[0]

    def r1(d, params, real, lod, key, augment):
        return losses.r1_penalty(lambda x: discriminate(d, params, x, lod, key, augment),
                                 real=real, gamma=r1_gamma)

    def train_step(state: TrainState, batch: dict, key: jax.Array):
        # The step draws its latents (z, z2, crossovers and noise keys) and, folded out of the
        # same key, the augmentation of each D pass.
        k_latents = jax.random.fold_in(key, state.step)
        k_real, k_fake, k_r1, k_g = jax.random.split(
            jax.random.fold_in(k_latents, AUGMENT_STREAM), 4)
        step_augment = augment.with_p(state.extra)
        g, d = state.nets["g"], state.nets["d"]
        lod = state.extra["lod"]
        real = to_model(batch["image"])
        if max_lod:
            real = jax.lax.stop_gradient(fade_reals(real, lod, max_lod))
        latents = mixing_latents(k_latents, real.shape[0], z_dim=z_dim, num_layers=num_layers,
                                 probability=style_mixing)
        fake, g_vjp, w_mean = jax.vjp(
            lambda params: generate(generator, params, g.collections, latents, lod), g.params,
            has_aux=True)

        def d_loss(params):
            real_logits = discriminate(d, params, real, lod, k_real, step_augment)
            fake_logits = discriminate(d, params, fake, lod, k_fake, step_augment)
            terms = {"loss/d/adv": loss.d(real_logits=real_logits, fake_logits=fake_logits)}
            if r1_gamma:
                terms["loss/d/r1"] = r1(d, params, real[::reg_interval], lod, k_r1,
                                        step_augment)
            return sum(terms.values()), (terms, real_logits, fake_logits)

        (d_value, (terms, real_logits, fake_logits)), d_grads = jax.value_and_grad(
            d_loss, has_aux=True)(d.params)
        d = apply_gradients(discriminator, d, d_grads, d.collections)
        metrics = {"loss/d": d_value, "d/real": jnp.mean(jax.nn.sigmoid(real_logits)),
                   "d/fake": jnp.mean(jax.nn.sigmoid(fake_logits)), **terms}

        g_value, fake_grad = jax.value_and_grad(lambda images: loss.g(
            fake_logits=discriminate(d, d.params, images, lod, k_g, step_augment)))(fake)
        (g_grads,) = g_vjp(fake_grad)
        g = apply_gradients(generator, g, g_grads, g.collections)
        metrics.update({"loss/g": g_value, "lod": lod})

        extra, augment_metrics = augment.adapt(
            dict(state.extra), r_t=jnp.mean(jnp.sign(real_logits)), count=real.shape[0],
            step=state.step + 1)
        metrics.update(augment_metrics)
        extra["w_avg"] = w_mean + w_avg_beta * (state.extra["w_avg"] - w_mean)
        extra["lod"] = level_of_detail(state.step + 1, max_lod=max_lod, phase_steps=phase_steps)
        if ema_kimg:
            beta = ema_decay(real.shape[0], ema_kimg)
            extra["g_ema"] = ema_update(state.extra["g_ema"], g.params, beta)
        nets = {**state.nets, "g": g, "d": d}
        return state.replace(step=state.step + 1, nets=nets, extra=extra), metrics

    return train_step

