import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgan import losses
from jgan.errors import UserError

LN3 = math.log(3.0)
REAL = jnp.array([0.0, LN3])  # D(x) = 1/2, 3/4
FAKE = jnp.array([0.0, -LN3])  # D(G(z)) = 1/2, 1/4


LN2, LN4_3, LN4 = math.log(2.0), math.log(4 / 3), math.log(4.0)
# softplus(0) = ln 2, softplus(ln 3) = ln 4, softplus(-ln 3) = ln(4/3); ln 3 > 1 for the hinge.
# (d, g) of every loss at REAL, FAKE, with its default options.
BY_HAND = {
    # D: softplus(-real) + softplus(fake); G: log(1 - D(G(z))) = -softplus(fake)
    "minimax": ((LN2 + LN4_3) / 2 + (LN2 + LN4_3) / 2, -(LN2 + LN4_3) / 2),
    # G: -log D(G(z)) = softplus(-fake)
    "nonsaturating": (LN2 + LN4_3, (LN2 + LN4) / 2),
    # StyleGAN's name for the non-saturating loss: test_logistic_is_the_non_saturating_loss
    "logistic": (LN2 + LN4_3, (LN2 + LN4) / 2),
    # D: relu(1 - real) = 1, 0 and relu(1 + fake) = 1, 0; G: -mean fake
    "hinge": ((1 + 0) / 2 + (1 + 0) / 2, LN3 / 2),
    "wasserstein": (-LN3 / 2 - LN3 / 2, LN3 / 2),
    # D: 0.5 mean (real - 1)^2 + 0.5 mean fake^2; G: 0.5 mean (fake - 1)^2
    "least_squares": (0.5 * (1 + (LN3 - 1) ** 2) / 2 + 0.5 * (0 + LN3**2) / 2,
                      0.5 * (1 + (LN3 + 1) ** 2) / 2),
    # gamma 2: real D = 1/2, 3/4 weighted (1 - p)^2; fake D = 1/2, 1/4 weighted p^2; G target 1
    "focal": ((0.25 * LN2 + 0.0625 * LN4_3) / 2 * 2, (0.25 * LN2 + 0.5625 * LN4) / 2),
}
# D at real_label 0.9 for the losses with labels. The real term 0.9 * softplus(-l) + 0.1 *
# softplus(l) is ln 2 at l = 0 and 0.9 ln(4/3) + 0.1 ln 4 at l = ln 3; fake targets stay 0.
SMOOTHED_REAL = (LN2 + 0.9 * LN4_3 + 0.1 * LN4) / 2
SMOOTHED_BY_HAND = {
    "minimax": SMOOTHED_REAL + (LN2 + LN4_3) / 2,
    "nonsaturating": SMOOTHED_REAL + (LN2 + LN4_3) / 2,
    "logistic": SMOOTHED_REAL + (LN2 + LN4_3) / 2,
    "least_squares": 0.5 * (0.9**2 + (LN3 - 0.9) ** 2) / 2 + 0.5 * LN3**2 / 2,
    # p_t = 0.9 p + 0.1 (1 - p) is 1/2 at p = 1/2 and 0.7 at p = 3/4
    "focal": (0.25 * LN2 + 0.3**2 * (0.9 * LN4_3 + 0.1 * LN4)) / 2
             + (0.25 * LN2 + 0.0625 * LN4_3) / 2,
}


def test_every_loss_name_has_hand_values():
    assert set(BY_HAND) == set(losses.LOSS_NAMES)


@pytest.mark.parametrize("name", losses.LOSS_NAMES)
def test_every_loss_by_hand(name):
    pair = losses.get_losses(name)
    expected_d, expected_g = BY_HAND[name]
    np.testing.assert_allclose(pair.d(real_logits=REAL, fake_logits=FAKE), expected_d, rtol=1e-6)
    np.testing.assert_allclose(pair.g(fake_logits=FAKE), expected_g, rtol=1e-6)
    if name in SMOOTHED_BY_HAND:
        smoothed = losses.get_losses(name, real_label=0.9)
        np.testing.assert_allclose(smoothed.d(real_logits=REAL, fake_logits=FAKE),
                                   SMOOTHED_BY_HAND[name], rtol=1e-6)


