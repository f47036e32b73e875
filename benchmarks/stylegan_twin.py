"""The PyTorch twin of jgan's StyleGAN step (`jgan/families/stylegan/networks.py`,
`jgan/families/stylegan/step.py`), free of jax, for the default config (`brain_config`).

G (Karras et al. 2019, Sec. 2 and Fig. 1b): a mapping network (pixel norm, then leaky-ReLU dense
layers at lr multiplier 0.01) from z to w; synthesis from a learned constant 4x4, where every
layer does [bilinear 2x upsampling, 3x3 conv,] per-pixel noise scaled per channel (Sec. 3.2),
bias, leaky ReLU 0.2 and AdaIN (Eq. 1) with the style A(w) = dense(2C, gain 1), scale 1 + style;
toRGB at the last resolution only (not progressive). D: fromRGB 1x1, StyleGAN2's residual blocks
(Karras et al. 2020, Fig. 7c: conv, blur [1, 2, 1], conv, 2x average pool, a 1x1 skip of the
pooled input, the sum over sqrt 2), ProGAN's minibatch stddev (Karras et al. 2018, Sec. 3), a
3x3 conv, a dense layer and the output. Every weight has the equalized learning rate (ProGAN
Sec. 4.1): stored N(0, 1) / lr_multiplier, scaled at run time by gain / sqrt(fan_in) *
lr_multiplier; biases start at 0, the constant at `const_init`.

One step, as `make_stylegan_train_step`: z, a second z and per-example crossovers (style mixing
with `style_mixing`, Sec. 3.1); G once, with its graph kept; D's Adam step on the softplus
non-saturating loss of real and detached fakes plus R1 (Mescheder et al. 2018, Eq. 9) on every
reg_interval-th real image by double backward; G's Adam step on the same fakes' graph through
the updated D; the tracked mean w and G's EMA.

Differences from jgan, none of which changes the work per step: the random streams (z, mixing,
the noise maps) are PyTorch's, not jax's keyed ones; D flattens its 4x4 features channel-first
(NCHW) before the dense layer, jgan channel-last, so that layer's weight rows are permuted; the
images are scaled to [-1, 1] as the benchmark's jgan row does (its synthetic data spec records no
`data.center` mean). Only the default layout is written: bilinear upsampling, no growing.
"""

from __future__ import annotations

import math

from biggan_twin import ema_decay  # noqa: E402  (benchmarks/ is the script's folder)
from gan_twins import adam, frozen, to_float  # noqa: E402

SQRT2 = math.sqrt(2.0)
LRELU_SLOPE = 0.2  # every hidden activation in StyleGAN is leaky ReLU(0.2)


