"""The CycleGAN step (Zhu et al. 2017, Eq. 3): both D on real images and pooled fakes, both G
on the adversarial, cycle-consistency and identity losses, in the reference code's order.
"""

from __future__ import annotations

import jax

from jgan import losses
from jgan.families.translation import descend, patch_losses, run_network, training_images
from jgan.train.image_pool import query_image_pool
from jgan.train.state import Network, TrainState, apply_gradients


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