def test_logistic_is_the_non_saturating_loss():
    # Karras et al. (2019, 2020) train with the "non-saturating logistic loss", written with
    # softplus: softplus(-D(x)) + softplus(D(G(z))) for D and softplus(-D(G(z))) for G. It is the
    # nonsaturating pair itself, not a copy that could drift from it.
    assert losses.LOSSES["logistic"] == losses.LOSSES["nonsaturating"]
    pair = losses.get_losses("logistic")
    # D: softplus(-0) = ln 2 and softplus(-ln 3) = ln 4/3 on REAL, the same on FAKE
    np.testing.assert_allclose(pair.d(real_logits=REAL, fake_logits=FAKE), LN2 + LN4_3,
                               rtol=1e-6)
    # G: softplus(-0) = ln 2 and softplus(ln 3) = ln 4, where the saturating (minimax) G's
    # log(1 - D(G(z))) is -(ln 2 + ln 4/3) / 2
    np.testing.assert_allclose(pair.g(fake_logits=FAKE), (LN2 + LN4) / 2, rtol=1e-6)
    # Its point: on the fake D rejects (D(G(z)) = 1/4) G's gradient -sigmoid(-l) is -3/4, where
    # the saturating loss's -sigmoid(l) is -1/4 (each halved by the mean over two fakes).
    np.testing.assert_allclose(jax.grad(lambda f: pair.g(fake_logits=f))(FAKE), [-1 / 4, -3 / 8],
                               rtol=1e-6)
    np.testing.assert_allclose(jax.grad(lambda f: losses.minimax_g_loss(fake_logits=f))(FAKE),
                               [-1 / 4, -1 / 8], rtol=1e-6)


def test_losses_stay_finite_for_confident_logits():
    logits = jnp.array([-200.0, 200.0])
    assert jnp.isfinite(losses.nonsaturating_d_loss(real_logits=logits, fake_logits=logits))
    assert jnp.isfinite(losses.nonsaturating_g_loss(fake_logits=logits))


def test_losses_are_keyword_only():
    with pytest.raises(TypeError):
        losses.nonsaturating_g_loss(FAKE)


def test_unknown_loss_name_is_refused():
    with pytest.raises(ValueError, match="choose one of"):
        losses.get_losses("wasserstain")


SCORES_REAL = jnp.array([2.0, -0.5])
SCORES_FAKE = jnp.array([-1.0, 3.0])


def test_hinge_by_hand():
    # real: relu(1 - 2) = 0, relu(1 + 0.5) = 1.5; fake: relu(1 - 1) = 0, relu(1 + 3) = 4
    expected_d = (0 + 1.5) / 2 + (0 + 4) / 2
    got_d = losses.hinge_d_loss(real_logits=SCORES_REAL, fake_logits=SCORES_FAKE)
    np.testing.assert_allclose(got_d, expected_d, rtol=1e-6)
    np.testing.assert_allclose(losses.hinge_g_loss(fake_logits=SCORES_FAKE), -(-1 + 3) / 2,
                               rtol=1e-6)


def test_wasserstein_by_hand():
    expected_d = (-1 + 3) / 2 - (2 - 0.5) / 2  # mean f(G(z)) - mean f(x)
    got_d = losses.wasserstein_d_loss(real_logits=SCORES_REAL, fake_logits=SCORES_FAKE)
    np.testing.assert_allclose(got_d, expected_d, rtol=1e-6)
    np.testing.assert_allclose(losses.wasserstein_g_loss(fake_logits=SCORES_FAKE), -(-1 + 3) / 2,
                               rtol=1e-6)


def test_least_squares_by_hand():
    # 0.5 * mean((2 - 1)^2, (-0.5 - 1)^2) + 0.5 * mean((-1)^2, 3^2)
    expected_d = 0.5 * (1 + 1.5**2) / 2 + 0.5 * (1 + 9) / 2
    got_d = losses.least_squares_d_loss(real_logits=SCORES_REAL, fake_logits=SCORES_FAKE)
    np.testing.assert_allclose(got_d, expected_d, rtol=1e-6)
    # real_label 0.9: 0.5 * mean((2 - 0.9)^2, (-0.5 - 0.9)^2) + the same fake term
    smoothed_d = 0.5 * (1.1**2 + 1.4**2) / 2 + 0.5 * (1 + 9) / 2
    got_smoothed = losses.least_squares_d_loss(real_logits=SCORES_REAL, fake_logits=SCORES_FAKE,
                                               real_label=0.9)
    np.testing.assert_allclose(got_smoothed, smoothed_d, rtol=1e-6)
    # 0.5 * mean((-1 - 1)^2, (3 - 1)^2)
    np.testing.assert_allclose(losses.least_squares_g_loss(fake_logits=SCORES_FAKE),
                               0.5 * (4 + 4) / 2, rtol=1e-6)


