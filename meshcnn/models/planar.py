"""Planar baselines: ordinary 2-D CNNs on latitude-longitude images.

They are what the spherical models are compared against in the experiments.
Layout ``(batch, channels, H, W)`` with ``H`` along latitude and ``W`` along
longitude; with ``circular=True`` the longitude axis is padded periodically
(the image wraps around the globe) and latitude with zeros.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LonConv2d", "PlanarCNN", "PlanarUNet"]


class LonConv2d(nn.Conv2d):
    """3x3 ``Conv2d`` with periodic padding in longitude (last axis) and zero padding in latitude.

    Parameters
    ----------
    in_channels, out_channels : int
    stride : int
    circular : bool
        Periodic padding in longitude; zeros when False.
    bias : bool
    """

    def __init__(
        self, in_channels: int, out_channels: int, stride: int = 1, circular: bool = True, bias: bool = False
    ) -> None:
        super().__init__(in_channels, out_channels, 3, stride=stride, padding=0, bias=bias)
        self.circular = circular

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (1, 1, 0, 0), mode="circular" if self.circular else "constant")
        return super().forward(F.pad(x, (0, 0, 1, 1)))


def _conv_bn_relu(cin: int, cout: int, stride: int, circular: bool) -> nn.Sequential:
    return nn.Sequential(LonConv2d(cin, cout, stride, circular), nn.BatchNorm2d(cout), nn.ReLU())


class PlanarCNN(nn.Module):
    """2-D CNN classifier, ``(B, C, H, W) -> (B, num_classes)`` logits.

    A stem convolution, then ``depth`` stages of a stride-2 and a stride-1
    3x3 convolution (channels doubling), global average pooling and a linear layer.

    Parameters
    ----------
    in_channels, num_classes : int
    width : int
        Channels of the stem; stage ``i`` has ``width * 2**(i + 1)``.
    depth : int
        Stride-2 stages.
    circular : bool
        Periodic padding in longitude (:class:`LonConv2d`).
    """

    def __init__(
        self, in_channels: int, num_classes: int, width: int = 16, depth: int = 3, circular: bool = True
    ) -> None:
        super().__init__()
        layers = [_conv_bn_relu(in_channels, width, 1, circular)]
        channels = width
        for _ in range(depth):
            layers += [
                _conv_bn_relu(channels, 2 * channels, 2, circular),
                _conv_bn_relu(2 * channels, 2 * channels, 1, circular),
            ]
            channels *= 2
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"PlanarCNN: expected (batch, channels, H, W), got {tuple(x.shape)}")
        return self.fc(self.features(x).mean(dim=(2, 3)))


class PlanarUNet(nn.Module):
    """2-D U-Net, ``(B, C, H, W) -> (B, out_channels, H, W)`` for any ``H, W``.

    ``depth`` stride-2 downsamplings with channels ``width * 2**i``; the decoder
    upsamples bilinearly to the skip connection's size, concatenates and
    convolves. 1x1 convolution head.

    Parameters
    ----------
    in_channels, out_channels : int
    width : int
        Channels at full resolution.
    depth : int
        Stride-2 downsamplings.
    circular : bool
        Periodic padding in longitude (:class:`LonConv2d`).
    """

    def __init__(
        self, in_channels: int, out_channels: int, width: int = 8, depth: int = 4, circular: bool = True
    ) -> None:
        super().__init__()
        ch = [width * 2**i for i in range(depth + 1)]
        self.stem = nn.Sequential(
            _conv_bn_relu(in_channels, ch[0], 1, circular), _conv_bn_relu(ch[0], ch[0], 1, circular)
        )
        self.down = nn.ModuleList(
            nn.Sequential(
                _conv_bn_relu(ch[i], ch[i + 1], 2, circular), _conv_bn_relu(ch[i + 1], ch[i + 1], 1, circular)
            )
            for i in range(depth)
        )
        self.up = nn.ModuleList(
            nn.Sequential(
                _conv_bn_relu(ch[i + 1] + ch[i], ch[i], 1, circular), _conv_bn_relu(ch[i], ch[i], 1, circular)
            )
            for i in reversed(range(depth))
        )
        self.head = nn.Conv2d(ch[0], out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"PlanarUNet: expected (batch, channels, H, W), got {tuple(x.shape)}")
        x = self.stem(x)
        skips = []
        for block in self.down:
            skips.append(x)
            x = block(x)
        for block, skip in zip(self.up, reversed(skips)):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        return self.head(x)
