"""The mobile-sized seed architectures in plain ``torch.nn``: MobileNet v1, ShuffleNet v1 1x, ShuffleNetV2 1x and
EfficientNet-B0.

ShuffleNetV2 1x and EfficientNet-B0 are layer for layer torchvision 0.29's ``shufflenet_v2_x1_0`` and ``efficientnet_b0``
(same shapes and bias flags, so parameter counts and multiply-adds equal torchvision's; checked in
tests/test_bench_models.py). torchvision has no MobileNet v1 or ShuffleNet v1: those two are written from their papers
(Howard et al. 2017, "MobileNets", Table 1; Zhang et al. 2017, "ShuffleNet", Table 1 and Section 3), and their counts
are checked against the papers' figures. All take ``(N, 3, H, W)`` images (H, W >= 32) and return ``(N, num_classes)``
logits; pooling before the classifier is adaptive, so the quick preset's 112x112 inputs run through the same layers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _conv_bn(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1,
             act: type[nn.Module] | None = nn.ReLU) -> list[nn.Module]:
    """Conv (no bias, "same" padding for odd k) + batch norm (+ activation): the unit all four nets are built from."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
                               nn.BatchNorm2d(cout)]
    if act is not None:
        layers.append(act(inplace=True))
    return layers


def mobilenet_v1(num_classes: int = 1000) -> nn.Module:
    """MobileNet v1, width multiplier 1.0, resolution 224 (Howard et al. 2017, Table 1).

    A 3x3/2 convolution to 32 channels, then 13 depthwise-separable layers (3x3 depthwise + 1x1 pointwise, each followed
    by batch norm and ReLU, Fig. 3), global average pool and one fully connected layer. The paper's figures for it
    (Table 8): 4.2 million parameters, 569 million multiply-adds.
    """
    # (pointwise output channels, depthwise stride) of the 13 separable layers, Table 1. The table prints "s2" on the
    # last depthwise row, but its input and output are both 7x7x1024: stride 1, as every implementation reads it.
    table = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
             (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))
    layers = _conv_bn(3, 32, 3, 2)
    cin = 32
    for cout, stride in table:
        layers += _conv_bn(cin, cin, 3, stride, groups=cin) + _conv_bn(cin, cout, 1)
        cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1024, num_classes)]
    return nn.Sequential(*layers)


def _channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """(N, g*c, H, W) -> (N, c*g, H, W): interleave the groups' channels so the next grouped conv sees every group."""
    n, ch, h, w = x.shape
    return x.view(n, groups, ch // groups, h, w).transpose(1, 2).reshape(n, ch, h, w)


class _ShuffleV1Unit(nn.Module):
    """ShuffleNet unit (Zhang et al. 2017, Fig. 2b/c).

    1x1 group conv to ``cout // 4`` bottleneck channels (BN, ReLU), channel shuffle, 3x3 depthwise conv (BN, no ReLU),
    1x1 group conv (BN). Stride 1: add the input, then ReLU. Stride 2: the branch makes ``cout - cin`` channels and is
    concatenated with a 3x3/2 average pool of the input, then ReLU.
    """

    def __init__(self, cin: int, cout: int, stride: int, groups: int, group_first: bool) -> None:
        super().__init__()
        mid = cout // 4  # "the number of bottleneck channels is set to 1/4 of the output channels" (Section 3.3)
        branch = cout - cin if stride == 2 else cout
        self.groups, self.stride = groups, stride
        self.reduce = nn.Sequential(*_conv_bn(cin, mid, 1, groups=groups if group_first else 1))
        self.depthwise = nn.Sequential(*_conv_bn(mid, mid, 3, stride, groups=mid, act=None))
        self.expand = nn.Sequential(*_conv_bn(mid, branch, 1, groups=groups, act=None))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(self.depthwise(_channel_shuffle(self.reduce(x), self.groups)))
        if self.stride == 1:
            return F.relu(x + y)
        return F.relu(torch.cat([F.avg_pool2d(x, 3, 2, 1), y], 1))


#: Output channels of stages 2-4 of ShuffleNet 1x per group count g (Table 1 of Zhang et al. 2017).
SHUFFLENET_V1_CHANNELS = {1: (144, 288, 576), 2: (200, 400, 800), 3: (240, 480, 960), 4: (272, 544, 1088),
                          8: (384, 768, 1536)}


def shufflenet_v1(groups: int = 3, num_classes: int = 1000) -> nn.Module:
    """ShuffleNet v1 1x with ``groups`` groups in the pointwise convolutions (Zhang et al. 2017, Table 1).

    g = 3 by default: the setting the paper compares with other nets as "ShuffleNet 1x (g = 3)" (Table 2 lists
    ShuffleNet 1x at "140 MFLOPs" for every g; the paper's FLOPs are multiply-adds). Table 1 lists 137 MFLOPs for
    g = 3 (143, 140, 133, 137 for g = 1, 2, 4, 8): the convolutions alone, without the 960 x 1000 classifier
    (0.96 M multiply-adds more).
    A 3x3/2 convolution to 24 channels and a 3x3/2 max-pool, stages of 4, 8 and 4 units (the first of each with
    stride 2), global average pool, fully connected layer. Stage 2's first pointwise convolution is not grouped, "because
    the number of input channels is relatively small" (Table 1, note).

    Raises:
        ValueError: ``groups`` not one of the paper's 1, 2, 3, 4, 8.
    """
    if groups not in SHUFFLENET_V1_CHANNELS:
        raise ValueError(f"ShuffleNet v1 groups={groups}: the paper defines g in {sorted(SHUFFLENET_V1_CHANNELS)}")
    layers = _conv_bn(3, 24, 3, 2) + [nn.MaxPool2d(3, 2, 1)]
    cin = 24
    for stage, (cout, repeats) in enumerate(zip(SHUFFLENET_V1_CHANNELS[groups], (4, 8, 4))):
        for i in range(repeats):
            layers.append(_ShuffleV1Unit(cin, cout, 2 if i == 0 else 1, groups, group_first=stage > 0 or i > 0))
            cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, num_classes)]
    return nn.Sequential(*layers)


