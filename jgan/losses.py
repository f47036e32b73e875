"""Adversarial losses and regularizers as pure, keyword-only functions of discriminator outputs.

With D(x) = sigmoid(l(x)) (Goodfellow et al. 2014, Eq. 1), log D = -softplus(-l) and
log(1 - D) = -softplus(l). Every loss takes logits (or raw critic scores) of shape [B] and returns
the batch mean as a scalar. `get_losses` picks a `(d, g)` pair by name, with its options bound;
`patch_losses` picks pix2pix's and CycleGAN's, which take a PatchGAN's logits of any shape.
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jgan.errors import UserError


def _bce(logits: jax.Array, target: float) -> jax.Array:
    """Binary cross-entropy per example, t * softplus(-l) + (1 - t) * softplus(l), via optax."""
    return optax.sigmoid_binary_cross_entropy(logits, target)


def minimax_d_loss(*, real_logits: jax.Array, fake_logits: jax.Array,
                   real_label: float = 1.0) -> jax.Array:
    """-log D(x) - log(1 - D(G(z))): the discriminator side of the minimax game (Eq. 1).

    `real_label` < 1 is one-sided label smoothing (Salimans et al. 2016, Sec. 3.4): real targets
    become `real_label`, fake targets stay 0.
    """
    return jnp.mean(_bce(real_logits, real_label)) + jnp.mean(_bce(fake_logits, 0.0))


nonsaturating_d_loss = minimax_d_loss
"""The discriminator loss is the same binary cross-entropy for both generator losses."""


def minimax_g_loss(*, fake_logits: jax.Array) -> jax.Array:
    """log(1 - D(G(z))), minimised by G: the game as written, whose gradient vanishes early."""
    return -jnp.mean(jax.nn.softplus(fake_logits))


def nonsaturating_g_loss(*, fake_logits: jax.Array) -> jax.Array:
    """-log D(G(z)): the 'non-saturating' generator loss of Goodfellow et al. 2014, Sec. 3."""
    return jnp.mean(_bce(fake_logits, 1.0))


# StyleGAN's "logistic" loss (Karras et al. 2019, 2020) is the non-saturating one, written there
# with softplus: softplus(-D(x)) + softplus(D(G(z))) for D, softplus(-D(G(z))) for G.
logistic_d_loss = nonsaturating_d_loss
logistic_g_loss = nonsaturating_g_loss


def hinge_d_loss(*, real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
    """mean relu(1 - D(x)) + mean relu(1 + D(G(z))) (Lim & Ye 2017; Miyato et al. 2018, Eq. 16)."""
    return jnp.mean(jax.nn.relu(1.0 - real_logits)) + jnp.mean(jax.nn.relu(1.0 + fake_logits))


def wasserstein_d_loss(*, real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
    """mean f(G(z)) - mean f(x), minimised by the critic f (Arjovsky et al. 2017, Algorithm 1)."""
    return jnp.mean(fake_logits) - jnp.mean(real_logits)


def wasserstein_g_loss(*, fake_logits: jax.Array) -> jax.Array:
    """-mean f(G(z)) (Arjovsky et al. 2017, Algorithm 1, line 10)."""
    return -jnp.mean(fake_logits)


hinge_g_loss = wasserstein_g_loss
"""-mean D(G(z)): the hinge generator loss is the Wasserstein one (Miyato et al. 2018, Eq. 17)."""


def least_squares_d_loss(*, real_logits: jax.Array, fake_logits: jax.Array,
                         real_label: float = 1.0) -> jax.Array:
    """LSGAN with a = 0, b = c = 1 (Mao et al. 2017, Eq. 9) on raw scores, no sigmoid.

    0.5 * mean (D(x) - real_label)^2 + 0.5 * mean D(G(z))^2; `real_label` = b, smoothed below 1.
    """
    return 0.5 * jnp.mean((real_logits - real_label) ** 2) + 0.5 * jnp.mean(fake_logits ** 2)


def least_squares_g_loss(*, fake_logits: jax.Array) -> jax.Array:
    """0.5 * mean (D(G(z)) - 1)^2 (Mao et al. 2017, Eq. 9, c = 1)."""
    return 0.5 * jnp.mean((fake_logits - 1.0) ** 2)


def _focal(logits: jax.Array, target: float, gamma: float) -> jax.Array:
    """Per example, -(1 - p_t)^gamma * log p_t with p_t = t * p + (1 - t) * (1 - p)."""
    # 1 - p_t from sigmoids of both signs: 1 - sigmoid(l) cancels to 0 long before l is large.
    miss = target * jax.nn.sigmoid(-logits) + (1.0 - target) * jax.nn.sigmoid(logits)
    # x ** gamma has an infinite or NaN derivative at x = 0 for gamma < 1 (gamma = 0 included),
    # and a saturated logit gives x = 0; the floor changes the loss by less than 1e-38.
    miss = jnp.maximum(miss, jnp.finfo(miss.dtype).tiny)
    return miss ** gamma * _bce(logits, target)


def focal_d_loss(*, real_logits: jax.Array, fake_logits: jax.Array, real_label: float = 1.0,
                 gamma: float = 2.0) -> jax.Array:
    """Binary focal loss -(1 - p_t)^gamma log p_t (Lin et al. 2017, Eq. 5) on real and fake.

    Real targets are `real_label`, fake targets 0; for a soft target the cross-entropy is weighted
    by (1 - p_t)^gamma. gamma = 0 is `nonsaturating_d_loss`.
    """
    return (jnp.mean(_focal(real_logits, real_label, gamma))
            + jnp.mean(_focal(fake_logits, 0.0, gamma)))


def focal_g_loss(*, fake_logits: jax.Array, gamma: float = 2.0) -> jax.Array:
    """Focal loss of fakes against target 1 (Lin et al. 2017, Eq. 5); gamma = 0 is nonsaturating."""
    return jnp.mean(_focal(fake_logits, 1.0, gamma))


class GANLoss(NamedTuple):
    """A discriminator loss and the generator loss it is played with."""
    d: Callable[..., jax.Array]
    g: Callable[..., jax.Array]


LOSSES: dict[str, GANLoss] = {
    "minimax": GANLoss(minimax_d_loss, minimax_g_loss),
    "nonsaturating": GANLoss(nonsaturating_d_loss, nonsaturating_g_loss),
    "logistic": GANLoss(logistic_d_loss, logistic_g_loss),
    "hinge": GANLoss(hinge_d_loss, hinge_g_loss),
    "wasserstein": GANLoss(wasserstein_d_loss, wasserstein_g_loss),
    "least_squares": GANLoss(least_squares_d_loss, least_squares_g_loss),
    "focal": GANLoss(focal_d_loss, focal_g_loss),
}
LOSS_NAMES = tuple(LOSSES)
# Hinge and Wasserstein scores have no target to smooth.
_SMOOTHABLE = ("minimax", "nonsaturating", "logistic", "least_squares", "focal")


def get_losses(name: str, *, real_label: float = 1.0, focal_gamma: float = 2.0) -> GANLoss:
    """The `(d, g)` pair for a loss name from the config, with `real_label` and `gamma` bound."""
    if name not in LOSSES:
        raise UserError(f"unknown loss {name!r}: choose one of {list(LOSS_NAMES)}")
    if not 0.0 < real_label <= 1.0:
        raise UserError(f"real_label {real_label} is outside (0, 1]: use 1.0, or e.g. 0.9 to "
                        "smooth the real targets")
    if real_label != 1.0 and name not in _SMOOTHABLE:
        raise UserError(f"loss {name!r} has no labels to smooth: label smoothing applies to the "
                        f"probabilistic losses {list(_SMOOTHABLE)}; set real_label to 1.0")
    if focal_gamma < 0.0:
        raise UserError(f"focal_gamma {focal_gamma} is negative: use a gamma >= 0 (Lin et al. "
                        "use 2.0)")
    d, g = LOSSES[name]
    if name in _SMOOTHABLE:
        d = functools.partial(d, real_label=real_label)
    if name == "focal":
        d, g = functools.partial(d, gamma=focal_gamma), functools.partial(g, gamma=focal_gamma)
    return GANLoss(d, g)


def l1_loss(*, prediction: jax.Array, target: jax.Array) -> jax.Array:
    """mean |prediction - target| over all elements: pix2pix's L_L1 (Isola et al. 2017, Eq. 3).

    The mean, not the per-image sum, as the reference's `nn.L1Loss`: lambda_L1 = 100 is set
    against it.
    """
    return jnp.mean(jnp.abs(prediction - target))


def cycle_consistency_loss(*, real: jax.Array, reconstructed: jax.Array) -> jax.Array:
    """One direction of CycleGAN's L_cyc (Zhu et al. 2017, Eq. 2): the L1 of F(G(x)) against x.

    The caller adds both directions, each weighted by its lambda (`lambda_A`, `lambda_B`).
    """
    return l1_loss(prediction=reconstructed, target=real)


def identity_loss(*, real: jax.Array, mapped: jax.Array) -> jax.Array:
    """The L1 of G(y) against y: CycleGAN's identity mapping loss (Zhu et al. 2017, Sec. 5.2).

    Taesung Park's term, from Taigman et al. 2017: a generator fed an image already of its
    output domain should leave it alone, which keeps the colours of a painting-to-photo map.
    """
    return l1_loss(prediction=mapped, target=real)


def _squared_error(logits: jax.Array, target: float) -> jax.Array:
    """Per element, (l - t)^2: the reference's `nn.MSELoss` before its mean."""
    return (logits - target) ** 2


