"""PyTorch twins of jgan's Pix2Pix and CycleGAN steps, free of jax (see translation_step.py).

Layer for layer the reference's UnetGenerator / ResnetGenerator / NLayerDiscriminator
(junyanz/pytorch-CycleGAN-and-pix2pix, models/networks.py) and its `optimize_parameters`, with
the jitter inside the step as jgan's is. `config` is a jgan Config or the same fields as
attributes (`vs_pytorch.py` passes it as JSON so that its PyTorch rows never load jax); the two
numbers jgan derives from it come as arguments: `unet_depth` (`jgan.families.translation
.unet_depth`) and `jitter_to` (`jgan.data.augment.jitter_size` of the image size).
"""

from __future__ import annotations

import random
import re


def torch_twins(torch):
    """Constructors of the reference networks for NCHW images, written compactly: `unet`,
    `resnet`, `patchgan`, each `(..., norm) -> nn.Module` with the reference's init."""
    tnn = torch.nn

    def norm_layer(norm: str, channels: int):
        # The reference's get_norm_layer: InstanceNorm2d without affine or running statistics.
        return tnn.BatchNorm2d(channels) if norm == "batch" else tnn.InstanceNorm2d(channels)

    class UnetSkipBlock(tnn.Module):
        """x -> cat([x, up(submodule(down(x)))]); the outermost block returns up(...) alone.

        Out of place, unlike the reference's LeakyReLU(inplace=True), which rewrites the x that
        the skip concatenates; jgan concatenates the level's input before its activation.
        """

        def __init__(self, outer: int, inner: int, submodule=None, *, norm: str,
                     input_nc: int | None = None, outermost: bool = False,
                     dropout: float = 0.0):
            super().__init__()
            innermost, bias = submodule is None, norm == "instance"
            layers = [] if outermost else [tnn.LeakyReLU(0.2)]
            layers.append(tnn.Conv2d(input_nc or outer, inner, 4, 2, 1, bias=bias))
            if not (outermost or innermost):
                layers += [norm_layer(norm, inner), submodule]
            elif outermost:
                layers.append(submodule)
            layers += [tnn.ReLU(), tnn.ConvTranspose2d(inner if innermost else 2 * inner, outer,
                                                       4, 2, 1, bias=outermost or bias)]
            layers.append(tnn.Tanh() if outermost else norm_layer(norm, outer))
            if dropout:
                layers.append(tnn.Dropout(dropout))
            self.model, self.outermost = tnn.Sequential(*layers), outermost

        def forward(self, x):
            return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)

    class ResnetBlock(tnn.Module):
        def __init__(self, dim: int, norm: str):
            super().__init__()
            bias = norm == "instance"
            self.block = tnn.Sequential(
                tnn.ReflectionPad2d(1), tnn.Conv2d(dim, dim, 3, bias=bias), norm_layer(norm, dim),
                tnn.ReLU(), tnn.ReflectionPad2d(1), tnn.Conv2d(dim, dim, 3, bias=bias),
                norm_layer(norm, dim))

        def forward(self, x):
            return x + self.block(x)

    def init_weights(net):
        # The reference's init_weights('normal', 0.02).
        for module in net.modules():
            if isinstance(module, (tnn.Conv2d, tnn.ConvTranspose2d)):
                tnn.init.normal_(module.weight, 0.0, 0.02)
                if module.bias is not None:
                    tnn.init.zeros_(module.bias)
            elif isinstance(module, tnn.BatchNorm2d):
                tnn.init.normal_(module.weight, 1.0, 0.02)
                tnn.init.zeros_(module.bias)
        return net

    def unet(in_channels, out_channels, depth, ngf, norm, dropout):
        """UnetGenerator(num_downs=depth): innermost first, depth - 5 blocks of 8 ngf with
        dropout around it, then 4, 2 and 1 ngf outside, the outermost ending in tanh."""
        block = UnetSkipBlock(8 * ngf, 8 * ngf, norm=norm)
        for _ in range(depth - 5):
            block = UnetSkipBlock(8 * ngf, 8 * ngf, block, norm=norm, dropout=dropout)
        for mult in (4, 2, 1):
            block = UnetSkipBlock(mult * ngf, 2 * mult * ngf, block, norm=norm)
        return init_weights(UnetSkipBlock(out_channels, ngf, block, norm=norm,
                                          input_nc=in_channels, outermost=True))

    def resnet(in_channels, out_channels, blocks, ngf, norm):
        """ResnetGenerator: c7s1-ngf, d2ngf, d4ngf, blocks x R4ngf, u2ngf, ungf, c7s1-out."""
        bias = norm == "instance"
        layers = [tnn.ReflectionPad2d(3), tnn.Conv2d(in_channels, ngf, 7, bias=bias),
                  norm_layer(norm, ngf), tnn.ReLU()]
        for mult in (1, 2):
            layers += [tnn.Conv2d(mult * ngf, 2 * mult * ngf, 3, 2, 1, bias=bias),
                       norm_layer(norm, 2 * mult * ngf), tnn.ReLU()]
        layers += [ResnetBlock(4 * ngf, norm) for _ in range(blocks)]
        for mult in (4, 2):
            layers += [tnn.ConvTranspose2d(mult * ngf, mult * ngf // 2, 3, 2, 1,
                                           output_padding=1, bias=bias),
                       norm_layer(norm, mult * ngf // 2), tnn.ReLU()]
        layers += [tnn.ReflectionPad2d(3), tnn.Conv2d(ngf, out_channels, 7), tnn.Tanh()]
        return init_weights(tnn.Sequential(*layers))

    def patchgan(in_channels, ndf, num_layers, norm):
        """NLayerDiscriminator: 4x4 convolutions, num_layers at stride 2, one at stride 1 with
        norm, and a stride-1 convolution to one logit per patch."""
        bias = norm == "instance"
        layers = [tnn.Conv2d(in_channels, ndf, 4, 2, 1), tnn.LeakyReLU(0.2)]
        for n in range(1, num_layers + 1):
            stride = 2 if n < num_layers else 1
            layers += [tnn.Conv2d(ndf * min(2 ** (n - 1), 8), ndf * min(2 ** n, 8), 4, stride, 1,
                                  bias=bias),
                       norm_layer(norm, ndf * min(2 ** n, 8)), tnn.LeakyReLU(0.2)]
        layers.append(tnn.Conv2d(ndf * min(2 ** num_layers, 8), 1, 4, 1, 1))
        return init_weights(tnn.Sequential(*layers))

    return unet, resnet, patchgan


def torch_networks(torch, config, *, unet_depth: int) -> dict:
    """The twins of the networks `config` builds in jgan, under jgan's state names."""
    unet, resnet, patchgan = torch_twins(torch)
    model = config.model
    if model.discriminator != "patch":
        raise ValueError(f"only the PatchGAN has a twin here, not {model.discriminator!r}")

    def generator():
        if model.generator.startswith("unet"):
            return unet(3, 3, unet_depth, model.g_features, model.norm, model.dropout)
        blocks = int(re.fullmatch(r"resnet_(\d+)blocks", model.generator).group(1))
        return resnet(3, 3, blocks, model.g_features, model.norm)

    def discriminator(in_channels):
        return patchgan(in_channels, model.d_features, model.d_layers, model.norm)

    if config.family == "pix2pix":
        return {"g": generator(), "d": discriminator(6)}  # D sees (input, output) pairs
    return {"g_A": generator(), "g_B": generator(), "d_A": discriminator(3),
            "d_B": discriminator(3)}


class TorchImagePool:
    """The reference's util/image_pool.py: fill to `size`, then swap at random with p 1/2."""

    def __init__(self, torch, size: int, rng: random.Random):
        self.torch, self.size, self.rng, self.images = torch, size, rng, []

    def query(self, images):
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            image = image[None]
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif self.rng.random() > 0.5:
                slot = self.rng.randrange(self.size)
                out.append(self.images[slot].clone())
                self.images[slot] = image
            else:
                out.append(image)
        return self.torch.cat(out, 0)


def make_torch_jitter(torch, rng: random.Random, jitter_to: int):
    """[B, C, H, W] in [-1, 1] -> the same, each example resized (bicubic) to jitter_to square,
    cropped back at random and mirrored with probability 1/2, as jgan's `random_jitter`."""
    functional = torch.nn.functional

    def jitter(images):
        height, width = images.shape[-2:]
        large_h = large_w = jitter_to
        large = functional.interpolate(images, size=(large_h, large_w), mode="bicubic",
                                       align_corners=False)
        out = []
        for image in large:
            top, left = rng.randint(0, large_h - height), rng.randint(0, large_w - width)
            image = image[:, top:top + height, left:left + width]
            out.append(image.flip(-1) if rng.random() < 0.5 else image)
        return torch.stack(out).clamp(-1.0, 1.0)

    return jitter


def make_torch_step(torch, config, nets: dict, *, jitter_to: int):
    """The reference's `optimize_parameters` for `config.family` on a batch {"image_A",
    "image_B": [B, 3, H, W] uint8}, on the device the networks and the batch are on."""
    model, loss_cfg = config.model, config.loss
    rng = random.Random(0)
    jitter = (make_torch_jitter(torch, rng, jitter_to) if model.jitter
              else (lambda images: images))
    criterion = {"nonsaturating": torch.nn.BCEWithLogitsLoss(),
                 "least_squares": torch.nn.MSELoss()}[loss_cfg.gan_loss]
    l1 = torch.nn.L1Loss()

    def gan_loss(logits, real: bool):
        return criterion(logits, torch.full_like(logits, 1.0 if real else 0.0))

    def adam(lr: float, *names):
        params = [p for name in names for p in nets[name].parameters()]
        return torch.optim.Adam(params, lr=lr, betas=(config.optim.b1, config.optim.b2))

    def requires_grad(names, flag: bool):
        for name in names:
            for p in nets[name].parameters():
                p.requires_grad_(flag)

    def to_float(images):
        return images.float() / 127.5 - 1.0

    if config.family == "pix2pix":
        source, target = model.direction[0], model.direction[-1]
        g, d = nets["g"], nets["d"]
        opt_g, opt_d = adam(config.optim.g_lr, "g"), adam(config.optim.d_lr, "d")

        def step(batch):
            # One draw for the pair: jitter both images as one 6-channel image.
            pair = jitter(torch.cat([to_float(batch[f"image_{source}"]),
                                     to_float(batch[f"image_{target}"])], 1))
            real_A, real_B = pair[:, :3], pair[:, 3:]
            fake_B = g(real_A)
            requires_grad(["d"], True)
            opt_d.zero_grad()
            loss_d = 0.5 * (gan_loss(d(torch.cat([real_A, fake_B.detach()], 1)), False)
                            + gan_loss(d(torch.cat([real_A, real_B], 1)), True))
            loss_d.backward()
            opt_d.step()
            requires_grad(["d"], False)
            opt_g.zero_grad()
            loss_g = (gan_loss(d(torch.cat([real_A, fake_B], 1)), True)
                      + loss_cfg.lambda_l1 * l1(fake_B, real_B))
            loss_g.backward()
            opt_g.step()

        return step

    g_A, g_B, d_A, d_B = nets["g_A"], nets["g_B"], nets["d_A"], nets["d_B"]
    opt_g = adam(config.optim.g_lr, "g_A", "g_B")
    opt_d = adam(config.optim.d_lr, "d_A", "d_B")
    pools = {side: TorchImagePool(torch, loss_cfg.pool_size, rng) for side in "AB"}
    lambda_idt = loss_cfg.lambda_identity

    def step(batch):
        real_A, real_B = (jitter(to_float(batch[f"image_{side}"])) for side in "AB")
        fake_B, fake_A = g_A(real_A), g_B(real_B)
        rec_A, rec_B = g_B(fake_B), g_A(fake_A)
        requires_grad(["d_A", "d_B"], False)
        opt_g.zero_grad()
        loss_g = (gan_loss(d_A(fake_B), True) + gan_loss(d_B(fake_A), True)
                  + loss_cfg.lambda_A * l1(rec_A, real_A) + loss_cfg.lambda_B * l1(rec_B, real_B))
        if lambda_idt > 0:
            loss_g = (loss_g + lambda_idt * loss_cfg.lambda_B * l1(g_A(real_B), real_B)
                      + lambda_idt * loss_cfg.lambda_A * l1(g_B(real_A), real_A))
        loss_g.backward()
        opt_g.step()
        requires_grad(["d_A", "d_B"], True)
        opt_d.zero_grad()
        for d, real, fake in ((d_A, real_B, pools["B"].query(fake_B)),
                              (d_B, real_A, pools["A"].query(fake_A))):
            loss_d = 0.5 * (gan_loss(d(real), True) + gan_loss(d(fake.detach()), False))
            loss_d.backward()
        opt_d.step()

    return step
