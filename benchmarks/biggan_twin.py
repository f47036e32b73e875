"""The PyTorch twin of jgan's BigGAN step (`jgan/families/biggan/networks.py`, `jgan/families/biggan/step.py`),
free of jax, after BigGAN-PyTorch's layouts (Brock et al. 2019).

G: a shared class embedding, z split into one chunk for the input layer and one per block
(skip-z); residual up-blocks of conditional BatchNorm (gain 1 + W_g c, bias W_b c), ReLU, nearest
2x upsampling and 3x3 convolutions, with an upsampled 1x1 shortcut; SAGAN self-attention after
the block that reaches `model.attention`; BatchNorm, ReLU, a 3x3 convolution and tanh. D:
residual down-blocks (the first without the leading ReLU, its shortcut pooled first), the same
attention, ReLU, sum pooling and a linear output plus the projection <embed(y), phi(x)>. Every
weight but G's shared embedding is spectrally normalized (one power iteration per training call,
`torch.nn.utils.parametrizations.spectral_norm`); init orthogonal, biases 0.

One step: n_critic D updates (hinge loss, fakes of fresh z and uniform labels from G in training
mode, not differentiated), then G's update on fresh z and labels with orthogonal regularization
(`jgan.losses.orthogonal_regularization`: beta * ||W^T W (.) (1 - I)||^2 of G's raw weights,
the shared embedding excepted) and the EMA of G's parameters. Only the default config's layout is
written: 28x28 images (7x7 start, two up-blocks; D at 28, 14, 7, 7).
"""

from __future__ import annotations

from gan_twins import adam, frozen, to_float  # noqa: E402  (benchmarks/ is the script's folder)


def ema_decay(batch_size: int, ema_kimg: float) -> float:
    """`jgan.train.step_parts.ema_decay`: the per-step decay of a half-life of ema_kimg kimg."""
    return 0.5 ** (batch_size / (ema_kimg * 1000.0))


