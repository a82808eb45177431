"""What vidclf knows about a backbone: its spec (input, normalisation, weights) and the mean/std constants."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Optional

from torch import nn

KINETICS_MEAN = (0.45, 0.45, 0.45)
KINETICS_STD = (0.225, 0.225, 0.225)
TV_MEAN = (0.43216, 0.394666, 0.37645)
TV_STD = (0.22803, 0.22145, 0.216989)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# where a user without weights is sent: the small-data recipe (backbones/small.py)
SCRATCH_RECIPE = "--config from_scratch (small3d, made to learn from a few hundred videos without weights)"


@dataclass(frozen=True)
class BackboneSpec:
    """Everything vidclf needs to know about one backbone.

    frames x rate follows the pytorchvideo zoo: `frames` frames, one every `rate` frames of a
    30 fps video, so a clip lasts frames * rate / 30 seconds whatever the video's own frame rate.
    """

    builder: Optional[Callable[[], nn.Module]]
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
    family: str = "zoo"  # zoo (pytorchvideo, torchvision), hf (transformers) or timm
    source: str = ""  # hf: hub id or folder; timm: model name
    config: dict = field(default_factory=dict, compare=False)  # hf: the checkpoint's config and preprocessor files

    @property
    def clip_seconds(self) -> float:
        return self.frames * self.rate / 30.0
