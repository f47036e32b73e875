"""The Flax FID InceptionV3 against an independent PyTorch twin, on random weights.

The real FID weights are not shipped, so the port cannot be checked against known feature
values. Instead this file builds the same network in PyTorch (torchvision's Inception3 layout
with num_classes=1008, plus pytorch-fid's FID patches: average pools that ignore padding in
blocks A, C and E_1, a max pool in Mixed_7c's pool branch), gives it random weights and random
BatchNorm statistics, loads its state dict through `variables_from_state_dict`, and requires
both networks to give the same pool features and logits. Random BatchNorm statistics matter:
with the defaults (mean 0, var 1) a swapped mean/var or scale/bias would go unnoticed. The twin's
attributes carry torchvision's names, so its state dict has pytorch-fid's keys and loading it
also checks the name mapping. `preprocess` is checked against `F.interpolate` the same way.

CI has no PyTorch; there the whole file is skipped.
"""

import math

import jax
import numpy as np
import pytest

from jgan.metrics.inception import FIDInceptionV3, preprocess, variables_from_state_dict

torch = pytest.importorskip("torch", reason="the PyTorch twin of the FID Inception needs torch")
nn = torch.nn
F = torch.nn.functional


class BasicConv2d(nn.Module):
    def __init__(self, cin, cout, kernel_size, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def _avg_pool(x):
    # pytorch-fid's FID patch: the TF graph's average pools ignore the padding.
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    def __init__(self, cin, pool_features):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, 1)
        self.branch5x5_1 = BasicConv2d(cin, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, 1)

    def forward(self, x):
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), b5, b3, self.branch_pool(_avg_pool(x))], 1)


class InceptionB(nn.Module):
    def __init__(self, cin):
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x):
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), b3, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionC(nn.Module):
    def __init__(self, cin, c7):
        super().__init__()
        wide, tall = dict(kernel_size=(1, 7), padding=(0, 3)), dict(kernel_size=(7, 1),
                                                                    padding=(3, 0))
        self.branch1x1 = BasicConv2d(cin, 192, 1)
        self.branch7x7_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, **wide)
        self.branch7x7_3 = BasicConv2d(c7, 192, **tall)
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, **tall)
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, **wide)
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, **tall)
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, **wide)
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x):
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d7 = x
        for i in range(1, 6):
            d7 = getattr(self, f"branch7x7dbl_{i}")(d7)
        return torch.cat([self.branch1x1(x), b7, d7, self.branch_pool(_avg_pool(x))], 1)


class InceptionD(nn.Module):
    def __init__(self, cin):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x):
        b7 = x
        for i in range(1, 5):
            b7 = getattr(self, f"branch7x7x3_{i}")(b7)
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        return torch.cat([b3, b7, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionE(nn.Module):
    def __init__(self, cin, max_pool):
        super().__init__()
        self.max_pool = max_pool  # pytorch-fid's FIDInceptionE_2 (Mixed_7c)
        self.branch1x1 = BasicConv2d(cin, 320, 1)
        self.branch3x3_1 = BasicConv2d(cin, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x):
        b3 = self.branch3x3_1(x)
        d3 = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _avg_pool(x)
        return torch.cat([self.branch1x1(x), self.branch3x3_2a(b3), self.branch3x3_2b(b3),
                          self.branch3x3dbl_3a(d3), self.branch3x3dbl_3b(d3),
                          self.branch_pool(pooled)], 1)


class TwinInception(nn.Module):
    """NCHW in [-1, 1] -> (pool features [N, 2048], logits [N, 1008])."""

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, 32)
        self.Mixed_5c = InceptionA(256, 64)
        self.Mixed_5d = InceptionA(288, 64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, 128)
        self.Mixed_6c = InceptionC(768, 160)
        self.Mixed_6d = InceptionC(768, 160)
        self.Mixed_6e = InceptionC(768, 192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, max_pool=False)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        self.fc = nn.Linear(2048, 1008)

    def forward(self, x):
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(F.max_pool2d(x, 3, stride=2)))
        x = F.max_pool2d(x, 3, stride=2)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)
        features = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return features, self.fc(features)


def _randomised_twin():
    """The twin in eval mode with seeded weights that keep activations O(1) through the net."""
    torch.manual_seed(0)
    twin = TwinInception().eval()
    with torch.no_grad():
        for module in twin.modules():
            if isinstance(module, nn.Conv2d):  # He scale: ReLU nets keep their variance
                fan_in = module.weight[0].numel()
                module.weight.normal_(0.0, math.sqrt(2.0 / fan_in))
            elif isinstance(module, nn.BatchNorm2d):  # every statistic distinct and non-trivial
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0.0, 0.2)
                module.running_mean.normal_(0.0, 0.2)
                module.running_var.uniform_(0.5, 1.5)
        twin.fc.weight.normal_(0.0, 1.0 / math.sqrt(2048))
        twin.fc.bias.normal_(0.0, 0.1)
    return twin


@pytest.mark.slow
def test_flax_inception_equals_pytorch_twin():
    twin = _randomised_twin()
    state = {name: tensor.numpy() for name, tensor in twin.state_dict().items()}
    variables = variables_from_state_dict(state, "the twin's state dict")
    x = np.random.default_rng(0).uniform(-1.0, 1.0, (2, 299, 299, 3)).astype(np.float32)

    with torch.no_grad():
        want = [t.numpy() for t in twin(torch.from_numpy(x.transpose(0, 3, 1, 2)))]
    got = jax.jit(FIDInceptionV3().apply)(variables, x)

    for label, g, w in zip(("features", "logits"), got, want):
        scale = np.abs(w).max()
        error = np.abs(np.asarray(g) - w).max()
        print(f"{label}: max |flax - torch| = {error:.3g}, max |torch| = {scale:.3g}")
        # float32 through ~50 sequential layers: 1e-4 of the output scale is rounding, a
        # layout or padding bug moves outputs by a large fraction of it.
        assert error <= 1e-4 * scale, label
    assert want[0].std() > 0.1 * np.abs(want[0]).max()  # the features did not die or saturate


@pytest.mark.parametrize("shape", [(3, 28, 28, 1), (1, 512, 512, 3)])
def test_preprocess_equals_torch_interpolate(shape):
    images = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    x = x.expand(-1, 3, -1, -1)  # grey is repeated to RGB; RGB stays as is
    want = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False) * 2 - 1
    got = np.asarray(preprocess(images))
    error = np.abs(got - want.permute(0, 2, 3, 1).numpy()).max()
    print(f"preprocess {shape}: max |jax - torch| = {error:.3g}")
    assert error <= 1e-5
