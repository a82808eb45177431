"""The Kinetics zoos of pytorchvideo and torchvision: how their networks are built with a new head,
where that head is, and how their published weight files load."""

from __future__ import annotations

import pickle
import urllib.error
from pathlib import Path
from typing import Union

import torch
from torch import nn

from vidclf.errors import VidclfError
from vidclf.models.backbones.spec import SCRATCH_RECIPE, BackboneSpec


def build(name: str, spec: BackboneSpec, num_classes: int, dropout: float = 0.5,
          pretrained: Union[bool, str] = False) -> nn.Module:
    """Build zoo backbone `name` with a fresh `num_classes`-way head that pools over any clip size.

    pretrained: False (random init), True (the official Kinetics-400 weights, downloaded once into
    the torch hub cache) or a local path / URL of a weight file in the same format.
    """
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
    """The new class-scoring layer of a network built by `build` (the rest is the backbone)."""
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
                          f"pass --model.pretrained=/path/to/{Path(where).name}, or train from scratch: {SCRATCH_RECIPE}") from None
    except (RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as err:  # damaged or foreign file
        raise VidclfError(f"{where} is not a readable weight file ({err}); "
                          f"pass --model.pretrained a {name} checkpoint") from None
