"""PyTorch twins of jgan's DCGAN, WGAN-GP and BiGAN training steps, free of jax.

Each twin is layer for layer the jgan networks (`jgan/families/gan/dcgan.py`, `jgan/families/bigan/networks.py`:
same widths, biases, BatchNorm placement and momentum, N(0, 0.02) init) and does the same work per
step as the jgan step (`jgan/families/gan/step.py`, `jgan/families/bigan/step.py`), down to which
gradients are taken: where jgan differentiates a loss with respect to D's input only (G's
update), the twin freezes D's parameters so that autograd skips their gradients too. Images
arrive as uint8 NCHW and are scaled to [-1, 1] inside the step, as jgan's are.

- DCGAN (Radford et al. 2016): G once per step; D's Adam step on real, then on the fakes; G's
  Adam step on the non-saturating loss of the same fakes against the updated D.
- WGAN-GP (Gulrajani et al. 2017, Algorithm 1): a critic without BatchNorm; n_critic critic
  updates, each on its own real batch and fresh fakes (G in training mode, not differentiated),
  loss mean f(fake) - mean f(real) + lambda * (||grad f(x_hat)|| - 1)^2 at random interpolates,
  the gradient by `torch.autograd.grad(create_graph=True)` (double backward); then G's update on
  fresh z. Adam(1e-4, betas 0 and 0.9) on both.
- BiGAN (Donahue et al. 2017), the paper's MNIST MLPs: G(z) and E(x) once; D(x, z)'s Adam step on
  (x, E(x)) as real and (G(z), z) as fake; then E and G's Adam steps on the flipped labels
  against the updated D.

`config` is a jgan Config or the same fields as attributes (vs_pytorch.py passes it as JSON).
"""

from __future__ import annotations

import contextlib

Z_DIM, FEATURES = 100, 64  # experiments.dcgan's z and width, which the DCGAN twin defaults to


def init_dcgan_weights(torch, *nets) -> None:
    """jgan's DCGAN init: weights N(0, 0.02), biases 0, BatchNorm scales N(1, 0.02)."""
    tnn = torch.nn
    for net in nets:
        for module in net.modules():
            if isinstance(module, (tnn.Linear, tnn.Conv2d, tnn.ConvTranspose2d)):
                tnn.init.normal_(module.weight, 0.0, 0.02)
                if module.bias is not None:
                    tnn.init.zeros_(module.bias)
            elif isinstance(module, (tnn.BatchNorm1d, tnn.BatchNorm2d)):
                tnn.init.normal_(module.weight, 1.0, 0.02)
                tnn.init.zeros_(module.bias)


def torch_dcgan(torch, *, z_dim: int = Z_DIM, features: int = FEATURES, d_norm: str = "batch"):
    """G and D of `jgan/families/gan/dcgan.py` for 28x28x1 (NCHW), with the DCGAN init. d_norm "none"
    is WGAN-GP's critic: its second convolution then has a bias, as jgan's has."""
    tnn = torch.nn
    start = 7 * 7 * 2 * features
    g = tnn.Sequential(
        tnn.Linear(z_dim, start, bias=False), tnn.BatchNorm1d(start), tnn.ReLU(),
        tnn.Unflatten(1, (2 * features, 7, 7)),
        tnn.ConvTranspose2d(2 * features, features, 4, 2, 1, bias=False),
        tnn.BatchNorm2d(features), tnn.ReLU(),
        tnn.ConvTranspose2d(features, 1, 4, 2, 1), tnn.Tanh())
    normalized = d_norm == "batch"
    d = tnn.Sequential(
        tnn.Conv2d(1, features, 4, 2, 1), tnn.LeakyReLU(0.2),
        tnn.Conv2d(features, 2 * features, 4, 2, 1, bias=not normalized),
        *([tnn.BatchNorm2d(2 * features)] if normalized else []),
        tnn.LeakyReLU(0.2), tnn.Flatten(), tnn.Linear(2 * features * 7 * 7, 1))
    init_dcgan_weights(torch, g, d)
    return g, d


def torch_bigan_mlp(torch, *, z_dim: int, hidden: int, pixels: int):
    """G, E and the joint D of `jgan/families/bigan/networks.py`'s mlp arch (BatchNorm from the second
    layer of G, E and D's x pathway; D's z pathway and joint layer without)."""
    tnn = torch.nn

    def x_trunk():
        return [tnn.Flatten(), tnn.Linear(pixels, hidden), tnn.LeakyReLU(0.2),
                tnn.Linear(hidden, hidden, bias=False), tnn.BatchNorm1d(hidden),
                tnn.LeakyReLU(0.2)]

    class JointDiscriminator(tnn.Module):
        def __init__(self):
            super().__init__()
            self.f_x = tnn.Sequential(*x_trunk())
            self.h_z = tnn.Sequential(tnn.Linear(z_dim, hidden), tnn.LeakyReLU(0.2),
                                      tnn.Linear(hidden, hidden), tnn.LeakyReLU(0.2))
            self.joint = tnn.Sequential(tnn.Linear(2 * hidden, hidden), tnn.LeakyReLU(0.2),
                                        tnn.Linear(hidden, 1))

        def forward(self, x, z):
            return self.joint(torch.cat([self.f_x(x), self.h_z(z)], 1))[:, 0]

    side = int(round(pixels ** 0.5))
    g = tnn.Sequential(tnn.Linear(z_dim, hidden), tnn.ReLU(),
                       tnn.Linear(hidden, hidden, bias=False), tnn.BatchNorm1d(hidden),
                       tnn.ReLU(), tnn.Linear(hidden, pixels), tnn.Tanh(),
                       tnn.Unflatten(1, (1, side, side)))
    e = tnn.Sequential(*x_trunk(), tnn.Linear(hidden, z_dim))
    d = JointDiscriminator()
    init_dcgan_weights(torch, g, e, d)
    return g, e, d


