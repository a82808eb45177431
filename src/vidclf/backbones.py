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
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
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
    fixed_input: bool = False  # positional embeddings sized for exactly `frames` x `crop` x `crop` (MViT)

    @property
    def clip_seconds(self) -> float:
        return self.frames * self.rate / 30.0


def _hub(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import pytorchvideo.models.hub as hub

        return getattr(hub, name)(pretrained=False)

    return build


def _tv_hub(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import torchvision.models.video as tvv

        return getattr(tvv, name)(weights=None)

    return build


_pv = partial(BackboneSpec, mean=KINETICS_MEAN, std=KINETICS_STD, state_key="model_state")
_tv_resnet = partial(BackboneSpec, frames=16, rate=2, crop=112, resize=128, train_resize=(128, 160),
                     mean=TV_MEAN, std=TV_STD, state_key=None)
_tv = partial(BackboneSpec, crop=224, resize=256, train_resize=(256, 320), state_key=None)
TV = "https://download.pytorch.org/models/"

# pytorchvideo: frames/rate/crop/resize from its model zoo (../shared/ANCHORS.md). torchvision: from the
# KINETICS400_V1 weight enums (their transforms, and the clip_len / frame_rate their accuracy was
# measured with; rate = 30 / frame_rate).
BACKBONES: dict[str, BackboneSpec] = {
    "x3d_xs": _pv(_hub("x3d_xs"), 4, 12, 160, 182, (182, 228), url=ZOO + "X3D_XS.pyth"),
    "x3d_s": _pv(_hub("x3d_s"), 13, 6, 160, 182, (182, 228), url=ZOO + "X3D_S.pyth"),
    "x3d_m": _pv(_hub("x3d_m"), 16, 5, 224, 256, (256, 320), url=ZOO + "X3D_M.pyth"),
    "x3d_l": _pv(_hub("x3d_l"), 16, 5, 312, 312, (356, 446), url=ZOO + "X3D_L.pyth"),
    "efficient_x3d_xs": _pv(_hub("efficient_x3d_xs"), 4, 12, 160, 160, (160, 200),
                            url=ZOO + "efficient_x3d_xs_original_form.pyth"),
    "efficient_x3d_s": _pv(_hub("efficient_x3d_s"), 13, 6, 160, 160, (160, 200),
                           url=ZOO + "efficient_x3d_s_original_form.pyth"),
    "slow_r50": _pv(_hub("slow_r50"), 8, 8, 224, 256, (256, 320), url=ZOO + "SLOW_8x8_R50.pyth"),
    "c2d_r50": _pv(_hub("c2d_r50"), 8, 8, 224, 256, (256, 320), url=ZOO + "C2D_8x8_R50.pyth"),
    "i3d_r50": _pv(_hub("i3d_r50"), 8, 8, 224, 256, (256, 320), url=ZOO + "I3D_8x8_R50.pyth"),
    "r2plus1d_r50": _pv(_hub("r2plus1d_r50"), 16, 4, 224, 256, (256, 320), url=ZOO + "R2PLUS1D_16x4_R50.pyth"),
    "csn_r101": _pv(_hub("csn_r101"), 32, 2, 224, 256, (256, 320), url=ZOO + "CSN_32x2_R101.pyth"),
    "slowfast_r50": _pv(_hub("slowfast_r50"), 32, 2, 224, 256, (256, 320), url=ZOO + "SLOWFAST_8x8_R50.pyth",
                        alpha=4),
    "slowfast_r101": _pv(_hub("slowfast_r101"), 32, 2, 224, 256, (256, 320), url=ZOO + "SLOWFAST_8x8_R101.pyth",
                         alpha=4),
    "slowfast_16x8_r101_50_50": _pv(_hub("slowfast_16x8_r101_50_50"), 64, 2, 224, 256, (256, 320),
                                    url=ZOO + "SLOWFAST_16x8_R101_50_50.pyth", alpha=4),
    "mvit_base_16x4": _pv(_hub("mvit_base_16x4"), 16, 4, 224, 224, (224, 280), url=ZOO + "MVIT_B_16x4.pyth",
                          fixed_input=True),
    "mvit_base_32x3": _pv(_hub("mvit_base_32x3"), 32, 3, 224, 224, (224, 280),
                          url=ZOO + "MVIT_B_32x3_f294077834.pyth", fixed_input=True),
    "r3d_18": _tv_resnet(_tv_hub("r3d_18"), url=TV + "r3d_18-b3b3357e.pth"),
    "mc3_18": _tv_resnet(_tv_hub("mc3_18"), url=TV + "mc3_18-a90a0ba3.pth"),
    "r2plus1d_18": _tv_resnet(_tv_hub("r2plus1d_18"), url=TV + "r2plus1d_18-91a641e6.pth"),
    "s3d": _tv(_tv_hub("s3d"), 64, 2, mean=TV_MEAN, std=TV_STD, url=TV + "s3d-d76dad2f.pth"),
    "mvit_v1_b": _tv(_tv_hub("mvit_v1_b"), 16, 4, mean=KINETICS_MEAN, std=KINETICS_STD,
                     url=TV + "mvit_v1_b-dbeb1030.pth", fixed_input=True),
    "mvit_v2_s": _tv(_tv_hub("mvit_v2_s"), 16, 4, mean=KINETICS_MEAN, std=KINETICS_STD,
                     url=TV + "mvit_v2_s-ae3be167.pth", fixed_input=True),
    "swin3d_t": _tv(_tv_hub("swin3d_t"), 32, 2, mean=IMAGENET_MEAN, std=IMAGENET_STD, url=TV + "swin3d_t-7615ae03.pth"),
    "swin3d_s": _tv(_tv_hub("swin3d_s"), 32, 2, mean=IMAGENET_MEAN, std=IMAGENET_STD, url=TV + "swin3d_s-da41c237.pth"),
    "swin3d_b": _tv(_tv_hub("swin3d_b"), 32, 2, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                    url=TV + "swin3d_b_1k-24f7c7c6.pth"),
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


def classifier(net: nn.Module) -> nn.Module:
    """The new class-scoring layer of a network built by build_backbone (the rest is the backbone)."""
    net = net.net if isinstance(net, TwoPathway) else net
    return net.get_submodule(_head_path(net))[-1]


# network class -> dotted path of its Kinetics class-scoring layer ("-1": the last block)
_HEADS = {
    "Net": "blocks.-1.proj",  # pytorchvideo ResNet, X3D, SlowFast, CSN, R(2+1)D: a ResNetBasicHead last
    "MultiscaleVisionTransformers": "head.proj",  # pytorchvideo MViT: VisionTransformerBasicHead
    "EfficientX3d": "projection",  # a FullyConnected around a Linear
    "VideoResNet": "fc",
    "S3D": "classifier.1",  # a 1x1x1 Conv3d after a fixed AvgPool3d(2, 7, 7)
    "MViT": "head.1",  # torchvision MViT: Sequential(Dropout, Linear)
    "SwinTransformer3d": "head",
}


def _head_path(net: nn.Module) -> str:
    module, parts = net, []
    for part in _HEADS[type(net).__name__].split("."):
        part = str(len(module) - 1) if part == "-1" else part
        module = getattr(module, part)
        parts.append(part)
    return ".".join(parts)


def _replace_head(net: nn.Module, num_classes: int, dropout: float) -> None:
    """Swap the Kinetics classifier for Sequential(Dropout, a `num_classes`-way layer) emitting logits.

    The zoo's own dropout and softmax beside it go, and the fixed-size average pools (sized for the
    zoo input; every zoo network uses them only before its head) become global adaptive ones.
    """
    path = _head_path(net)
    parent_path, _, attr = path.rpartition(".")
    parent = net.get_submodule(parent_path)
    old = getattr(parent, attr)
    if isinstance(old, nn.Conv3d):
        new: nn.Module = nn.Conv3d(old.in_channels, num_classes, kernel_size=1)
    else:
        new = nn.Linear(next(m for m in old.modules() if isinstance(m, nn.Linear)).in_features, num_classes)
    for name, child in parent.named_children():
        if isinstance(child, nn.Dropout):
            setattr(parent, name, nn.Identity())
    if getattr(parent, "activation", None) is not None:
        parent.activation = None
    setattr(parent, attr, nn.Sequential(nn.Dropout(dropout), new))
    _adaptive_pools(net)


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
    head_prefix = _head_path(model) + "."
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
