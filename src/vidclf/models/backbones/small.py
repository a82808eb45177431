"""Small networks for training from scratch on a few hundred videos, where no pretrained weights fit.

`small3d`: blocks of a 3x3x3 convolution, BatchNorm, ReLU and a max-pool (spatial in the first block,
space and time after), `width` channels doubling per block; `small2plus1d`: the same with each
convolution factorised into a spatial 1x3x3 and a temporal 3x1x1 one (R(2+1)D). With `diff` the
network computes frame differences from its clip and stacks them with the frames (TSN's RGB-diff),
so an exported model takes the same clips as any other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Union

import torch
from torch import nn

from vidclf.errors import VidclfError
from vidclf.models.backbones.spec import KINETICS_MEAN, KINETICS_STD, BackboneSpec
from vidclf.ranges import DEPTHS, WIDTHS

DEFAULT_WIDTH, DEFAULT_DEPTH = 24, 4

_small = dict(builder=None, frames=8, rate=4, crop=64, resize=72, train_resize=(64, 80), mean=KINETICS_MEAN,
              std=KINETICS_STD, url="", state_key=None, family="small")
SPECS: dict[str, BackboneSpec] = {"small3d": BackboneSpec(**_small), "small2plus1d": BackboneSpec(**_small)}


def _conv(cin: int, cout: int, kernel: tuple[int, int, int]) -> list[nn.Module]:
    return [nn.Conv3d(cin, cout, kernel, padding=tuple(k // 2 for k in kernel), bias=False), nn.BatchNorm3d(cout),
            nn.ReLU(inplace=True)]


def _block(cin: int, cout: int, factorised: bool, pool_time: bool) -> nn.Sequential:
    layers = [*_conv(cin, cout, (1, 3, 3)), *_conv(cout, cout, (3, 1, 1))] if factorised else _conv(cin, cout, (3, 3, 3))
    # ceil_mode: a clip of 1 frame (or an odd size) keeps at least one cell
    return nn.Sequential(*layers, nn.MaxPool3d((2 if pool_time else 1, 2, 2), ceil_mode=True))


class SmallVideoNet(nn.Module):
    """Logits (B, K) from normalised clips (B, 3, T, H, W) of any size."""

    def __init__(self, num_classes: int, width: int = DEFAULT_WIDTH, depth: int = DEFAULT_DEPTH,
                 factorised: bool = False, diff: bool = False, dropout: float = 0.5):
        super().__init__()
        self.diff = diff
        channels = [6 if diff else 3] + [width * 2 ** i for i in range(depth)]
        self.blocks = nn.Sequential(*(_block(cin, cout, factorised, pool_time=i > 0)
                                      for i, (cin, cout) in enumerate(zip(channels, channels[1:]))))
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(channels[-1], num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.diff:  # each frame minus the one before (the first frame repeats the second's difference)
            d = x[:, :, 1:] - x[:, :, :-1]
            x = torch.cat([x, torch.cat([d[:, :, :1], d], 2) if d.shape[2] else torch.zeros_like(x)], 1)
        return self.head(self.pool(self.blocks(x)).flatten(1))


def build(name: str, num_classes: int, dropout: float, pretrained: Union[bool, str], width: int | None,
          depth: int | None, diff: bool) -> SmallVideoNet:
    """`name` (small3d or small2plus1d) with `num_classes` outputs; `pretrained` may be a weight file of the
    same network (a vidclf checkpoint or a state dict), whose classifier is left out."""
    width, depth = width or DEFAULT_WIDTH, depth or DEFAULT_DEPTH
    for option, value, (low, high) in (("width", width, WIDTHS), ("depth", depth, DEPTHS)):
        if not low <= value <= high:
            raise VidclfError(f"--model.{option} {value}: {name} takes {low} to {high}")
    net = SmallVideoNet(num_classes, width, depth, factorised=name == "small2plus1d", diff=diff, dropout=dropout)
    if pretrained is True:
        raise VidclfError(f"{name} has no published weights: it is made to learn from your videos; pass "
                          f"--model.pretrained false, or the path of a {name} checkpoint trained by vidclf")
    if pretrained:
        _load(net, str(pretrained), name)
    return net


def _load(net: SmallVideoNet, where: str, name: str) -> None:
    if not Path(where).is_file():
        raise VidclfError(f"--model.pretrained {where}: no such file; pass a {name} checkpoint trained by vidclf")
    try:
        state = torch.load(where, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any damaged or foreign file is the same one-line error
        raise VidclfError(f"{where} is not a readable weight file ({err}); pass a {name} checkpoint") from None
    if isinstance(state, dict) and "state_dict" in state:  # a vidclf checkpoint: the network is under net.
        state = {k[4:]: v for k, v in state["state_dict"].items() if k.startswith("net.")}
    own = {k: v for k, v in net.state_dict().items() if not k.startswith("head.")}
    if not isinstance(state, dict) or any(k not in state or state[k].shape != v.shape for k, v in own.items()):
        raise VidclfError(f"{where} does not hold {name} weights of this width, depth and input (--model.width, "
                          f"--model.depth, --model.diff as it was trained); pass a matching checkpoint")
    net.load_state_dict({k: state[k] for k in own}, strict=False)
    print(f"vidclf: loaded {name} weights from {where}")


def classifier(net: nn.Module) -> nn.Module | None:
    """The class-scoring layer of a small network; None for other networks."""
    return net.head[-1] if isinstance(net, SmallVideoNet) else None
