"""The PyTorch twin of jgan's semi-supervised K+1 GAN step (`jgan/families/ssgan/networks.py`,
`jgan/families/ssgan/step.py`), free of jax: Salimans et al. 2016 (Sec. 3.1 feature matching,
Sec. 5 semi-supervised learning) as the authors' openai/improved-gan
`mnist_svhn_cifar10/train_mnist_feature_matching.py` runs it and jgan implements it.

Every function is pure: it takes and returns arrays (float32 torch tensors inside, or float64
with float64 inputs and torch's default dtype float64; NumPy at the edges), and every random draw of jgan's step comes in from outside: the z of both of G's passes,
each labelled minibatch, and the draws of each of D's Gaussian noise layers in each of its five
passes per step. So the twin, fed jgan's own draws, can agree with jgan's jitted step to float
tolerance, step after step (tests/test_ssgan_twin.py).

Parameters and non-trainable variables are one flat dict named as jgan's flax variables,
`"<net>/<collection>/<layer>/<name>"` (e.g. `"d/params/WeightNormDense_0/kernel"`,
`"d/weight_norm/WeightNormDense_0/scale"`, `"g/batch_stats/BatchNorm_1/var"`); kernels are
[inputs, outputs], as flax's. Only what the paper's MNIST model uses is written: G with
BatchNorm (`model.g_norm` "batch") and a weight-normalized output, D with weight norm and
Gaussian noise, no dropout, no minibatch discrimination, no historical averaging, a constant rate.
"""

from __future__ import annotations

import numpy as np
import torch

# jgan's BatchNorm in G: flax's momentum 0.9 for the running averages, the authors' epsilon 1e-6
# (`nn.BatchNormLayer`: T.sqrt(1e-6 + batch_var)).
BN_MOMENTUM, BN_EPSILON = 0.9, 1e-6
# `jgan.nn.WeightNormDense`'s guard in ||v||; the authors' DenseLayer has none, l2normalize 1e-6.
WEIGHT_NORM_EPSILON = 1e-12
# optax.adam's epsilon after the root, which `jgan.optim.make_optimizer` leaves at its default;
# the epsilon inside the root is the config's `optim.eps_root` (1e-8 in experiments/ssgan.py).
ADAM_EPSILON = 1e-8


def as_tensors(arrays: dict) -> dict:
    """float32 (or integer) torch tensors of a dict of NumPy arrays, copied."""
    return {name: torch.tensor(np.asarray(value)) for name, value in arrays.items()}


def as_arrays(tensors: dict) -> dict:
    return {name: value.detach().numpy().copy() for name, value in tensors.items()}


def of_net(variables: dict, net: str, collection: str = "params") -> dict:
    """The entries of one network's collection, keyed by their full names."""
    prefix = f"{net}/{collection}/"
    return {name: value for name, value in variables.items() if name.startswith(prefix)}


def pixels_to_unit(images) -> torch.Tensor:
    """uint8 images [B, H, W, C] -> float32 [B, H*W*C] in [0, 1], as `step.pixels_to_unit` and
    the authors' MNIST data; row-major flattening, as D's `x.reshape(B, -1)`."""
    images = torch.tensor(np.asarray(images))
    return (images.float() / 255.0).reshape(images.shape[0], -1)


def weight_norm_dense(x, kernel, scale, bias):
    """x (v / ||v||) g + b, the norm over each output unit's inputs (Salimans & Kingma 2016;
    the authors' `nn.DenseLayer` and `nn.l2normalize`, `jgan.nn.WeightNormDense`)."""
    direction = kernel / torch.sqrt(torch.sum(kernel * kernel, 0) + WEIGHT_NORM_EPSILON)
    return (x @ direction) * scale + bias


def batch_norm_train(h, bias, mean, var):
    """Training-mode BatchNorm without a scale (the authors' `batch_norm(g=None)`): normalized
    by the batch's own mean and biased variance, plus a bias. Returns the output and the
    running averages flax keeps (the variance biased, unlike the authors' never-applied
    `bn_updates`, which only inference would read)."""
    batch_mean = h.mean(0)
    batch_var = torch.square(h - batch_mean).mean(0)
    out = (h - batch_mean) / torch.sqrt(batch_var + BN_EPSILON) + bias
    new_mean = BN_MOMENTUM * mean + (1.0 - BN_MOMENTUM) * batch_mean.detach()
    new_var = BN_MOMENTUM * var + (1.0 - BN_MOMENTUM) * batch_var.detach()
    return out, new_mean, new_var