def test_focal_by_hand():
    # real, target 1, D = 1/2, 3/4: -(1 - p)^2 log p; fake, target 0, D = 1/2, 1/4: -p^2 log(1 - p)
    real = ((1 / 2) ** 2 * math.log(2) + (1 / 4) ** 2 * math.log(4 / 3)) / 2
    fake = ((1 / 2) ** 2 * math.log(2) + (1 / 4) ** 2 * math.log(4 / 3)) / 2
    got_d = losses.focal_d_loss(real_logits=REAL, fake_logits=FAKE, gamma=2.0)
    np.testing.assert_allclose(got_d, real + fake, rtol=1e-6)
    # G: target 1 on D(G(z)) = 1/2, 1/4
    expected_g = ((1 / 2) ** 2 * math.log(2) + (3 / 4) ** 2 * math.log(4)) / 2
    np.testing.assert_allclose(losses.focal_g_loss(fake_logits=FAKE, gamma=2.0), expected_g,
                               rtol=1e-6)


def test_focal_with_soft_target_by_hand():
    # target 0.9: p_t = 0.9 p + 0.1 (1 - p) is 1/2 at p = 1/2 and 0.7 at p = 3/4, and the
    # weight (1 - p_t)^2 multiplies the soft cross-entropy 0.9 * -log p + 0.1 * -log(1 - p)
    real = ((1 / 2) ** 2 * math.log(2)
            + 0.3**2 * (0.9 * math.log(4 / 3) + 0.1 * math.log(4))) / 2
    fake = ((1 / 2) ** 2 * math.log(2) + (1 / 4) ** 2 * math.log(4 / 3)) / 2
    got = losses.focal_d_loss(real_logits=REAL, fake_logits=FAKE, real_label=0.9, gamma=2.0)
    np.testing.assert_allclose(got, real + fake, rtol=1e-6)


@pytest.mark.parametrize("real_label", [1.0, 0.9])
def test_focal_with_gamma_0_is_nonsaturating_exactly(real_label):
    logits = jnp.array([-200.0, -3.0, 0.0, LN3, 7.0, 200.0])
    fake = logits[::-1]
    assert (losses.focal_d_loss(real_logits=logits, fake_logits=fake, real_label=real_label,
                                gamma=0.0)
            == losses.nonsaturating_d_loss(real_logits=logits, fake_logits=fake,
                                           real_label=real_label))
    assert (losses.focal_g_loss(fake_logits=logits, gamma=0.0)
            == losses.nonsaturating_g_loss(fake_logits=logits))
    # and the gradients agree too, saturated logits included
    g_focal = jax.grad(lambda f: losses.focal_g_loss(fake_logits=f, gamma=0.0))(logits)
    g_ns = jax.grad(lambda f: losses.nonsaturating_g_loss(fake_logits=f))(logits)
    np.testing.assert_allclose(g_focal, g_ns, rtol=1e-6, atol=1e-30)


def test_classification_loss_by_hand():
    # uniform logits over K = 5 classes: -log(1/5) whatever the label
    uniform = jnp.zeros((2, 5))
    np.testing.assert_allclose(
        losses.classification_loss(class_logits=uniform, labels=jnp.array([0, 3])), math.log(5),
        rtol=1e-6)
    # logits [0, ln 3] give P = [1/4, 3/4]: labels 1 and 0 cost -log(3/4) and -log(1/4)
    logits = jnp.array([[0.0, LN3], [0.0, LN3]])
    expected = (math.log(4 / 3) + math.log(4)) / 2
    np.testing.assert_allclose(
        losses.classification_loss(class_logits=logits, labels=jnp.array([1, 0])), expected,
        rtol=1e-6)


