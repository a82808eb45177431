"""Backbones: each builds with a head of num_classes outputs, pretrained weights load through the real
download code from locally written files in the published formats, and errors name the fix."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vidclf.backbones import BACKBONES, build_backbone, get_spec
from vidclf.errors import VidclfError

LIGHT = ["x3d_xs", "x3d_s", "r3d_18", "mc3_18", "r2plus1d_18"]


@pytest.mark.parametrize("name", LIGHT)
def test_builds_and_runs_at_a_small_input(name):
    net = build_backbone(name, num_classes=7).eval()
    with torch.no_grad():
        assert net(torch.randn(2, 3, 4, 48, 48)).shape == (2, 7)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in BACKBONES if n not in LIGHT])
def test_heavy_backbones_build_and_run_at_native_input(name):
    spec = get_spec(name)
    net = build_backbone(name, num_classes=5).eval()
    with torch.no_grad():
        assert net(torch.randn(1, 3, spec.frames, spec.crop, spec.crop)).shape == (1, 5)
        assert net(torch.randn(1, 3, 8, 64, 64)).shape == (1, 5)


def features(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Activations just before the classifier (pytorchvideo: blocks[:-1]; torchvision: all but fc)."""
    if hasattr(net, "blocks"):
        for block in net.blocks[:-1]:
            x = block(x)
        return x
    return nn.Sequential(*list(net.children())[:-1])(x)


@pytest.mark.parametrize("name, reference", [
    ("x3d_xs", lambda: __import__("pytorchvideo.models.hub", fromlist=["x3d_xs"]).x3d_xs()),
    ("r3d_18", lambda: __import__("torchvision.models.video", fromlist=["r3d_18"]).r3d_18()),
])
@pytest.mark.parametrize("how", ["path", "file_url"])
def test_pretrained_weights_give_the_reference_features(name, reference, how, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))  # the download cache, as for a real URL
    torch.manual_seed(0)
    ref = reference().eval()
    state = ref.state_dict()
    spec = get_spec(name)
    weights = tmp_path / spec.url.rsplit("/", 1)[1]
    torch.save({spec.state_key: state} if spec.state_key else state, weights)
    source = str(weights) if how == "path" else weights.as_uri()
    net = build_backbone(name, num_classes=3, pretrained=source).eval()
    x = torch.randn(1, 3, 4, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(features(net, x), features(ref, x))
    if how == "file_url":
        assert list((tmp_path / "hub").rglob(weights.name))  # went through the hub download cache


def test_offline_download_names_the_url_and_the_fix():
    with pytest.raises(VidclfError, match=r"could not download x3d_xs weights from http://127.0.0.1:9/X3D_XS"
                                          r".*--model.pretrained=/path/to/X3D_XS.pyth"):
        build_backbone("x3d_xs", 3, pretrained="http://127.0.0.1:9/X3D_XS.pyth")


def test_wrong_or_damaged_weight_file_is_named(tmp_path):
    wrong = tmp_path / "r3d.pth"
    torch.save(build_backbone("r3d_18", 400).state_dict(), wrong)
    with pytest.raises(VidclfError, match="r3d.pth does not hold x3d_xs weights"):
        build_backbone("x3d_xs", 3, pretrained=str(wrong))
    damaged = tmp_path / "X3D_XS.pyth"
    damaged.write_bytes(b"not a checkpoint")
    with pytest.raises(VidclfError, match="X3D_XS.pyth is not a readable weight file"):
        build_backbone("x3d_xs", 3, pretrained=str(damaged))


def test_unknown_backbone_lists_the_valid_names():
    with pytest.raises(VidclfError, match="unknown backbone 'x3d_xxs'; choose one of: x3d_xs, x3d_s"):
        get_spec("x3d_xxs")