def generator(variables: dict, z) -> tuple[torch.Tensor, dict]:
    """G in training mode: z -> (dense, BatchNorm, softplus) x 2 -> weight-normalized dense ->
    sigmoid, images [B, pixels] in [0, 1]; and G's updated `batch_stats`."""
    h, stats = z, {}
    for index in range(2):
        h = h @ variables[f"g/params/Dense_{index}/kernel"]
        norm = f"BatchNorm_{index}"
        h, stats[f"g/batch_stats/{norm}/mean"], stats[f"g/batch_stats/{norm}/var"] = (
            batch_norm_train(h, variables[f"g/params/{norm}/bias"],
                             variables[f"g/batch_stats/{norm}/mean"],
                             variables[f"g/batch_stats/{norm}/var"]))
        h = torch.nn.functional.softplus(h)
    out = "g/params/WeightNormDense_0"
    return torch.sigmoid(weight_norm_dense(h, variables[f"{out}/kernel"],
                                           variables[f"{out}/scale"],
                                           variables[f"{out}/bias"])), stats


def hidden_layers(variables: dict) -> int:
    return len(of_net(variables, "d", "weight_norm"))


def discriminator(variables: dict, x, noises: list) -> tuple[torch.Tensor, torch.Tensor]:
    """D in training mode: (logits [B, K], features [B, F]). `noises[0]` is added to the input,
    `noises[i]` after hidden layer i (the draws, std included, of jgan's GaussianNoise layers;
    the authors' `GaussianNoiseLayer` 0.3 and 0.5). The hidden layers' weight-norm scale is the
    fixed one of their data-dependent init; the output layer's is trained (`train_scale=True`).
    The features are the last hidden layer before its noise (the authors' `layers[-3]`)."""
    depth = hidden_layers(variables)
    # The input noise is added in the images' dtype, as jgan's GaussianNoise does: float32 for
    # real images even when the rest runs in float64 (`ssgan_twin_check.py --float64`).
    h = (x + noises[0]).to(torch.get_default_dtype())
    for index in range(depth):
        layer = f"WeightNormDense_{index}"
        h = torch.relu(weight_norm_dense(h, variables[f"d/params/{layer}/kernel"],
                                         variables[f"d/weight_norm/{layer}/scale"],
                                         variables[f"d/params/{layer}/bias"]))
        features = h
        h = h + noises[index + 1]
    out = f"d/params/WeightNormDense_{depth}"
    return weight_norm_dense(h, variables[f"{out}/kernel"], variables[f"{out}/scale"],
                             variables[f"{out}/bias"]), features


def log_d(logits):
    """log D(x) with D(x) = Z / (Z + 1), Z = sum_k exp(l_k): lse(l) - softplus(lse(l))
    (Sec. 5; the authors' `nn.log_sum_exp`)."""
    lse = torch.logsumexp(logits, -1)
    return lse - torch.nn.functional.softplus(lse)


def k_plus_one_losses(lab_logits, labels, unl_logits, fake_logits, real_label: float):
    """(supervised, unsupervised) of D: Sec. 5's L_supervised and L_unsupervised, as the
    authors' `loss_lab` and `loss_unl` compute them: the K-class cross-entropy on labelled data, and
    0.5 [-E_unl log D(x) - E_gen log(1 - D(G(z)))] = 0.5 [mean(-lse + softplus(lse))_unl +
    mean softplus(lse)_gen]; `real_label` < 1 smooths the unlabelled target (Sec. 3.4)."""
    supervised = torch.nn.functional.cross_entropy(lab_logits, labels)
    lse_unl, lse_fake = torch.logsumexp(unl_logits, -1), torch.logsumexp(fake_logits, -1)
    softplus = torch.nn.functional.softplus
    unsupervised = 0.5 * ((-real_label * lse_unl + softplus(lse_unl)).mean()
                          + softplus(lse_fake).mean())
    return supervised, unsupervised


def feature_matching(real_features, fake_features):
    """||E f(x) - E f(G(z))||^2 / F (Sec. 3.1), the mean over the F features as the authors'
    `T.mean(T.square(mom_gen - mom_real))`."""
    return torch.square(real_features.mean(0) - fake_features.mean(0)).mean()


def adam(params: dict, grads: dict, moments: dict, count: int, lr: float, optim) -> dict:
    """One Adam step (Kingma & Ba 2015) as optax.adam with `eps_root`: m / (sqrt(v + eps_root)
    + eps), bias-corrected; the authors' `nn.adam_updates` has the root's epsilon only. Updates
    `moments` (`{name: (m, v)}`) in place and returns the new parameters."""
    new = {}
    for name, value in params.items():
        m, v = moments.get(name, (torch.zeros_like(value), torch.zeros_like(value)))
        m = optim.b1 * m + (1.0 - optim.b1) * grads[name]
        v = optim.b2 * v + (1.0 - optim.b2) * torch.square(grads[name])
        moments[name] = (m, v)
        m_hat, v_hat = m / (1.0 - optim.b1 ** count), v / (1.0 - optim.b2 ** count)
        new[name] = value - lr * m_hat / (torch.sqrt(v_hat + optim.eps_root) + ADAM_EPSILON)
    return new


def differentiable(params: dict) -> dict:
    return {name: value.detach().clone().requires_grad_(True) for name, value in params.items()}