def test_loss_names_and_registry():
    assert losses.LOSS_NAMES == ("minimax", "nonsaturating", "logistic", "hinge", "wasserstein",
                                 "least_squares", "focal")
    d_loss_fn, g_loss_fn = losses.get_losses("hinge")  # unpacks as the gan family's step does
    assert d_loss_fn is losses.hinge_d_loss and g_loss_fn is losses.hinge_g_loss


@pytest.mark.parametrize("name", losses.LOSS_NAMES)
def test_every_loss_is_finite_for_confident_logits(name):
    logits = jnp.array([-200.0, 200.0])
    options = {} if name in ("hinge", "wasserstein") else {"real_label": 0.9}
    for pair in (losses.get_losses(name), losses.get_losses(name, **options)):
        d = pair.d(real_logits=logits, fake_logits=logits[::-1])
        g = pair.g(fake_logits=logits)
        d_grads = jax.grad(lambda r, f: pair.d(real_logits=r, fake_logits=f),
                           argnums=(0, 1))(logits, logits[::-1])
        g_grad = jax.grad(lambda f: pair.g(fake_logits=f))(logits)
        for value in (d, g, g_grad, *d_grads):
            assert jnp.all(jnp.isfinite(value)), (name, value)


def test_focal_gradient_is_finite_for_small_gamma_and_saturated_logits():
    logits = jnp.array([-200.0, 200.0])
    for gamma in (0.0, 0.5):
        grads = jax.grad(lambda f: losses.focal_d_loss(real_logits=f, fake_logits=f,
                                                       gamma=gamma))(logits)
        assert jnp.all(jnp.isfinite(grads)), (gamma, grads)


def test_get_losses_binds_options():
    pair = losses.get_losses("minimax", real_label=0.9)
    assert (pair.d(real_logits=REAL, fake_logits=FAKE)
            == losses.minimax_d_loss(real_logits=REAL, fake_logits=FAKE, real_label=0.9))
    assert pair.d(real_logits=REAL, fake_logits=FAKE) != losses.minimax_d_loss(
        real_logits=REAL, fake_logits=FAKE)
    focal = losses.get_losses("focal", focal_gamma=0.0, real_label=0.9)
    assert (focal.d(real_logits=REAL, fake_logits=FAKE)
            == losses.nonsaturating_d_loss(real_logits=REAL, fake_logits=FAKE, real_label=0.9))
    assert focal.g(fake_logits=FAKE) == losses.nonsaturating_g_loss(fake_logits=FAKE)
    default = losses.get_losses("focal")
    assert (default.g(fake_logits=FAKE)
            == losses.focal_g_loss(fake_logits=FAKE, gamma=2.0))


@pytest.mark.parametrize("pair", list(losses.LOSSES.values()))
def test_every_loss_is_keyword_only(pair):
    with pytest.raises(TypeError):
        pair.d(REAL, FAKE)
    with pytest.raises(TypeError):
        pair.g(FAKE)


def test_get_losses_errors_name_the_fix():
    with pytest.raises(UserError, match=r"unknown loss 'hnige': choose one of \['minimax', "):
        losses.get_losses("hnige")
    for name in ("hinge", "wasserstein"):
        with pytest.raises(UserError, match="label smoothing applies to the probabilistic "
                                            r"losses \['minimax', 'nonsaturating', 'logistic', "):
            losses.get_losses(name, real_label=0.9)
    for label in (0.0, 1.5, -0.1):
        with pytest.raises(UserError, match=r"outside \(0, 1\]"):
            losses.get_losses("nonsaturating", real_label=label)
    with pytest.raises(UserError, match="focal_gamma -1.0 is negative"):
        losses.get_losses("focal", focal_gamma=-1.0)


# A linear critic f(x) = sum(w * x) + b over the non-batch axes: grad_x f = w for every x.
W3 = jnp.array([[1.0, 2.0], [2.0, 0.0]])[..., None]  # [2, 2, 1], |w| = sqrt(1 + 4 + 4) = 3
W1 = jnp.full((2, 2, 1), 0.5)  # |w| = sqrt(4 * 0.25) = 1


def _linear(w):
    return lambda x: jnp.sum(w * x, axis=(1, 2, 3)) + 0.25


def _images(key):
    k_real, k_fake = jax.random.split(key)
    return (jax.random.normal(k_real, (3, 2, 2, 1)), jax.random.normal(k_fake, (3, 2, 2, 1)))


