"""One spec per video backbone: how to build it, what input it wants, where its weights live.

A spec is the single place a backbone's preprocessing is stated; the data pipeline and the export
sidecar both read it (`VideoDataModule(backbone=...)`, `export.sidecar`).
"""

from __future__ import annotations

import pickle
import urllib.error
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable, Optional, Union

import torch
from torch import nn

from vidclf.errors import VidclfError

KINETICS_MEAN = (0.45, 0.45, 0.45)
KINETICS_STD = (0.225, 0.225, 0.225)
TV_MEAN = (0.43216, 0.394666, 0.37645)
TV_STD = (0.22803, 0.22145, 0.216989)
ZOO = "https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics/"


@dataclass(frozen=True)
class BackboneSpec:
    """Everything vidclf needs to know about one backbone.

    frames x rate follows the pytorchvideo zoo: `frames` frames, one every `rate` frames of a
    30 fps video, so a clip lasts frames * rate / 30 seconds whatever the video's own frame rate.
    """

    builder: Callable[[], nn.Module]
    frames: int
    rate: int
    crop: int
    resize: int  # eval: short side before the centre crop
    train_resize: tuple[int, int]  # train: short side drawn from this range, then a random crop
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    url: str
    state_key: Optional[str]  # key holding the state dict inside the weight file, None = top level
    alpha: int = 0  # SlowFast: the slow pathway sees every alpha-th frame of the (fast) clip

    @property
    def clip_seconds(self) -> float:
        return self.frames * self.rate / 30.0