def level_channels(resolution: int, base_features: int, max_features: int) -> tuple[int, ...]:
    """Channels at 4x4, 8x8, ..., resolution (`jgan.families.stylegan.networks.level_channels`):
    `base_features` at the full resolution, doubling at every halving up to `max_features`."""
    levels = int(math.log2(resolution)) - 1
    return tuple(min(max_features, base_features * resolution // 2 ** (level + 2))
                 for level in range(levels))


def check_layout(model) -> None:
    """Refuse a config whose layout the twin does not write."""
    if model.upsample != "bilinear" or model.progressive:
        raise ValueError(f"the StyleGAN twin writes bilinear upsampling without growing, not "
                         f"upsample={model.upsample!r}, progressive={model.progressive}")


def pixel_norm(z, eps: float = 1e-8):
    """z / RMS(z) per example (ProGAN Sec. 4.2)."""
    return z * (z.square().mean(-1, keepdim=True) + eps).rsqrt()


def instance_norm(x, eps: float = 1e-8):
    """Each example's channels of x [B, C, H, W] to zero mean and unit variance over H and W."""
    x = x - x.mean((2, 3), keepdim=True)
    return x * (x.square().mean((2, 3), keepdim=True) + eps).rsqrt()


def blur(torch, x):
    """The [1, 2, 1] binomial filter in both directions, per channel, zero-padded (jgan's
    `blur`)."""
    taps = torch.tensor([1.0, 2.0, 1.0], dtype=x.dtype, device=x.device)
    kernel = (torch.outer(taps, taps) / 16.0).expand(x.shape[1], 1, 3, 3)
    return torch.nn.functional.conv2d(x, kernel, padding=1, groups=x.shape[1])


def minibatch_stddev(torch, x, group_size: int):
    """One more feature map: the mean over features of the standard deviation across each group
    (ProGAN Sec. 3); examples i, i + B/G, ... form a group, as in jgan and the reference."""
    b, c, h, w = x.shape
    group = min(group_size, b)
    y = (x.reshape(group, b // group, c, h, w).var(0, correction=0) + 1e-8).sqrt()
    y = y.mean((1, 2, 3)).repeat(group)  # example i gets its group's value
    return torch.cat([x, y.view(b, 1, 1, 1).expand(b, 1, h, w)], 1)


def torch_stylegan(torch, config) -> dict:
    """`{"g": G, "d": D}` as `jgan.families.stylegan.build` makes them for `config`."""
    tnn, functional = torch.nn, torch.nn.functional
    model, data = config.model, config.data
    check_layout(model)
    channels = level_channels(data.image_size, model.base_features, model.max_features)

    def lrelu(x):
        return functional.leaky_relu(x, LRELU_SLOPE)

    class EqualizedDense(tnn.Module):
        def __init__(self, inputs: int, outputs: int, gain: float = SQRT2,
                     lr_multiplier: float = 1.0, bias: bool = True):
            super().__init__()
            self.weight = tnn.Parameter(torch.randn(outputs, inputs) / lr_multiplier)
            self.bias = tnn.Parameter(torch.zeros(outputs)) if bias else None
            self.scale = gain / math.sqrt(inputs) * lr_multiplier
            self.lr_multiplier = lr_multiplier

        def forward(self, x):
            bias = None if self.bias is None else self.bias * self.lr_multiplier
            return functional.linear(x, self.weight * self.scale, bias)

    class EqualizedConv(tnn.Module):
        def __init__(self, inputs: int, outputs: int, size: int = 3, gain: float = SQRT2,
                     bias: bool = True):
            super().__init__()
            self.weight = tnn.Parameter(torch.randn(outputs, inputs, size, size))
            self.bias = tnn.Parameter(torch.zeros(outputs)) if bias else None
            self.scale = gain / math.sqrt(inputs * size * size)

        def forward(self, x):
            return functional.conv2d(x, self.weight * self.scale, self.bias,
                                     padding=self.weight.shape[-1] // 2)

    class NoiseInput(tnn.Module):
        """One N(0, 1) map per example, shared by the channels, times a per-channel strength."""

        def __init__(self, features: int):
            super().__init__()
            self.strength = tnn.Parameter(torch.zeros(features))

        def forward(self, x):
            b, _, h, w = x.shape
            noise = torch.randn(b, 1, h, w, dtype=x.dtype, device=x.device)
            return x + noise * self.strength.view(1, -1, 1, 1)

    class StyleLayer(tnn.Module):
        """[bilinear 2x upsampling, 3x3 conv,] noise, bias, leaky ReLU, AdaIN with A(w)."""

        def __init__(self, inputs: int, features: int, conv: bool, upsample: bool):
            super().__init__()
            self.conv = EqualizedConv(inputs, features, bias=False) if conv else None
            self.upsample = upsample
            self.noise = NoiseInput(features)
            self.bias = tnn.Parameter(torch.zeros(features))
            self.style = EqualizedDense(model.w_dim, 2 * features, gain=1.0)

        def forward(self, x, w):
            if self.upsample:
                x = functional.interpolate(x, scale_factor=2, mode="bilinear",
                                           align_corners=False)
            if self.conv is not None:
                x = self.conv(x)
            x = lrelu(self.noise(x) + self.bias.view(1, -1, 1, 1))
            scale, shift = self.style(w)[:, :, None, None].chunk(2, 1)
            return instance_norm(x) * (1.0 + scale) + shift

    class Generator(tnn.Module):
        def __init__(self):
            super().__init__()
            self.mapping = tnn.ModuleList(
                EqualizedDense(model.z_dim if index == 0 else model.w_dim, model.w_dim,
                               lr_multiplier=model.mapping_lr_multiplier)
                for index in range(model.mapping_layers))
            self.const = tnn.Parameter(torch.full((channels[0], 4, 4), model.const_init))
            layers = []
            for level, features in enumerate(channels):
                inputs = channels[max(level - 1, 0)]
                layers += [StyleLayer(inputs, features, conv=level > 0, upsample=level > 0),
                           StyleLayer(features, features, conv=True, upsample=False)]
            self.layers = tnn.ModuleList(layers)
            self.to_rgb = EqualizedConv(channels[-1], data.channels, 1, gain=1.0)

        def map(self, z):
            x = pixel_norm(z)
            for layer in self.mapping:
                x = lrelu(layer(x))
            return x

        def forward(self, z, z2, crossover):
            """`(images, w of z)`: the layers before each example's `crossover` take w of z,
            the rest w of z2 (`jgan.families.stylegan.step.generate`). One forward, so that
            torch.compile sees mapping and synthesis together."""
            w = self.map(z)
            before = torch.arange(len(self.layers), device=z.device) < crossover[:, None]
            ws = torch.where(before[..., None], w[:, None], self.map(z2)[:, None])
            x = self.const.expand(z.shape[0], -1, -1, -1)
            for index, layer in enumerate(self.layers):
                x = layer(x, ws[:, index])
            return self.to_rgb(x), w

    class DiscriminatorBlock(tnn.Module):
        def __init__(self, features: int, outputs: int):
            super().__init__()
            self.conv1, self.conv2 = EqualizedConv(features, features), EqualizedConv(
                features, outputs)
            self.skip = (EqualizedConv(features, outputs, 1, gain=1.0, bias=False)
                         if model.discriminator == "resnet" else None)

        def forward(self, x):
            y = lrelu(self.conv1(x))
            y = lrelu(functional.avg_pool2d(self.conv2(blur(torch, y)), 2))
            if self.skip is None:
                return y
            return (y + self.skip(functional.avg_pool2d(x, 2))) * (1.0 / SQRT2)

    class Discriminator(tnn.Module):
        def __init__(self):
            super().__init__()
            self.from_rgb = EqualizedConv(data.channels, channels[-1], 1)
            self.blocks = tnn.ModuleList(DiscriminatorBlock(channels[level], channels[level - 1])
                                         for level in range(len(channels) - 1, 0, -1))
            stddev = 1 if model.mbstd_group > 1 else 0
            self.conv = EqualizedConv(channels[0] + stddev, channels[0])
            self.dense = EqualizedDense(channels[0] * 4 * 4, channels[0])
            self.output = EqualizedDense(channels[0], 1, gain=1.0)

        def forward(self, images):
            x = lrelu(self.from_rgb(images))
            for block in self.blocks:
                x = block(x)
            if model.mbstd_group > 1:
                x = minibatch_stddev(torch, x, model.mbstd_group)
            x = lrelu(self.dense(lrelu(self.conv(x)).flatten(1)))
            return self.output(x)[:, 0]

    return {"g": Generator(), "d": Discriminator()}


def mixing_latents(torch, rows: int, *, z_dim: int, num_layers: int, probability: float,
                   device: str):
    """z, a second z and each example's crossover layer: with `probability` uniform in
    1..L-1, else L (no mixing), per example as `jgan.families.stylegan.step.mixing_latents`."""
    mixes = torch.rand(rows, device=device) < probability
    crossover = torch.where(mixes, torch.randint(1, num_layers, (rows,), device=device),
                            num_layers)
    return (torch.randn(rows, z_dim, device=device), torch.randn(rows, z_dim, device=device),
            crossover)


def r1_penalty(torch, d, real, gamma: float):
    """gamma / 2 * mean ||grad_x D(x)||^2 over the images `real` (`jgan.losses.r1_penalty`), the
    gradient by `torch.autograd.grad(create_graph=True)` so that D's update differentiates it."""
    real = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(d(real).sum(), real, create_graph=True)
    return 0.5 * gamma * grad.square().sum((1, 2, 3)).mean()


def make_stylegan_step(torch, config, nets: dict, device: str):
    """StyleGAN's step on a batch {"image": [B, C, R, R] uint8}."""
    g, d, optim_cfg, model = nets["g"], nets["d"], config.optim, config.model
    r1_gamma, reg_interval = config.loss.r1_gamma, config.loss.reg_interval
    softplus = torch.nn.functional.softplus
    opt_g, opt_d = adam(torch, g, optim_cfg.g_lr, optim_cfg), adam(torch, d, optim_cfg.d_lr,
                                                                    optim_cfg)
    num_layers = 2 * len(level_channels(config.data.image_size, model.base_features,
                                        model.max_features))
    w_avg = torch.zeros(model.w_dim, device=device)
    ema = [p.detach().clone() for p in g.parameters()]
    ema_kimg = config.train.ema_kimg

    def step(batch):
        real = to_float(batch["image"])
        rows = real.shape[0]
        fake, w = g(*mixing_latents(torch, rows, z_dim=model.z_dim, num_layers=num_layers,
                                    probability=model.style_mixing, device=device))
        opt_d.zero_grad()
        loss_d = softplus(-d(real)).mean() + softplus(d(fake.detach())).mean()
        if r1_gamma:
            loss_d = loss_d + r1_penalty(torch, d, real[::reg_interval], r1_gamma)
        loss_d.backward()
        opt_d.step()
        # G's update reuses the fakes' graph (jgan's VJP of G's forward) against the updated D.
        opt_g.zero_grad()
        with frozen(d):
            softplus(-d(fake)).mean().backward()
        opt_g.step()
        with torch.no_grad():
            w_avg.lerp_(w.mean(0), 1.0 - model.w_avg_beta)
            if ema_kimg:
                beta = ema_decay(rows, ema_kimg)
                for average, p in zip(ema, g.parameters()):
                    average.lerp_(p, 1.0 - beta)

    return step