def test_gradient_penalty_of_a_linear_critic():
    real, fake = _images(jax.random.key(0))
    gp = losses.gradient_penalty(_linear(W3), real=real, fake=fake, key=jax.random.key(1))
    np.testing.assert_allclose(gp, 10.0 * (3 - 1) ** 2, rtol=1e-6)
    gp_other_key = losses.gradient_penalty(_linear(W3), real=real, fake=fake,
                                           key=jax.random.key(2), weight=2.5)
    np.testing.assert_allclose(gp_other_key, 2.5 * (3 - 1) ** 2, rtol=1e-6)
    unit = losses.gradient_penalty(_linear(W1), real=real, fake=fake, key=jax.random.key(1))
    np.testing.assert_allclose(unit, 0.0, atol=1e-10)


def test_gradient_penalty_norm_is_per_example():
    # f(x) = 0.5 * |x|^2 per example has grad_x f = x, so the penalty is mean (|x_hat_i| - 1)^2.
    real, fake = _images(jax.random.key(0))
    key = jax.random.key(1)
    x_hat = losses.interpolates(real=real, fake=fake, key=key)
    norms = jnp.sqrt(jnp.sum(x_hat**2, axis=(1, 2, 3)))
    gp = losses.gradient_penalty(lambda x: 0.5 * jnp.sum(x**2, axis=(1, 2, 3)), real=real,
                                 fake=fake, key=key)
    np.testing.assert_allclose(gp, 10.0 * jnp.mean((norms - 1) ** 2), rtol=1e-5)


def test_gradient_penalty_on_pairs_takes_the_norm_over_x_and_z_jointly():
    # BiGAN's f(x, z) = <a, x> + <b, z> has |grad| = sqrt(|a|^2 + |b|^2) = sqrt(4 + 9) everywhere.
    x_real, x_fake = jnp.zeros((4, 2, 2, 1)), jnp.ones((4, 2, 2, 1))
    z_real, z_fake = jnp.zeros((4, 3)), jnp.ones((4, 3))
    a = jnp.full((2, 2, 1), 1.0)  # |a|^2 = 4
    b = jnp.array([2.0, 2.0, 1.0])  # |b|^2 = 9

    def critic(pair):
        x, z = pair
        return jnp.sum(x * a, axis=(1, 2, 3)) + z @ b

    gp = losses.gradient_penalty(critic, real=(x_real, z_real), fake=(x_fake, z_fake),
                                 key=jax.random.key(0), weight=2.0)
    np.testing.assert_allclose(gp, 2.0 * (math.sqrt(13.0) - 1) ** 2, rtol=1e-6)
    # One eps per example, shared by its x and its z.
    x_hat, z_hat = losses.interpolates(real=(x_real, z_real), fake=(x_fake, z_fake),
                                       key=jax.random.key(0))
    np.testing.assert_array_equal(x_hat[:, 0, 0, 0], z_hat[:, 0])
    with pytest.raises(ValueError, match="same shape"):
        losses.interpolates(real=(x_real, z_real), fake=(x_fake, z_fake[:, :2]),
                            key=jax.random.key(0))


def test_gradient_penalty_gradient_is_finite_for_a_flat_critic():
    real, fake = _images(jax.random.key(0))

    def penalty(w):
        return losses.gradient_penalty(_linear(w), real=real, fake=fake, key=jax.random.key(1))

    zero = jnp.zeros_like(W3)
    # the 1e-12 under the square root is the whole norm here: |grad| = sqrt(0 + 1e-12)
    np.testing.assert_allclose(penalty(zero), 10.0 * (math.sqrt(1e-12) - 1) ** 2, rtol=1e-6)
    assert jnp.all(jnp.isfinite(jax.grad(penalty)(zero)))
    # d/dw 10 (|w| - 1)^2 = 20 (|w| - 1) w / |w| = 20 * 2 * w / 3 at |w| = 3
    np.testing.assert_allclose(jax.grad(penalty)(W3), 20 * 2 * W3 / 3, rtol=1e-5)


