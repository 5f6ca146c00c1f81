"""AlexNet, VGG-11, GoogLeNet, ResNet-18, ResNet-50 and MobileNetV2 in plain ``torch.nn``, layer for layer as torchvision
defines them, for where ``torchvision.models`` does not import (a CPU torch it was not built against).

Same layers, shapes and bias flags as torchvision 0.29's definitions, so parameter counts and forward multiply-adds equal
torchvision's exactly (asserted against torchvision where it imports, and against torchvision's published
``num_params`` / ``_ops`` everywhere, in tests/test_bench_models.py). Module names differ from torchvision's, so
torchvision's checkpoints do not load into these: the suite trains from random initialization and only needs the shapes.
"""

from __future__ import annotations

import torch
from torch import nn


def alexnet(num_classes: int = 1000) -> nn.Module:
    """AlexNet as in "One weird trick" (Krizhevsky 2014), the variant torchvision ships: 64-192-384-256-256 filters."""
    return nn.Sequential(
        nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        nn.AdaptiveAvgPool2d((6, 6)), nn.Flatten(),
        nn.Dropout(0.5), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True),
        nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
        nn.Linear(4096, num_classes),
    )


def vgg11(num_classes: int = 1000) -> nn.Module:
    """VGG-11, configuration "A" of Simonyan & Zisserman 2014 (Table 1), without batch norm, as torchvision's ``vgg11``.

    Eight 3x3 convolutions with bias (64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M; M = 2x2 max-pool), a 7x7
    adaptive average pool and three fully connected layers (25088 -> 4096 -> 4096 -> classes) with dropout 0.5.
    Input ``(N, 3, H, W)`` with H, W >= 32; output ``(N, num_classes)`` logits.
    """
    layers: list[nn.Module] = []
    cin = 3
    for v in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"):
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            assert isinstance(v, int)
            layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(inplace=True)]
            cin = v
    layers += [nn.AdaptiveAvgPool2d((7, 7)), nn.Flatten(),
               nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(0.5),
               nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(0.5),
               nn.Linear(4096, num_classes)]
    model = nn.Sequential(*layers)
    # torchvision's initialization (He normal for convs, N(0, 0.01) for the classifier): without it the 11-layer
    # plain net starts with vanishing activations.
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
        if isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None:
            nn.init.zeros_(m.bias)
    return model


