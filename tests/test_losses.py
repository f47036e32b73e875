import math

import jax.numpy as jnp
import numpy as np
import pytest

from jgan import losses

LN3 = math.log(3.0)
REAL = jnp.array([0.0, LN3])  # D(x) = 1/2, 3/4
FAKE = jnp.array([0.0, -LN3])  # D(G(z)) = 1/2, 1/4


def test_d_loss_by_hand():
    # -log(1/2) - log(3/4) averaged over real, -log(1 - 1/2) - log(1 - 1/4) over fake
    expected = (math.log(2) + math.log(4 / 3)) / 2 * 2
    got = losses.nonsaturating_d_loss(real_logits=REAL, fake_logits=FAKE)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert losses.minimax_d_loss(real_logits=REAL, fake_logits=FAKE) == got


def test_nonsaturating_g_loss_by_hand():
    # -log D(G(z)) = -log(1/2), -log(1/4)
    expected = (math.log(2) + math.log(4)) / 2
    np.testing.assert_allclose(losses.nonsaturating_g_loss(fake_logits=FAKE), expected, rtol=1e-6)


def test_minimax_g_loss_by_hand():
    # log(1 - D(G(z))) = log(1/2), log(3/4)
    expected = (math.log(1 / 2) + math.log(3 / 4)) / 2
    np.testing.assert_allclose(losses.minimax_g_loss(fake_logits=FAKE), expected, rtol=1e-6)


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