class _ShuffleV2Unit(nn.Module):
    """ShuffleNetV2 unit (Ma et al. 2018, Fig. 3c/d) as torchvision's ``InvertedResidual``.

    Stride 1: split the channels in two halves, run one through 1x1 (BN, ReLU) -> 3x3 depthwise (BN) -> 1x1 (BN, ReLU),
    concatenate with the other half. Stride 2: both halves see the whole input, the left one through 3x3 depthwise (BN)
    -> 1x1 (BN, ReLU). Then shuffle the two halves' channels.
    """

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        half = cout // 2
        self.stride = stride
        self.branch1 = nn.Sequential()
        if stride > 1:
            self.branch1 = nn.Sequential(*_conv_bn(cin, cin, 3, stride, groups=cin, act=None), *_conv_bn(cin, half, 1))
        self.branch2 = nn.Sequential(*_conv_bn(cin if stride > 1 else half, half, 1),
                                     *_conv_bn(half, half, 3, stride, groups=half, act=None), *_conv_bn(half, half, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return _channel_shuffle(out, 2)


def shufflenet_v2_x1_0(num_classes: int = 1000) -> nn.Module:
    """ShuffleNetV2 1x (Ma et al. 2018, Table 5) as torchvision's ``shufflenet_v2_x1_0``.

    3x3/2 conv to 24 channels, 3x3/2 max-pool, stages of 4, 8, 4 units with 116, 232, 464 channels, 1x1 conv to 1024,
    global average pool, fully connected layer.
    """
    layers = _conv_bn(3, 24, 3, 2) + [nn.MaxPool2d(3, 2, 1)]
    cin = 24
    for cout, repeats in ((116, 4), (232, 8), (464, 4)):
        for i in range(repeats):
            layers.append(_ShuffleV2Unit(cin, cout, 2 if i == 0 else 1))
            cin = cout
    layers += _conv_bn(cin, 1024, 1) + [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1024, num_classes)]
    return nn.Sequential(*layers)


class _SqueezeExcite(nn.Module):
    """Squeeze-and-excitation (Hu et al. 2017) as torchvision's: avg-pool, 1x1 conv (bias), SiLU, 1x1 conv, sigmoid."""

    def __init__(self, ch: int, squeeze: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(ch, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = F.adaptive_avg_pool2d(x, 1)
        return x * torch.sigmoid(self.fc2(F.silu(self.fc1(s), inplace=True)))


class _MBConv(nn.Module):
    """EfficientNet's MBConv block (Tan & Le 2019, MnasNet's inverted bottleneck with squeeze-excitation) as torchvision's.

    1x1 expansion (skipped at expansion 1), kxk depthwise, squeeze-excitation to ``max(1, cin // 4)`` channels, 1x1
    projection; SiLU after the first two. With stride 1 and cin == cout, a residual connection whose branch is dropped
    per example with probability ``drop`` in training (stochastic depth, Huang et al. 2016, torchvision's "row" mode).
    """

    def __init__(self, cin: int, cout: int, k: int, stride: int, expand: int, drop: float) -> None:
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = [] if hidden == cin else _conv_bn(cin, hidden, 1, act=nn.SiLU)
        layers += _conv_bn(hidden, hidden, k, stride, groups=hidden, act=nn.SiLU)
        layers.append(_SqueezeExcite(hidden, max(1, cin // 4)))
        layers += _conv_bn(hidden, cout, 1, act=None)
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout
        self.drop = drop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        if not self.residual:
            return y
        if self.training and self.drop > 0.0:
            keep = 1.0 - self.drop
            y = y * torch.empty((y.shape[0], 1, 1, 1), dtype=y.dtype, device=y.device).bernoulli_(keep).div_(keep)
        return y + x


def efficientnet_b0(num_classes: int = 1000) -> nn.Module:
    """EfficientNet-B0 (Tan & Le 2019, Table 1) as torchvision's ``efficientnet_b0``.

    3x3/2 conv to 32 channels, seven stages of MBConv blocks, 1x1 conv to 1280, global average pool, dropout 0.2, fully
    connected layer. Stochastic depth rises linearly from 0 to 0.2 over the 16 blocks, as in torchvision.
    """
    # (expansion, kernel, first stride, in, out, blocks): Table 1 of the paper; at width 1.0 every channel count is
    # already a multiple of 8, so torchvision's _make_divisible rounding changes nothing.
    table = ((1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
             (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1))
    total = sum(t[5] for t in table)
    layers = _conv_bn(3, 32, 3, 2, act=nn.SiLU)
    i = 0
    for expand, k, stride, cin, cout, n in table:
        for j in range(n):
            layers.append(_MBConv(cin if j == 0 else cout, cout, k, stride if j == 0 else 1, expand, 0.2 * i / total))
            i += 1
    layers += _conv_bn(320, 1280, 1, act=nn.SiLU)
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2, inplace=True), nn.Linear(1280, num_classes)]
    model = nn.Sequential(*layers)
    # torchvision's initialization: He normal (fan_out) for convs, U(+-1/sqrt(classes)) for the classifier.
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and m.bias is not None:
            r = 1.0 / m.out_features ** 0.5
            nn.init.uniform_(m.weight, -r, r)
            nn.init.zeros_(m.bias)
    return model