def torch_networks(torch, family: str, config) -> dict:
    """The twins of `config`'s networks under jgan's state names."""
    model = config.model
    if family == "bigan":
        g, e, d = torch_bigan_mlp(torch, z_dim=model.z_dim, hidden=model.hidden, pixels=28 * 28)
        return {"g": g, "e": e, "d": d}
    g, d = torch_dcgan(torch, z_dim=model.z_dim, features=model.base_features,
                       d_norm=model.d_norm)
    return {"g": g, "d": d}


def to_float(images):
    """uint8 [0, 255] -> float32 [-1, 1], as `jgan.train.step_parts.images_to_float`."""
    return images.float() / 127.5 - 1.0


@contextlib.contextmanager
def frozen(net):
    """Autograd takes no gradients of `net`'s parameters inside (D during G's update)."""
    for p in net.parameters():
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in net.parameters():
            p.requires_grad_(True)


def adam(torch, net, lr: float, optim_cfg):
    return torch.optim.Adam(net.parameters(), lr=lr, betas=(optim_cfg.b1, optim_cfg.b2))


def make_dcgan_step(torch, config, nets: dict, device: str):
    """DCGAN's step (gan_step with n_critic 1) on a batch {"image": [B, 1, 28, 28] uint8}."""
    g, d, optim_cfg, z_dim = nets["g"], nets["d"], config.optim, config.model.z_dim
    opt_g, opt_d = adam(torch, g, optim_cfg.g_lr, optim_cfg), adam(torch, d, optim_cfg.d_lr,
                                                                    optim_cfg)
    bce = torch.nn.BCEWithLogitsLoss()

    def step(batch):
        real = to_float(batch["image"])
        rows = real.shape[0]
        ones = torch.ones(rows, device=device)
        fake = g(torch.randn(rows, z_dim, device=device))
        opt_d.zero_grad()
        loss_d = bce(d(real)[:, 0], ones) + bce(d(fake.detach())[:, 0], torch.zeros_like(ones))
        loss_d.backward()
        opt_d.step()
        opt_g.zero_grad()
        with frozen(d):
            loss_g = bce(d(fake)[:, 0], ones)
            loss_g.backward()
        opt_g.step()

    return step


def make_wgan_gp_step(torch, config, nets: dict, device: str):
    """WGAN-GP's step: n_critic critic updates, each on its own `batch_size` rows of the batch
    {"image": [n_critic * B, 1, 28, 28] uint8}, then one G update."""
    g, d, optim_cfg = nets["g"], nets["d"], config.optim
    z_dim, n_critic, gp_weight = config.model.z_dim, config.train.n_critic, config.loss.gp_weight
    opt_g, opt_d = adam(torch, g, optim_cfg.g_lr, optim_cfg), adam(torch, d, optim_cfg.d_lr,
                                                                    optim_cfg)

    def gradient_penalty(real, fake):
        eps = torch.rand(real.shape[0], 1, 1, 1, device=device)
        x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(d(x_hat).sum(), x_hat, create_graph=True)
        norms = torch.sqrt(grad.pow(2).sum((1, 2, 3)) + 1e-12)
        return gp_weight * ((norms - 1.0) ** 2).mean()

    def step(batch):
        images = batch["image"]
        rows = images.shape[0] // n_critic
        for chunk in range(n_critic):
            # Rows chunk, chunk + n_critic, ...: gan_step's interleaved split of the batch.
            real = to_float(images[chunk::n_critic])
            with torch.no_grad():
                fake = g(torch.randn(rows, z_dim, device=device))
            opt_d.zero_grad()
            loss_d = d(fake).mean() - d(real).mean() + gradient_penalty(real, fake)
            loss_d.backward()
            opt_d.step()
        opt_g.zero_grad()
        fake = g(torch.randn(rows, z_dim, device=device))
        with frozen(d):
            loss_g = -d(fake).mean()
            loss_g.backward()
        opt_g.step()

    return step


def make_bigan_step(torch, config, nets: dict, device: str):
    """BiGAN's step on a batch {"image": [B, 1, 28, 28] uint8}: D, then E and G jointly."""
    g, e, d, optim_cfg = nets["g"], nets["e"], nets["d"], config.optim
    opt_g, opt_e = adam(torch, g, optim_cfg.g_lr, optim_cfg), adam(torch, e, optim_cfg.g_lr,
                                                                    optim_cfg)
    opt_d = adam(torch, d, optim_cfg.d_lr, optim_cfg)
    bce = torch.nn.BCEWithLogitsLoss()

    def step(batch):
        real = to_float(batch["image"])
        rows = real.shape[0]
        ones, zeros = torch.ones(rows, device=device), torch.zeros(rows, device=device)
        z = torch.randn(rows, config.model.z_dim, device=device)
        fake, codes = g(z), e(real)
        opt_d.zero_grad()
        loss_d = bce(d(real, codes.detach()), ones) + bce(d(fake.detach(), z), zeros)
        loss_d.backward()
        opt_d.step()
        opt_g.zero_grad()
        opt_e.zero_grad()
        with frozen(d):
            # G wants its pairs called real, E its pairs called fake: the labels flipped.
            loss_eg = bce(d(fake, z), ones) + bce(d(real, codes), zeros)
            loss_eg.backward()
        opt_g.step()
        opt_e.step()

    return step


STEPS = {"dcgan": make_dcgan_step, "wgan_gp": make_wgan_gp_step, "bigan": make_bigan_step}