def test_r1_and_r2_of_a_linear_discriminator():
    real, fake = _images(jax.random.key(0))
    np.testing.assert_allclose(losses.r1_penalty(_linear(W3), real=real, gamma=10.0),
                               10.0 / 2 * 3**2, rtol=1e-6)
    np.testing.assert_allclose(losses.r2_penalty(_linear(W3), fake=fake, gamma=0.1),
                               0.1 / 2 * 3**2, rtol=1e-6)


def test_r1_and_r2_see_their_own_images():
    # D(x) = 0.5 * |x|^2 has grad_x D = x: R1 = gamma/2 * mean |x_i|^2 on reals, R2 on fakes.
    def d(x):
        return 0.5 * jnp.sum(x**2, axis=1)

    real = jnp.array([[3.0, 4.0], [0.0, 1.0]])  # |x|^2 = 25, 1
    fake = jnp.array([[1.0, 1.0], [2.0, 0.0]])  # |x|^2 = 2, 4
    np.testing.assert_allclose(losses.r1_penalty(d, real=real, gamma=2.0), 2.0 / 2 * (25 + 1) / 2,
                               rtol=1e-6)
    np.testing.assert_allclose(losses.r2_penalty(d, fake=fake, gamma=2.0), 2.0 / 2 * (2 + 4) / 2,
                               rtol=1e-6)


def test_interpolates_lie_on_the_segment_with_one_eps_per_example():
    k_real, k_fake = jax.random.split(jax.random.key(0))
    shape = (64, 3, 3, 2)
    real = 1.0 + jax.random.uniform(k_real, shape)  # real - fake >= 2 everywhere
    fake = -1.0 - jax.random.uniform(k_fake, shape)
    x_hat = losses.interpolates(real=real, fake=fake, key=jax.random.key(1))
    assert x_hat.shape == shape
    eps = np.asarray((x_hat - fake) / (real - fake)).reshape(64, -1)
    np.testing.assert_allclose(eps, eps[:, :1] * np.ones_like(eps), atol=1e-6)
    assert eps.min() >= -1e-6 and eps.max() <= 1 + 1e-6
    assert eps[:, 0].std() > 0.1  # each example draws its own eps
    again = losses.interpolates(real=real, fake=fake, key=jax.random.key(1))
    other = losses.interpolates(real=real, fake=fake, key=jax.random.key(2))
    assert jnp.array_equal(x_hat, again) and not jnp.allclose(x_hat, other)


def test_interpolates_refuse_mismatched_shapes():
    with pytest.raises(ValueError, match="must have the same shape"):
        losses.interpolates(real=jnp.zeros((2, 3)), fake=jnp.zeros((2, 4)), key=jax.random.key(0))


def test_regularizers_are_keyword_only():
    real, fake = _images(jax.random.key(0))
    with pytest.raises(TypeError):
        losses.gradient_penalty(_linear(W3), real, fake, jax.random.key(1))
    with pytest.raises(TypeError):
        losses.r1_penalty(_linear(W3), real, 10.0)
    with pytest.raises(TypeError):
        losses.interpolates(real, fake, jax.random.key(1))


def test_per_sample_encoder_regularizer_by_hand_and_unlike_the_batch_form():
    codes = jnp.array([[0.0, 0.0], [1.0, 2.0], [2.0, 1.0]])
    # Pair MSEs: (0,1) (1 + 4) / 2, (0,2) (4 + 1) / 2, (1,2) (1 + 1) / 2, so each code's mean
    # to the others is s = (5/2, 7/4, 7/4); the batch form takes tanh of their mean, 2.
    per_sample = -1.5 * (math.tanh(5 / 2) + 2 * math.tanh(7 / 4)) / 3
    batch = -1.5 * math.tanh(2.0)
    np.testing.assert_allclose(losses.per_sample_spread_penalty(codes, weight=1.5), per_sample,
                               rtol=1e-6)
    np.testing.assert_allclose(losses.latent_spread_penalty(codes, weight=1.5), batch, rtol=1e-6)
    assert abs(per_sample - batch) > 0.01
    # Unbiased variance of a code (a, b) is (a - b)^2 / 2: v = (0, 1/2, 1/2), and
    # mean (v - 1)^2 = (1 + 1/4 + 1/4) / 3 = 1/2. Each dimension's batch variance is 1: no penalty.
    np.testing.assert_allclose(
        losses.per_sample_variance_penalty(codes, multiplier=2.0, tolerance=0.25),
        2.0 * (1 / 2 - 1 / 4), rtol=1e-6)
    assert float(losses.latent_variance_penalty(codes, multiplier=2.0, tolerance=0.25)) == 0.0
    for tolerance in (0.5, 0.75):  # the floor at 0
        assert float(losses.per_sample_variance_penalty(codes, multiplier=2.0,
                                                        tolerance=tolerance)) == 0.0