def torch_biggan(torch, config, *, num_classes: int = 10, channels: int = 1) -> dict:
    """`{"g": G, "d": D}` for 28x28 images, as `jgan.families.biggan` builds them."""
    tnn, functional = torch.nn, torch.nn.functional
    model = config.model
    spectral_norm = (torch.nn.utils.parametrizations.spectral_norm if model.spectral_norm
                     else (lambda layer: layer))
    bottom, blocks = 7, 2

    def conv(inputs: int, outputs: int, size: int, bias: bool = True):
        return spectral_norm(tnn.Conv2d(inputs, outputs, size, padding=size // 2, bias=bias))

    class ConditionalBatchNorm(tnn.Module):
        def __init__(self, features: int, conditioning: int):
            super().__init__()
            self.norm = tnn.BatchNorm2d(features, affine=False)
            self.gain = spectral_norm(tnn.Linear(conditioning, features, bias=False))
            self.bias = spectral_norm(tnn.Linear(conditioning, features, bias=False))

        def forward(self, x, conditioning):
            gain, bias = (layer(conditioning)[:, :, None, None] for layer in (self.gain,
                                                                               self.bias))
            return self.norm(x) * (1.0 + gain) + bias

    class SelfAttention(tnn.Module):
        def __init__(self, features: int):
            super().__init__()
            self.theta, self.phi = conv(features, features // 8, 1, False), conv(
                features, features // 8, 1, False)
            self.g, self.o = conv(features, features // 2, 1, False), conv(
                features // 2, features, 1, False)
            self.gamma = tnn.Parameter(torch.zeros(()))

        def forward(self, x):
            batch, channels, height, width = x.shape
            queries = self.theta(x).flatten(2).transpose(1, 2)
            keys = functional.max_pool2d(self.phi(x), 2).flatten(2)
            values = functional.max_pool2d(self.g(x), 2).flatten(2).transpose(1, 2)
            attended = torch.softmax(queries @ keys, -1) @ values
            attended = attended.transpose(1, 2).reshape(batch, channels // 2, height, width)
            return x + self.gamma * self.o(attended)

    class GeneratorBlock(tnn.Module):
        def __init__(self, features: int, conditioning: int, output_bias: bool):
            super().__init__()
            self.bn1 = ConditionalBatchNorm(features, conditioning)
            self.bn2 = ConditionalBatchNorm(features, conditioning)
            self.conv1 = conv(features, features, 3, bias=False)
            self.conv2 = conv(features, features, 3, bias=output_bias)
            self.shortcut = conv(features, features, 1, bias=output_bias)

        def forward(self, x, conditioning):
            h = functional.interpolate(torch.relu(self.bn1(x, conditioning)), scale_factor=2)
            h = self.conv2(torch.relu(self.bn2(self.conv1(h), conditioning)))
            return h + self.shortcut(functional.interpolate(x, scale_factor=2))

    class Generator(tnn.Module):
        def __init__(self):
            super().__init__()
            features, self.chunk = model.g_features, model.z_dim // (blocks + 1)
            self.shared = tnn.Parameter(torch.empty(num_classes, model.shared_dim))
            self.input = spectral_norm(tnn.Linear(self.chunk, bottom * bottom * features))
            self.blocks = tnn.ModuleList(
                GeneratorBlock(features, model.shared_dim + self.chunk, index < blocks - 1)
                for index in range(blocks))
            self.attention_after = [bottom * 2 ** (index + 1) == model.attention
                                    for index in range(blocks)]
            self.attention = SelfAttention(features) if any(self.attention_after) else None
            self.bn_out = tnn.BatchNorm2d(features)
            self.to_image = conv(features, channels, 3)

        def forward(self, z, labels):
            chunks = z.split(self.chunk, 1)
            classes = self.shared[labels]
            x = self.input(chunks[0]).view(z.shape[0], -1, bottom, bottom)
            for block, attend, chunk in zip(self.blocks, self.attention_after, chunks[1:]):
                x = block(x, torch.cat([classes, chunk], 1))
                if attend:
                    x = self.attention(x)
            return torch.tanh(self.to_image(torch.relu(self.bn_out(x))))

    class DiscriminatorBlock(tnn.Module):
        def __init__(self, inputs: int, features: int, downsample: bool, preactivation: bool):
            super().__init__()
            self.conv1, self.conv2 = conv(inputs, features, 3), conv(features, features, 3)
            self.shortcut = (conv(inputs, features, 1) if downsample or inputs != features
                             else None)
            self.downsample, self.preactivation = downsample, preactivation

        def forward(self, x):
            h = self.conv1(torch.relu(x) if self.preactivation else x)
            h = self.conv2(torch.relu(h))
            if self.downsample:
                h = functional.avg_pool2d(h, 2)
            shortcut = x
            if self.shortcut is not None:
                if not self.preactivation and self.downsample:
                    shortcut = functional.avg_pool2d(shortcut, 2)
                shortcut = self.shortcut(shortcut)
                if self.preactivation and self.downsample:
                    shortcut = functional.avg_pool2d(shortcut, 2)
            return h + shortcut

    class Discriminator(tnn.Module):
        def __init__(self):
            super().__init__()
            features = model.d_features
            layout = [True, True, False, False]  # jgan's discriminator_layout(28)
            self.blocks = tnn.ModuleList(
                DiscriminatorBlock(channels if index == 0 else features, features, downsample,
                                   index > 0) for index, downsample in enumerate(layout))
            self.attention_after = [index == 0 and model.attention == 14
                                    for index in range(len(layout))]
            self.attention = SelfAttention(features) if any(self.attention_after) else None
            self.linear = spectral_norm(tnn.Linear(features, 1))
            self.embed = spectral_norm(tnn.Embedding(num_classes, features))

        def forward(self, images, labels):
            h = images
            for block, attend in zip(self.blocks, self.attention_after):
                h = block(h)
                if attend:
                    h = self.attention(h)
            features = torch.relu(h).sum((2, 3))
            return self.linear(features)[:, 0] + (self.embed(labels) * features).sum(1)

    g, d = Generator(), Discriminator()
    for net in (g, d):
        for name, parameter in net.named_parameters():
            if parameter.ndim >= 2:
                tnn.init.orthogonal_(parameter)
            elif name.endswith("bias"):
                tnn.init.zeros_(parameter)
    return {"g": g, "d": d}


def orthogonal_regularization(torch, net, beta: float, excluded: tuple[str, ...]):
    """beta * sum ||W^T W (.) (1 - I)||_F^2 over `net`'s raw weights (`jgan.losses`' form:
    the smaller Gram matrix of each weight, outputs against outputs)."""
    total = 0.0
    for name, weight in net.named_parameters():
        if weight.ndim < 2 or any(part in name for part in excluded):
            continue
        matrix = weight.reshape(weight.shape[0], -1)  # [outputs, fan_in]
        if matrix.shape[1] < matrix.shape[0]:
            total = total + ((matrix.T @ matrix).square().sum()
                             - matrix.square().sum(1).square().sum())
        else:
            gram = matrix @ matrix.T
            total = total + (gram * (1.0 - torch.eye(gram.shape[0], device=gram.device))
                             ).square().sum()
    return beta * total


def make_biggan_step(torch, config, nets: dict, device: str, *, num_classes: int = 10):
    """BigGAN's step on a batch {"image": [n_critic * B, 1, 28, 28] uint8, "label": [n_critic
    * B]}."""
    g, d, optim_cfg, train = nets["g"], nets["d"], config.optim, config.train
    opt_g, opt_d = adam(torch, g, optim_cfg.g_lr, optim_cfg), adam(torch, d, optim_cfg.d_lr,
                                                                    optim_cfg)
    ema = [p.detach().clone() for p in g.parameters()]
    ema_beta = ema_decay(train.batch_size, train.ema_kimg) if train.ema_kimg else None

    def latents(rows: int):
        return (torch.randn(rows, config.model.z_dim, device=device),
                torch.randint(0, num_classes, (rows,), device=device))

    def step(batch):
        images, labels = batch["image"], batch["label"].long()
        n_critic = train.n_critic
        rows = images.shape[0] // n_critic
        for chunk in range(n_critic):
            # Rows chunk, chunk + n_critic, ...: gan_step's interleaved split of the batch.
            real, real_labels = to_float(images[chunk::n_critic]), labels[chunk::n_critic]
            z, fake_labels = latents(rows)
            with torch.no_grad():
                fake = g(z, fake_labels)
            opt_d.zero_grad()
            loss_d = (torch.relu(1.0 - d(real, real_labels)).mean()
                      + torch.relu(1.0 + d(fake, fake_labels)).mean())
            loss_d.backward()
            opt_d.step()
        opt_g.zero_grad()
        z, fake_labels = latents(train.batch_size)
        with frozen(d):
            loss_g = -d(g(z, fake_labels), fake_labels).mean()
            if config.loss.ortho_beta:
                loss_g = loss_g + orthogonal_regularization(torch, g, config.loss.ortho_beta,
                                                            ("shared",))
            loss_g.backward()
        opt_g.step()
        if ema_beta is not None:
            with torch.no_grad():
                for average, p in zip(ema, g.parameters()):
                    average.lerp_(p, 1.0 - ema_beta)

    return step