def _patch_d_loss(criterion, *, real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
    return 0.5 * (jnp.mean(criterion(real_logits, 1.0)) + jnp.mean(criterion(fake_logits, 0.0)))


def _patch_g_loss(criterion, *, fake_logits: jax.Array) -> jax.Array:
    return jnp.mean(criterion(fake_logits, 1.0))


PATCH_LOSS_NAMES = ("least_squares", "nonsaturating", "focal")


def patch_losses(name: str, *, focal_gamma: float = 2.0) -> GANLoss:
    """The `(d, g)` pair that pix2pix and CycleGAN play, as the reference's `GANLoss` applies it.

    With criterion(l, t) the mean over every element of the logits (any shape: a PatchGAN's
    [B, h, w, 1] scores each patch), D's loss is 0.5 * (criterion(real, 1) + criterion(fake, 0))
    (Isola et al. 2017, Sec. 3.3, halve D's objective) and G's is criterion(fake, 1). The criterion:
      least_squares: (l - t)^2, LSGAN on raw scores (Mao et al. 2017; CycleGAN's choice, Sec. 4);
      nonsaturating: binary cross-entropy with logits (pix2pix's vanilla GAN);
      focal: -(1 - p_t)^gamma log p_t (Lin et al. 2017, Eq. 5), gamma = `focal_gamma`.
    Unlike `least_squares_g_loss`, G's least-squares loss has no 0.5: the reference's G
    criterion is a plain MSE, and lambda_L1 = 100 and the cycle weight lambda = 10 were tuned
    against an adversarial term of that size. D's least-squares loss equals
    `least_squares_d_loss`; D's cross-entropy is half `nonsaturating_d_loss`.
    """
    criteria = {"least_squares": _squared_error, "nonsaturating": _bce,
                "focal": functools.partial(_focal, gamma=focal_gamma)}
    if name not in criteria:
        raise UserError(f"unknown patch loss {name!r}: choose one of {list(PATCH_LOSS_NAMES)}")
    if not focal_gamma >= 0.0:
        raise UserError(f"focal_gamma {focal_gamma} is not >= 0: use a gamma >= 0 (Lin et al. "
                        "use 2.0)")
    criterion = criteria[name]
    return GANLoss(functools.partial(_patch_d_loss, criterion),
                   functools.partial(_patch_g_loss, criterion))


def classification_loss(*, class_logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy -log P(C = c | x): ACGAN's L_C (Odena et al. 2017, Eq. 2-3).

    Args:
      class_logits: [B, K] unnormalised class scores of the auxiliary classifier.
      labels: [B] integer classes in [0, K).
    """
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(class_logits, labels))


def interpolates(*, real, fake, key: jax.Array):
    """eps * real + (1 - eps) * fake, one eps ~ U[0, 1] per example (Gulrajani 2017, Algorithm 1).

    Args:
      real, fake: [B, ...] arrays of the same shape, or pytrees of them (BiGAN's (x, z) pairs):
        every leaf of an example is interpolated with that example's eps.
    Returns:
      like `real`, each example on the segment between its real and fake.
    """
    shapes = jax.tree.map(jnp.shape, (real,)), jax.tree.map(jnp.shape, (fake,))
    if shapes[0] != shapes[1]:
        raise ValueError(f"real {shapes[0][0]} and fake {shapes[1][0]} must have the same shape")
    leaves = jax.tree.leaves(real)
    eps = jax.random.uniform(key, (leaves[0].shape[0],), dtype=leaves[0].dtype)

    def mix(r, f):
        e = eps.reshape((-1,) + (1,) * (r.ndim - 1))
        return e * r + (1.0 - e) * f

    return jax.tree.map(mix, real, fake)


def _squared_input_grad_norm(fn: Callable, x) -> jax.Array:
    """||grad_x fn(x)_i||^2 per example, summed over all non-batch axes and all leaves of x: [B].

    One backward pass of sum_i fn(x)_i gives every example's gradient, as fn(x)_i depends on x_i
    alone when the network has no batch-coupling layer (batch norm in train mode couples them).
    """
    grads = jax.grad(lambda x: jnp.sum(fn(x)))(x)
    return sum(jnp.sum(g ** 2, axis=tuple(range(1, g.ndim))) for g in jax.tree.leaves(grads))


def gradient_penalty(critic: Callable, *, real, fake, key: jax.Array,
                     weight: float = 10.0) -> jax.Array:
    """weight * mean (||grad f(x_hat)||_2 - 1)^2 at interpolates x_hat (Gulrajani 2017, Eq. 3).

    Args:
      critic: images [B, ...] -> scores [B], with no batch-coupling layer (no batch norm: the
        paper uses layer norm), so that one gradient of the summed scores is per example.
      real, fake: [B, ...] images, or pytrees of them, such as BiGAN's pairs (x, z): the norm is
        then that of the gradient with respect to all of an example's leaves jointly.
      key: draws the interpolation weights.
    """
    x_hat = interpolates(real=real, fake=fake, key=key)
    # sqrt has an infinite derivative at 0, reached when the critic is flat at x_hat (a constant
    # or dead-ReLU critic); 1e-12 keeps the gradient finite and is lost in float32 next to 1.
    norms = jnp.sqrt(_squared_input_grad_norm(critic, x_hat) + 1e-12)
    return weight * jnp.mean((norms - 1.0) ** 2)


def r1_penalty(discriminator: Callable[[jax.Array], jax.Array], *, real: jax.Array,
               gamma: float) -> jax.Array:
    """gamma / 2 * mean ||grad D(x)||^2 on real images (Mescheder et al. 2018, Eq. 9; StyleGAN2).

    `discriminator` maps [B, ...] -> logits [B] with no batch-coupling layer.
    """
    return 0.5 * gamma * jnp.mean(_squared_input_grad_norm(discriminator, real))


def r2_penalty(discriminator: Callable[[jax.Array], jax.Array], *, fake: jax.Array,
               gamma: float) -> jax.Array:
    """gamma / 2 * mean ||grad D(G(z))||^2 on generated images (Mescheder et al. 2018, Eq. 10)."""
    return 0.5 * gamma * jnp.mean(_squared_input_grad_norm(discriminator, fake))


# Pairwise MSE of independent N(0, I) codes: E (a - b)^2 = 2 per dimension.
PRIOR_PAIRWISE_MSE = 2.0


def feature_matching_loss(*, real_features: jax.Array, fake_features: jax.Array) -> jax.Array:
    """||E f(x) - E f(G(z))||^2 (Salimans et al. 2016, Sec. 3.1), f being D's last hidden features.

    G is trained to match the mean features of real data instead of fooling D.
    """
    difference = (jnp.mean(real_features.reshape(real_features.shape[0], -1), axis=0)
                  - jnp.mean(fake_features.reshape(fake_features.shape[0], -1), axis=0))
    return jnp.sum(difference ** 2)


def pairwise_mse(codes: jax.Array) -> jax.Array:
    """Mean over pairs i != j of mean_k (c_ik - c_jk)^2 for codes [B, K].

    Computed as 2 * mean_k of the unbiased variance, which it equals (sum over i != j of
    (a_i - a_j)^2 = 2B * sum_i (a_i - mean)^2), in O(B K) rather than O(B^2 K).
    """
    return 2.0 * jnp.mean(jnp.var(codes, axis=0, ddof=1))


def latent_spread_penalty(codes: jax.Array, *, weight: float = 1.5) -> jax.Array:
    """-weight * tanh(pairwise MSE): rewards an encoder for keeping its codes apart.

    The first seed's similarity term against encoder collapse, with its weight 1.5. tanh bounds
    the reward, so it stops pushing once codes are as far apart as the prior's (tanh(2) = 0.96).
    """
    return -weight * jnp.tanh(pairwise_mse(codes))


def adaptive_variance_multiplier(codes: jax.Array, *, base: float,
                                 max_multiplier: float = 10.0) -> jax.Array:
    """base * clip(2 / pairwise MSE, 1, max_multiplier), with no gradient.

    The multiplier of `latent_variance_penalty` grows as the encoded batch closes up: `base` while
    codes are at least as far apart as N(0, I) codes (pairwise MSE 2), `base * 2 / mse` as they
    draw together, at most `base * max_multiplier` when they collapse.
    """
    closeness = PRIOR_PAIRWISE_MSE / jnp.maximum(pairwise_mse(codes), 1e-12)
    return base * jax.lax.stop_gradient(jnp.clip(closeness, 1.0, max_multiplier))


def latent_variance_penalty(codes: jax.Array, *, multiplier, tolerance: float) -> jax.Array:
    """multiplier * max(mean_k (1 - var_k)^2 - tolerance, 0) for codes [B, K].

    The first seed's variance term: the per-dimension batch variance of E(x) should be the
    prior's 1; deviations within `tolerance` (in mean squared error) are free.
    """
    variance_error = jnp.mean((1.0 - jnp.var(codes, axis=0, ddof=1)) ** 2)
    return multiplier * jax.nn.relu(variance_error - tolerance)


def per_sample_spread_penalty(codes: jax.Array, *, weight: float) -> jax.Array:
    """-weight * mean_i tanh(s_i), s_i = mean over j != i of mean_k (c_ik - c_jk)^2, codes [B, K].

    The first seed's similarity term as it wrote it: tanh bounds each code's own spread before
    the mean over codes, where `latent_spread_penalty` takes tanh of the batch mean
    (mean_i s_i = `pairwise_mse`), so a few far-off codes saturate their own tanh, not the batch's.
    s_i = B / (B - 1) * mean_k ((c_ik - m_k)^2 + var_k), m and var (ddof=0) over the batch, as
    sum_j (a_i - a_j)^2 = B (a_i - m)^2 + B var: O(B K) rather than O(B^2 K).
    """
    batch = codes.shape[0]
    mean = jnp.mean(codes, axis=0)
    squared = (codes - mean) ** 2 + jnp.var(codes, axis=0)
    spread = batch / (batch - 1) * jnp.mean(squared, axis=1)
    return -weight * jnp.mean(jnp.tanh(spread))


def per_sample_variance_penalty(codes: jax.Array, *, multiplier, tolerance: float) -> jax.Array:
    """multiplier * max(mean_i (v_i - 1)^2 - tolerance, 0), v_i = var_k c_ik for codes [B, K].

    The first seed's variance term as it wrote it: each code's variance across its own K latent
    dimensions (unbiased, ddof=1, like `latent_variance_penalty`) should be the prior's 1, where
    `latent_variance_penalty` asks it of each dimension's variance across the batch. Deviations
    within `tolerance` (in mean squared error) are free.
    """
    variance_error = jnp.mean((jnp.var(codes, axis=1, ddof=1) - 1.0) ** 2)
    return multiplier * jax.nn.relu(variance_error - tolerance)


def orthogonal_regularization(params, *, beta: float, exclude=()) -> jax.Array:
    """BigGAN's orthogonal regularization (Brock et al. 2019, Eq. 3): beta * sum over weight
    matrices W of ||W^T W (.) (1 - I)||_F^2, the squared off-diagonal of each Gram matrix.

    Every leaf of `params` with 2 or more axes is a weight, its last axis the outputs (Flax's
    kernels [..., in, out] become [fan_in, out]), so the filters are pushed towards mutual
    orthogonality without constraining their norms. Leaves whose path contains a name in
    `exclude` are skipped. BigGAN-PyTorch adds 2 beta ((W W^T) (.) (1 - I)) W to the gradient,
    half of this term's gradient: its beta 1e-4 is this beta 5e-5.

    A wide W (fewer rows than outputs, as a dense layer from a z chunk to a 4x4 map) takes the
    same value from its small Gram matrix: ||W^T W||_F = ||W W^T||_F, and the diagonal of
    W^T W holds the columns' squared norms.
    """
    total = jnp.zeros((), jnp.float32)
    for path, weight in jax.tree_util.tree_leaves_with_path(params):
        name = jax.tree_util.keystr(path)
        if weight.ndim < 2 or any(excluded in name for excluded in exclude):
            continue
        matrix = weight.reshape(-1, weight.shape[-1])
        if matrix.shape[0] < matrix.shape[1]:
            total += (jnp.sum(jnp.square(matrix @ matrix.T))
                      - jnp.sum(jnp.square(jnp.sum(jnp.square(matrix), axis=0))))
        else:
            gram = matrix.T @ matrix
            total += jnp.sum(jnp.square(gram * (1.0 - jnp.eye(gram.shape[0], dtype=gram.dtype))))
    return beta * total


def k_plus_one_log_d(logits: jax.Array) -> jax.Array:
    """log D(x) [B] of a K-class classifier with an implicit fake class (Salimans et al. 2016,
    Sec. 5): with Z = sum_k exp(l_k), D(x) = Z / (Z + 1), so log D = lse(l) - softplus(lse(l));
    log(1 - D) is -softplus(lse(l))."""
    lse = jax.nn.logsumexp(logits, axis=-1)
    return lse - jax.nn.softplus(lse)


def k_plus_one_d_loss(*, labelled_logits: jax.Array, labels: jax.Array,
                      unlabelled_logits: jax.Array, fake_logits: jax.Array,
                      real_label: float = 1.0) -> tuple[jax.Array, jax.Array]:
    """`(supervised, unsupervised)` terms of the semi-supervised D's loss (Salimans et al. 2016,
    Sec. 5): cross-entropy of the K real classes on labelled data, and
    0.5 * (-E_unl log D(x) - E_gen log(1 - D(G(z)))) on unlabelled and generated data, halved as
    in the authors' code (openai/improved-gan, train_mnist_feature_matching.py).

    `real_label` < 1 is one-sided label smoothing (Sec. 3.4): the unlabelled term's target is
    t = `real_label` for "real", so it reads -t log D(x) - (1 - t) log(1 - D(x)), which is
    -t lse(l) + softplus(lse(l)).
    Logits are [B, K]; labels [B] integers in [0, K).
    """
    lse_unlabelled = jax.nn.logsumexp(unlabelled_logits, axis=-1)
    lse_fake = jax.nn.logsumexp(fake_logits, axis=-1)
    unsupervised = 0.5 * (jnp.mean(-real_label * lse_unlabelled
                                   + jax.nn.softplus(lse_unlabelled))
                          + jnp.mean(jax.nn.softplus(lse_fake)))
    supervised = classification_loss(class_logits=labelled_logits, labels=labels)
    return supervised, unsupervised