def test_per_sample_encoder_regularizer_on_three_dimensions_by_hand():
    codes = jnp.array([[0.0, 1.0, 2.0], [0.0, 0.0, 3.0], [1.0, 1.0, 1.0]])
    # Pair MSEs: (0,1) (0 + 1 + 1) / 3, (0,2) (1 + 0 + 1) / 3, (1,2) (1 + 1 + 4) / 3 = 2/3, 2/3, 2:
    # s = (2/3, 4/3, 4/3) against the batch's 10/9.
    np.testing.assert_allclose(losses.per_sample_spread_penalty(codes, weight=1.0),
                               -(math.tanh(2 / 3) + 2 * math.tanh(4 / 3)) / 3, rtol=1e-6)
    np.testing.assert_allclose(losses.latent_spread_penalty(codes, weight=1.0),
                               -math.tanh(10 / 9), rtol=1e-6)
    # Unbiased per-code variances 2/2, 6/2, 0/2 = (1, 3, 0): mean (v - 1)^2 = (0 + 4 + 1) / 3
    # (ddof=0 would give (2/3, 2, 0) and 19/27). The batch's per-dimension variances are
    # (1/3, 1/3, 1): mean (var - 1)^2 = 8/27, under the tolerance 2/3, so it is floored to 0.
    np.testing.assert_allclose(
        losses.per_sample_variance_penalty(codes, multiplier=3.0, tolerance=2 / 3),
        3.0 * (5 / 3 - 2 / 3), rtol=1e-6)
    assert float(losses.latent_variance_penalty(codes, multiplier=3.0, tolerance=2 / 3)) == 0.0


def test_per_sample_spread_matches_its_definition_pair_by_pair():
    codes = np.asarray(jax.random.normal(jax.random.key(0), (5, 4)), np.float64)
    # The O(B^2 K) definition, against the O(B K) identity the function uses.
    s = [np.mean([np.mean((codes[i] - codes[j]) ** 2) for j in range(5) if j != i])
         for i in range(5)]
    np.testing.assert_allclose(losses.per_sample_spread_penalty(jnp.asarray(codes), weight=2.0),
                               -2.0 * np.mean(np.tanh(s)), rtol=1e-5)
    np.testing.assert_allclose(np.mean(s), losses.pairwise_mse(jnp.asarray(codes)), rtol=1e-5)


def test_per_sample_regularizers_are_keyword_only():
    codes = jnp.zeros((3, 2))
    with pytest.raises(TypeError):
        losses.per_sample_spread_penalty(codes, 1.5)
    with pytest.raises(TypeError):
        losses.per_sample_variance_penalty(codes, 1.0, 0.0)


def test_l1_losses_by_hand():
    prediction = jnp.array([[1.0, -2.0], [0.5, 3.0]])
    target = jnp.array([[0.0, 0.0], [1.0, 1.0]])
    # |1 - 0| + |-2 - 0| + |0.5 - 1| + |3 - 1| = 1 + 2 + 0.5 + 2 = 5.5 over 4 elements
    np.testing.assert_allclose(losses.l1_loss(prediction=prediction, target=target), 5.5 / 4,
                               rtol=1e-6)
    np.testing.assert_allclose(
        losses.cycle_consistency_loss(real=target, reconstructed=prediction), 5.5 / 4, rtol=1e-6)
    np.testing.assert_allclose(losses.identity_loss(real=target, mapped=prediction), 5.5 / 4,
                               rtol=1e-6)
    assert float(losses.cycle_consistency_loss(real=target, reconstructed=target)) == 0.0
    with pytest.raises(TypeError):
        losses.l1_loss(prediction, target)


