"""torchvision's Kinetics-400 video models: inputs from their KINETICS400_V1 weight enums (their
transforms, and the clip_len / frame_rate their accuracy was measured with; rate = 30 / frame_rate),
weights as plain state dicts."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from torch import nn

from vidclf.models.backbones.spec import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    KINETICS_MEAN,
    KINETICS_STD,
    TV_MEAN,
    TV_STD,
    BackboneSpec,
)

TV = "https://download.pytorch.org/models/"


def _tv_hub(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import torchvision.models.video as tvv

        return getattr(tvv, name)(weights=None)

    return build


_tv_resnet = partial(BackboneSpec, frames=16, rate=2, crop=112, resize=128, train_resize=(128, 160),
                     mean=TV_MEAN, std=TV_STD, state_key=None)
_tv = partial(BackboneSpec, crop=224, resize=256, train_resize=(256, 320), state_key=None)

SPECS: dict[str, BackboneSpec] = {
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
