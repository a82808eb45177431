"""Image models per frame (TSN style): `timm:<model name>` runs any timm image model on each frame
and combines the frames with `--model.temporal`: `mean` (TSN: average the frame features) or `conv`
(a residual temporal convolution over the frame features before the average, so the order of
frames counts: rising and falling differ only in it). Input size, mean/std and crop ratio come from
timm's pretrained config of that model; weights through timm's own mechanism (its hub cache, or a
local file with --model.pretrained PATH).
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Optional, Union

import torch
from torch import nn

from vidclf.errors import VidclfError
from vidclf.models.backbones.spec import SCRATCH_RECIPE, BackboneSpec

FRAMES, RATE = 8, 8  # 8 frames over 2.1 s of 30 fps video, TSN's sparse sampling of a short clip
SHORT_NAMES = {"tsn_convnext_t": ("timm:convnext_tiny.in12k_ft_in1k", "8x224 per frame, IN-1k 84.2"),
               "tsn_resnet50": ("timm:resnet50.a1_in1k", "8x224 per frame, IN-1k 80.1"),
               "tsn_vit_b": ("timm:vit_base_patch16_224.augreg2_in21k_ft_in1k", "8x224 per frame, IN-1k 85.1")}


def spec(name: str) -> BackboneSpec:
    """The spec of `timm:<name>` (a model name, optionally with a pretrained tag: convnext_tiny.fb_in1k)."""
    import timm as timm_lib

    if not timm_lib.is_model(name.split(".")[0]):
        close = difflib.get_close_matches(name.split(".")[0], timm_lib.list_models(), n=3, cutoff=0.7)
        raise VidclfError(f"timm:{name}: timm has no such model" + (f"; did you mean {', '.join(close)}?" if close
                          else "; see timm.list_models()"))
    cfg = timm_lib.models.get_pretrained_cfg(name)
    cfg = cfg.to_dict() if cfg is not None else {}
    size = int((cfg.get("input_size") or (3, 224, 224))[-1])
    resize = round(size / float(cfg.get("crop_pct") or 0.875))
    return BackboneSpec(None, FRAMES, RATE, size, resize, (resize, round(resize * 1.25)),
                        tuple(cfg.get("mean") or (0.485, 0.456, 0.406)), tuple(cfg.get("std") or (0.229, 0.224, 0.225)),
                        url=cfg.get("hf_hub_id") or cfg.get("url") or "", state_key=None, family="timm", source=name)


class TemporalConv(nn.Module):
    """Frame features (B, T, D) -> (B, T, D) plus a GELU'd convolution over 3 neighbouring frames
    (zero-initialised: training starts from TSN's average). Conv1d and GELU only, so it exports to
    ONNX, TorchScript and torch.export like the rest, at any frame count."""

    def __init__(self, features: int):
        super().__init__()
        self.conv = nn.Conv1d(features, features, kernel_size=3, padding=1)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + nn.functional.gelu(self.conv(x.transpose(1, 2))).transpose(1, 2)


class PerFrame(nn.Module):
    """An image model on every frame of a clip (B, C, T, H, W), frames combined, then a new head."""

    def __init__(self, image: nn.Module, num_classes: int, dropout: float, temporal: str):
        super().__init__()
        self.image = image  # built with num_classes=0: pooled features (N, D)
        features = image.num_features
        self.temporal = TemporalConv(features) if temporal == "conv" else nn.Identity()
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(features, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        frames = x.transpose(1, 2).reshape(b * t, c, h, w)  # (B * T, C, H, W)
        features = self.image(frames).view(b, t, -1)  # (B, T, D)
        return self.head(self.temporal(features).mean(1))


def build(spec: BackboneSpec, num_classes: int, dropout: float, pretrained: Union[bool, str],
          temporal: str) -> nn.Module:
    import timm as timm_lib

    options: dict = {"pretrained": bool(pretrained), "num_classes": 0}
    if isinstance(pretrained, str):
        if not Path(pretrained).is_file():
            raise VidclfError(f"--model.pretrained {pretrained}: no such file; pass a weight file of "
                              f"{spec.source} (.safetensors, .pth or .bin)")
        options["pretrained_cfg_overlay"] = {"file": str(pretrained)}
    try:
        image = timm_lib.create_model(spec.source, **options)
    except (OSError, RuntimeError) as err:
        if not pretrained:
            raise
        raise VidclfError(f"timm:{spec.source}: could not load its pretrained weights ({type(err).__name__}: "
                          f"{' '.join(str(err).split())[:160]}; offline?); download them once with network "
                          f"access, or pass --model.pretrained /path/to/weights, or train from scratch: {SCRATCH_RECIPE}") from None
    if pretrained:
        print(f"vidclf: loaded timm {spec.source} weights"
              + (f" from {pretrained}" if isinstance(pretrained, str) else ""))
    return PerFrame(image, num_classes, dropout, temporal)


def classifier(net: nn.Module) -> Optional[nn.Module]:
    """The new head of a PerFrame network: the temporal module and the classifier."""
    return nn.ModuleList([net.temporal, net.head]) if isinstance(net, PerFrame) else None