def _hub(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import pytorchvideo.models.hub as hub

        return getattr(hub, name)(pretrained=False)

    return build


def _tv(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import torchvision.models.video as tvv

        return getattr(tvv, name)(weights=None)

    return build


_pv = partial(BackboneSpec, mean=KINETICS_MEAN, std=KINETICS_STD, state_key="model_state")
_tvs = partial(BackboneSpec, frames=16, rate=2, crop=112, resize=128, train_resize=(128, 160),
               mean=TV_MEAN, std=TV_STD, state_key=None)

# Frames/rate/crop/resize from the pytorchvideo model zoo table (../shared/ANCHORS.md) and the
# torchvision weight enums (16 frames at 15 fps, resize 128x171, crop 112).
BACKBONES: dict[str, BackboneSpec] = {
    "x3d_xs": _pv(_hub("x3d_xs"), 4, 12, 160, 182, (182, 228), url=ZOO + "X3D_XS.pyth"),
    "x3d_s": _pv(_hub("x3d_s"), 13, 6, 160, 182, (182, 228), url=ZOO + "X3D_S.pyth"),
    "x3d_m": _pv(_hub("x3d_m"), 16, 5, 224, 256, (256, 320), url=ZOO + "X3D_M.pyth"),
    "x3d_l": _pv(_hub("x3d_l"), 16, 5, 312, 312, (356, 446), url=ZOO + "X3D_L.pyth"),
    "slow_r50": _pv(_hub("slow_r50"), 8, 8, 224, 256, (256, 320), url=ZOO + "SLOW_8x8_R50.pyth"),
    "c2d_r50": _pv(_hub("c2d_r50"), 8, 8, 224, 256, (256, 320), url=ZOO + "C2D_8x8_R50.pyth"),
    "i3d_r50": _pv(_hub("i3d_r50"), 8, 8, 224, 256, (256, 320), url=ZOO + "I3D_8x8_R50.pyth"),
    "r2plus1d_r50": _pv(_hub("r2plus1d_r50"), 16, 4, 224, 256, (256, 320), url=ZOO + "R2PLUS1D_16x4_R50.pyth"),
    "csn_r101": _pv(_hub("csn_r101"), 32, 2, 224, 256, (256, 320), url=ZOO + "CSN_32x2_R101.pyth"),
    "slowfast_r50": _pv(_hub("slowfast_r50"), 32, 2, 224, 256, (256, 320), url=ZOO + "SLOWFAST_8x8_R50.pyth",
                        alpha=4),
    "slowfast_r101": _pv(_hub("slowfast_r101"), 32, 2, 224, 256, (256, 320), url=ZOO + "SLOWFAST_8x8_R101.pyth",
                         alpha=4),
    "r3d_18": _tvs(_tv("r3d_18"), url="https://download.pytorch.org/models/r3d_18-b3b3357e.pth"),
    "mc3_18": _tvs(_tv("mc3_18"), url="https://download.pytorch.org/models/mc3_18-a90a0ba3.pth"),
    "r2plus1d_18": _tvs(_tv("r2plus1d_18"), url="https://download.pytorch.org/models/r2plus1d_18-91a641e6.pth"),
}


def get_spec(name: str) -> BackboneSpec:
    """The spec of backbone `name`; an unknown name raises an error listing the valid ones."""
    try:
        return BACKBONES[name]
    except KeyError:
        raise VidclfError(f"unknown backbone {name!r}; choose one of: {', '.join(BACKBONES)}") from None


def build_backbone(name: str, num_classes: int, dropout: float = 0.5,
                   pretrained: Union[bool, str] = False) -> nn.Module:
    """Build backbone `name` with a fresh `num_classes`-way head that pools over any clip size.

    pretrained: False (random init), True (the official Kinetics-400 weights, downloaded once into
    the torch hub cache) or a local path / URL of a weight file in the same format.
    """
    spec = get_spec(name)
    model = spec.builder()
    if pretrained:
        load_pretrained(model, spec, name, pretrained)
    _replace_head(model, num_classes, dropout)
    _exportable(model)
    return TwoPathway(model, spec.alpha) if spec.alpha else model


class TwoPathway(nn.Module):
    """SlowFast takes [slow, fast] clips; the slow one is `alpha` times sparser in time. Deriving it
    here (evenly spaced frames, as PySlowFast does) lets the data, the module and exported files
    all pass one clip (B, C, T, H, W)."""

    def __init__(self, net: nn.Module, alpha: int):
        super().__init__()
        self.net, self.alpha = net, alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = x.shape[2]
        index = torch.linspace(0, frames - 1, max(1, frames // self.alpha), device=x.device).long()
        return self.net([x.index_select(2, index), x])


def classifier(net: nn.Module) -> nn.Linear:
    """The new class-scoring layer of a network built by build_backbone (the rest is the backbone)."""
    net = net.net if isinstance(net, TwoPathway) else net
    parent, attr, _ = _head(net)
    layer = getattr(parent, attr)
    return layer[-1] if isinstance(layer, nn.Sequential) else layer


def _head(model: nn.Module) -> tuple[nn.Module, str, str]:
    """(module owning the final Linear, its attribute name, its state-dict prefix)."""
    if hasattr(model, "blocks"):  # pytorchvideo: blocks[-1] is a ResNetBasicHead with .proj
        last = str(len(model.blocks) - 1)
        return model.blocks[-1], "proj", f"blocks.{last}.proj."
    return model, "fc", "fc."  # torchvision video resnets


def _replace_head(model: nn.Module, num_classes: int, dropout: float) -> None:
    parent, attr, _ = _head(model)
    old: nn.Linear = getattr(parent, attr)
    new = nn.Linear(old.in_features, num_classes)
    if parent is model:  # torchvision: avgpool is already adaptive; put the dropout before fc
        model.fc = nn.Sequential(nn.Dropout(dropout), new)
        return
    # pytorchvideo ResNetBasicHead: an AvgPool3d sized for the zoo input (X3D hides it inside a
    # ProjectedPool, SlowFast in the block before), a softmax applied even in training, a dropout.
    # Pool adaptively, emit logits.
    parent.proj = new
    pooling = [model.blocks[-1]]
    if type(model.blocks[-2]).__name__ == "PoolConcatPathway":  # SlowFast pools each pathway before the head
        pooling.append(model.blocks[-2])
    for block in pooling:
        _adaptive_pools(block)
    parent.activation = None
    parent.dropout = nn.Dropout(dropout) if dropout > 0 else None


def _adaptive_pools(module: nn.Module) -> None:
    """Replace every AvgPool3d below `module` with a global adaptive one."""
    for name, child in module.named_children():
        if isinstance(child, nn.AvgPool3d):
            setattr(module, name, nn.AdaptiveAvgPool3d(1))
        else:
            _adaptive_pools(child)


def _exportable(module: nn.Module) -> None:
    """Make pytorchvideo modules traceable, exportable and compile-friendly, with identical outputs:
    its Swish is a Python autograd Function (TorchScript cannot save it) equal to nn.SiLU, and
    0.1.5 stores numpy.int64 in conv strides and pool kernels (torch.compile graph-breaks on them)."""
    for name, child in module.named_children():
        if type(child).__name__ == "Swish":
            setattr(module, name, nn.SiLU())
        else:
            _exportable(child)
    for attr in ("kernel_size", "stride", "padding", "dilation"):
        value = getattr(module, attr, None)
        if isinstance(value, tuple):
            setattr(module, attr, tuple(int(v) for v in value))


def load_pretrained(model: nn.Module, spec: BackboneSpec, name: str, source: Union[bool, str]) -> None:
    """Load weights in the backbone's published format into `model` (still with its Kinetics head).

    Only the classifier may be missing or unexpected; anything else is an error naming the file.
    """
    where = spec.url if source is True else str(source)
    state = _read_weights(where, name)
    if spec.state_key and spec.state_key in state:
        state = state[spec.state_key]
    head_prefix = _head(model)[2]
    mismatch = {k for k, v in model.state_dict().items()
                if k in state and tuple(state[k].shape) != tuple(v.shape) and not k.startswith(head_prefix)}
    result = model.load_state_dict({k: v for k, v in state.items() if k not in mismatch}, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith(head_prefix)] + sorted(mismatch)
    if missing or result.unexpected_keys:
        bad = (missing + list(result.unexpected_keys))[:5]
        raise VidclfError(f"{where} does not hold {name} weights: {len(missing)} missing/mismatched and "
                          f"{len(result.unexpected_keys)} unexpected keys (e.g. {', '.join(bad)}); "
                          f"pass --model.pretrained a {name} checkpoint")
    print(f"vidclf: loaded {name} weights from {where}")


def _read_weights(where: str, name: str) -> dict:
    try:
        if "://" in where:
            return torch.hub.load_state_dict_from_url(where, map_location="cpu", progress=True, weights_only=True)
        if not Path(where).is_file():
            raise VidclfError(f"--model.pretrained {where}: no such file; pass a path or URL of {name} weights")
        return torch.load(where, map_location="cpu", weights_only=True)
    except (urllib.error.URLError, OSError) as err:
        raise VidclfError(f"could not download {name} weights from {where} ({err}; offline?); "
                          f"pass --model.pretrained=/path/to/{Path(where).name}") from None
    except (RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as err:  # damaged or foreign file
        raise VidclfError(f"{where} is not a readable weight file ({err}); "
                          f"pass --model.pretrained a {name} checkpoint") from None