def d_update(variables: dict, batch: dict, noise: dict, config) -> tuple[dict, dict, dict]:
    """D's step: G in training mode makes the fakes of `noise["z_d"]` (its statistics move, no
    gradient reaches it); D's loss on the labelled, unlabelled and fake minibatches, each with its
    own noise. Returns (D's gradients, G's new batch_stats, metrics)."""
    fake, g_stats = generator(variables, noise["z_d"])
    params = differentiable(of_net(variables, "d"))
    current = {**variables, **params}
    labels = torch.tensor(np.asarray(batch["labels"])).long()
    lab_logits, _ = discriminator(current, pixels_to_unit(batch["labelled"]), noise["d_lab"])
    unl_logits, _ = discriminator(current, pixels_to_unit(batch["unlabelled_d"]),
                                  noise["d_unl"])
    fake_logits, _ = discriminator(current, fake.detach(), noise["d_fake"])
    supervised, unsupervised = k_plus_one_losses(lab_logits, labels, unl_logits, fake_logits,
                                                 config.loss.real_label)
    loss = supervised + config.loss.unlabelled_weight * unsupervised
    grads = dict(zip(params, torch.autograd.grad(loss, list(params.values()))))
    metrics = {"loss/d": loss, "loss/d/supervised": supervised,
               "loss/d/unsupervised": unsupervised,
               "d/real": torch.exp(log_d(unl_logits)).mean(),
               "d/fake": torch.exp(log_d(fake_logits)).mean(),
               "d/labelled_accuracy": (lab_logits.argmax(-1) == labels).float().mean()}
    return grads, g_stats, metrics


def g_update(variables: dict, batch: dict, noise: dict) -> tuple[dict, dict, torch.Tensor]:
    """G's step on fresh z against the updated D, D's noise on: feature matching of D's last
    hidden layer between the second unlabelled minibatch and G's samples. Returns (G's
    gradients, G's new batch_stats, the loss)."""
    real = pixels_to_unit(batch["unlabelled_g"])
    _, real_features = discriminator(variables, real, noise["g_real"])
    params = differentiable(of_net(variables, "g"))
    fake, g_stats = generator({**variables, **params}, noise["z_g"])
    _, fake_features = discriminator(variables, fake, noise["g_fake"])
    loss = feature_matching(real_features, fake_features)
    grads = dict(zip(params, torch.autograd.grad(loss, list(params.values()))))
    return grads, g_stats, loss


def noise_tensors(noise: dict) -> dict:
    return {name: ([torch.tensor(np.asarray(draw)) for draw in value]
                   if isinstance(value, list) else torch.tensor(np.asarray(value)))
            for name, value in noise.items()}


def run_twin(initial: dict, batches: list, noises: list, config) -> list[dict]:
    """Train from `initial` (jgan's variables, flat as the module docstring says) for
    len(batches) steps; one dict per step: the metrics jgan's step reports and `"variables"`,
    every parameter and statistic after the step (NumPy).

    batches[t]: `labelled` uint8 [B, H, W, C] and `labels` [B] (the step's labelled minibatch),
    `unlabelled_d` and `unlabelled_g` uint8 [B, H, W, C] (the two halves of the loader's batch).
    noises[t]: `z_d`, `z_g` [B, z_dim] (G's inputs in D's and G's update) and `d_lab`, `d_unl`,
    `d_fake`, `g_real`, `g_fake`: each a list of D's noise draws, input first, for D's pass on
    the labelled, unlabelled and fake images of D's update and the real and fake ones of G's.
    `config`: a jgan Config (`optim.g_lr`, `d_lr`, `b1`, `b2`, `eps_root`; `loss.real_label`,
    `loss.unlabelled_weight`).
    """
    variables, moments, rows = as_tensors(initial), {}, []
    for count, (batch, noise) in enumerate(zip(batches, noises), start=1):
        metrics = train_step(variables, moments, count, batch, noise_tensors(noise), config)
        rows.append({**metrics, "variables": as_arrays(variables)})
    return rows


def train_step(variables: dict, moments: dict, count: int, batch: dict, noise: dict,
               config) -> dict:
    """Step `count` (from 1): D's update, then G's, on `batch` with `noise` (tensors), as
    `run_twin` documents them. Updates `variables` and Adam's `moments` in place; returns the
    step's metrics as floats."""
    d_grads, g_stats, metrics = d_update(variables, batch, noise, config)
    variables.update(g_stats)
    variables.update(adam(of_net(variables, "d"), d_grads, moments, count,
                          config.optim.d_lr, config.optim))
    g_grads, g_stats, metrics["loss/g"] = g_update(variables, batch, noise)
    variables.update(g_stats)
    variables.update(adam(of_net(variables, "g"), g_grads, moments, count,
                          config.optim.g_lr, config.optim))
    return {name: float(value.detach()) for name, value in metrics.items()}