class _ConvBNReLU(nn.Sequential):
    """GoogLeNet's conv unit as torchvision has it: conv without bias, batch norm (eps 0.001), ReLU."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, padding: int = 0) -> None:
        super().__init__(nn.Conv2d(cin, cout, k, stride, padding, bias=False), nn.BatchNorm2d(cout, eps=0.001),
                         nn.ReLU(inplace=True))


class _Inception(nn.Module):
    """Inception module (Szegedy et al. 2014, Fig. 2b): 1x1 | 1x1->3x3 | 1x1->"5x5" | 3x3 max-pool->1x1, concatenated.

    The "5x5" branch is a 3x3 convolution, as in torchvision (its known deviation from the paper, pytorch/vision#906,
    kept so that parameter counts and multiply-adds match torchvision's published ones).
    """

    def __init__(self, cin: int, c1: int, c3r: int, c3: int, c5r: int, c5: int, pool_proj: int) -> None:
        super().__init__()
        self.branch1 = _ConvBNReLU(cin, c1, 1)
        self.branch2 = nn.Sequential(_ConvBNReLU(cin, c3r, 1), _ConvBNReLU(c3r, c3, 3, padding=1))
        self.branch3 = nn.Sequential(_ConvBNReLU(cin, c5r, 1), _ConvBNReLU(c5r, c5, 3, padding=1))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True), _ConvBNReLU(cin, pool_proj, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


def googlenet(num_classes: int = 1000) -> nn.Module:
    """GoogLeNet (Szegedy et al. 2014, Table 1) as torchvision's ``googlenet(aux_logits=False)``, batch-normalized.

    Without the two auxiliary classifiers: torchvision's published 6,624,904 parameters are those of the model without
    them (its pretrained model drops them), and they only add training-time work the paper's Table 1 does not list.
    Input ``(N, 3, H, W)``; output ``(N, num_classes)`` logits.
    """
    # (in, 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj): Table 1 of the paper, as torchvision lists them.
    inc = {
        "3a": (192, 64, 96, 128, 16, 32, 32), "3b": (256, 128, 128, 192, 32, 96, 64),
        "4a": (480, 192, 96, 208, 16, 48, 64), "4b": (512, 160, 112, 224, 24, 64, 64),
        "4c": (512, 128, 128, 256, 24, 64, 64), "4d": (512, 112, 144, 288, 32, 64, 64),
        "4e": (528, 256, 160, 320, 32, 128, 128), "5a": (832, 256, 160, 320, 32, 128, 128),
        "5b": (832, 384, 192, 384, 48, 128, 128),
    }
    model = nn.Sequential(
        _ConvBNReLU(3, 64, 7, 2, 3), nn.MaxPool2d(3, 2, ceil_mode=True),
        _ConvBNReLU(64, 64, 1), _ConvBNReLU(64, 192, 3, padding=1), nn.MaxPool2d(3, 2, ceil_mode=True),
        _Inception(*inc["3a"]), _Inception(*inc["3b"]), nn.MaxPool2d(3, 2, ceil_mode=True),
        *(_Inception(*inc[k]) for k in ("4a", "4b", "4c", "4d", "4e")), nn.MaxPool2d(2, 2, ceil_mode=True),
        _Inception(*inc["5a"]), _Inception(*inc["5b"]),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(1024, num_classes),
    )
    # torchvision's init_weights=True: truncated N(0, 0.01) for convs and the classifier.
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.trunc_normal_(m.weight, mean=0.0, std=0.01, a=-2, b=2)
    return model


class _BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convs, identity or 1x1-conv (option B) shortcut (He et al. 2015, Table 1)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        idt = x if self.down is None else self.down(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + idt)


def resnet18(num_classes: int = 1000) -> nn.Module:
    """ResNet-18: 7x7/2 stem, max-pool, four stages of two basic blocks (64, 128, 256, 512), avg-pool, FC."""
    layers: list[nn.Module] = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
                               nn.MaxPool2d(3, 2, 1)]
    cin = 64
    for i, cout in enumerate((64, 128, 256, 512)):
        for j in range(2):
            layers.append(_BasicBlock(cin, cout, 2 if (j == 0 and i > 0) else 1))
            cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, num_classes)]
    return nn.Sequential(*layers)


class _Bottleneck(nn.Module):
    """ResNet-50 bottleneck: 1x1 reduce, 3x3 (stride here, as torchvision's "v1.5"), 1x1 expand x4, projection shortcut."""

    def __init__(self, cin: int, width: int, stride: int) -> None:
        super().__init__()
        cout = width * 4
        self.body = nn.Sequential(
            nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, cout, 1, bias=False), nn.BatchNorm2d(cout),
        )
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        idt = x if self.down is None else self.down(x)
        return self.relu(self.body(x) + idt)


def resnet50(num_classes: int = 1000) -> nn.Module:
    """ResNet-50: stem, stages of 3/4/6/3 bottlenecks of width 64/128/256/512 (x4 out), avg-pool, FC."""
    layers: list[nn.Module] = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
                               nn.MaxPool2d(3, 2, 1)]
    cin = 64
    for i, (width, blocks) in enumerate(((64, 3), (128, 4), (256, 6), (512, 3))):
        for j in range(blocks):
            layers.append(_Bottleneck(cin, width, 2 if (j == 0 and i > 0) else 1))
            cin = width * 4
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2048, num_classes)]
    return nn.Sequential(*layers)


def _conv_bn_relu6(cin: int, cout: int, k: int, stride: int, groups: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False), nn.BatchNorm2d(cout),
            nn.ReLU6(inplace=True)]


class _InvertedResidual(nn.Module):
    """MobileNetV2 bottleneck: 1x1 expand (skipped when t=1), 3x3 depthwise, 1x1 linear projection."""

    def __init__(self, cin: int, cout: int, stride: int, t: int) -> None:
        super().__init__()
        hidden = cin * t
        layers: list[nn.Module] = [] if t == 1 else _conv_bn_relu6(cin, hidden, 1, 1)
        layers += _conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden)
        layers += [nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.block(x)
        return x + y if self.residual else y


def mobilenet_v2(num_classes: int = 1000) -> nn.Module:
    """MobileNetV2 (Sandler et al. 2018, Table 2), width multiplier 1.0."""
    # (expansion t, output channels c, repeats n, first stride s), Table 2 of the paper.
    table = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
    layers: list[nn.Module] = _conv_bn_relu6(3, 32, 3, 2)
    cin = 32
    for t, c, n, s in table:
        for i in range(n):
            layers.append(_InvertedResidual(cin, c, s if i == 0 else 1, t))
            cin = c
    layers += _conv_bn_relu6(cin, 1280, 1, 1)
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(1280, num_classes)]
    return nn.Sequential(*layers)