# A PatchGAN's [B, h, w, 1] logits: two 2x2 maps. Every criterion is a mean over all 8 elements.
LSQ_REAL = jnp.array([1.0, 0.0, 2.0, 1.0, 1.0, 0.0, 2.0, 1.0]).reshape(2, 2, 2, 1)
LSQ_FAKE = jnp.array([0.0, 1.0, -1.0, 2.0, 0.0, 1.0, -1.0, 2.0]).reshape(2, 2, 2, 1)
PATCH_REAL = jnp.array([0.0, LN3, LN3, 0.0, 0.0, 0.0, LN3, LN3]).reshape(2, 2, 2, 1)
PATCH_FAKE = jnp.array([0.0, -LN3, 0.0, -LN3, -LN3, 0.0, -LN3, 0.0]).reshape(2, 2, 2, 1)
PATCH_BY_HAND = {
    # real against 1: 0, 1, 1, 0 (twice), mean 1/2; fake against 0: 0, 1, 1, 4, mean 3/2;
    # D = 0.5 * (1/2 + 3/2) = 1; G, fake against 1: 1, 0, 4, 1, mean 3/2 (no 0.5).
    "least_squares": (1.0, 1.5),
    # real D(x) = 1/2, 3/4 half each: mean softplus(-l) = (ln 2 + ln 4/3) / 2; fake D = 1/2, 1/4:
    # mean softplus(l) the same; D halves their sum. G: softplus(-l) = ln 2, ln 4, mean of both.
    "nonsaturating": ((LN2 + LN4_3) / 2, (LN2 + LN4) / 2),
    # gamma 2: real weights (1 - p)^2 = 1/4, 1/16; fake p^2 = 1/4, 1/16; G (1 - p)^2 = 1/4, 9/16.
    "focal": ((0.25 * LN2 + 0.0625 * LN4_3) / 2, (0.25 * LN2 + 0.5625 * LN4) / 2),
}


@pytest.mark.parametrize("name", losses.PATCH_LOSS_NAMES)
def test_patch_losses_by_hand_on_patch_maps(name):
    assert set(PATCH_BY_HAND) == set(losses.PATCH_LOSS_NAMES)
    real, fake = (LSQ_REAL, LSQ_FAKE) if name == "least_squares" else (PATCH_REAL, PATCH_FAKE)
    pair = losses.patch_losses(name)
    expected_d, expected_g = PATCH_BY_HAND[name]
    np.testing.assert_allclose(pair.d(real_logits=real, fake_logits=fake), expected_d, rtol=1e-6)
    np.testing.assert_allclose(pair.g(fake_logits=fake), expected_g, rtol=1e-6)
    # The same elements in any shape give the same means.
    np.testing.assert_allclose(pair.d(real_logits=real.reshape(-1), fake_logits=fake[:, ::-1]),
                               expected_d, rtol=1e-6)


def test_patch_losses_against_the_batch_losses():
    real, fake = LSQ_REAL.reshape(-1), LSQ_FAKE.reshape(-1)
    least_squares = losses.patch_losses("least_squares")
    # D is LSGAN's as it stands; G has no 0.5, so it is twice least_squares_g_loss.
    np.testing.assert_allclose(least_squares.d(real_logits=real, fake_logits=fake),
                               losses.least_squares_d_loss(real_logits=real, fake_logits=fake),
                               rtol=1e-6)
    np.testing.assert_allclose(least_squares.g(fake_logits=fake),
                               2 * losses.least_squares_g_loss(fake_logits=fake), rtol=1e-6)
    real, fake = PATCH_REAL.reshape(-1), PATCH_FAKE.reshape(-1)
    vanilla = losses.patch_losses("nonsaturating")
    np.testing.assert_allclose(vanilla.d(real_logits=real, fake_logits=fake),
                               0.5 * losses.nonsaturating_d_loss(real_logits=real,
                                                                 fake_logits=fake), rtol=1e-6)
    focal_0 = losses.patch_losses("focal", focal_gamma=0.0)
    np.testing.assert_allclose(focal_0.g(fake_logits=fake), vanilla.g(fake_logits=fake),
                               rtol=1e-6)


def test_patch_losses_refuse_unknown_names_and_negative_gamma():
    with pytest.raises(UserError, match=r"choose one of \['least_squares', 'nonsaturating', "):
        losses.patch_losses("hinge")
    with pytest.raises(UserError, match="focal_gamma -1.0 is not >= 0"):
        losses.patch_losses("focal", focal_gamma=-1.0)
