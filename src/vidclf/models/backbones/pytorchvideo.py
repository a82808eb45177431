"""pytorchvideo's Kinetics-400 zoo: inputs from its model zoo table (../shared/ANCHORS.md), weights as
`.pyth` files holding the state dict under `model_state`."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from torch import nn

from vidclf.models.backbones.spec import KINETICS_MEAN, KINETICS_STD, BackboneSpec

ZOO = "https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics/"


def _hub(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import pytorchvideo.models.hub as hub

        return getattr(hub, name)(pretrained=False)

    return build


_pv = partial(BackboneSpec, mean=KINETICS_MEAN, std=KINETICS_STD, state_key="model_state")

SPECS: dict[str, BackboneSpec] = {
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
}
