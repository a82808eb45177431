"""Backbones: each builds with a head of num_classes outputs, pretrained weights load through the real
download code from locally written files in the published formats, and errors name the fix."""

from __future__ import annotations

import importlib

import pytest
import torch
from torch import nn

from conftest import vidclf
from vidclf.errors import VidclfError
from vidclf.models.backbones import BACKBONES, build_backbone, get_spec

LIGHT = ["x3d_xs", "x3d_s", "efficient_x3d_xs", "r3d_18", "mc3_18", "r2plus1d_18", "small3d", "small2plus1d"]


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
        if not spec.fixed_input:
            assert net(torch.randn(1, 3, 8, 64, 64)).shape == (1, 5)


class _Seen(Exception):
    pass


def features(net: nn.Module, where: str, x: torch.Tensor) -> torch.Tensor:
    """The input of module `where`: the backbone's features, before anything vidclf replaced (the
    forward stops there, so a reference head sized for Kinetics input never sees a small clip)."""
    def stop(module, args):
        raise _Seen(args[0])

    handle = net.get_submodule(where).register_forward_pre_hook(stop)
    try:
        net(x)
    except _Seen as seen:
        return seen.args[0]
    finally:
        handle.remove()
    raise AssertionError(f"{where} was not reached")


PV, TV = "pytorchvideo.models.hub", "torchvision.models.video"
# (backbone, library that publishes it, module whose input is the backbone's features, clip T x S)
PRETRAINED = [("x3d_xs", PV, "blocks.5", (4, 64)), ("efficient_x3d_xs", PV, "projection", (4, 64)),
              ("r3d_18", TV, "fc", (4, 64)),
              pytest.param("mvit_base_16x4", PV, "head", (16, 224), marks=pytest.mark.slow),
              ("s3d", TV, "avgpool", (16, 64)),
              pytest.param("mvit_v2_s", TV, "head", (16, 224), marks=pytest.mark.slow),
              ("swin3d_t", TV, "head", (8, 64))]


@pytest.mark.parametrize("name, library, where, size", PRETRAINED)
@pytest.mark.parametrize("how", ["path", "file_url"])
def test_pretrained_weights_give_the_reference_features(name, library, where, size, how, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))  # the download cache, as for a real URL
    torch.manual_seed(0)
    ref = getattr(importlib.import_module(library), name)().eval()
    state = ref.state_dict()
    spec = get_spec(name)
    weights = tmp_path / spec.url.rsplit("/", 1)[1]
    torch.save({spec.state_key: state} if spec.state_key else state, weights)
    source = str(weights) if how == "path" else weights.as_uri()
    net = build_backbone(name, num_classes=3, pretrained=source).eval()
    x = torch.randn(1, 3, size[0], size[1], size[1])
    with torch.no_grad():
        torch.testing.assert_close(features(net, where, x), features(ref, where, x))
    if how == "file_url":
        assert list((tmp_path / "hub").rglob(weights.name))  # went through the hub download cache


def test_every_backbone_has_a_kinetics_weight_url():
    for name, spec in BACKBONES.items():
        if spec.family == "small":  # made to learn from the user's videos: no published weights
            continue
        assert spec.url.startswith(("https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics/",
                                    "https://download.pytorch.org/models/")), name
    tv = importlib.import_module(TV)  # torchvision's own enums name the same files
    for name, enum in [("s3d", "S3D_Weights"), ("mvit_v1_b", "MViT_V1_B_Weights"), ("swin3d_t", "Swin3D_T_Weights"),
                       ("mvit_v2_s", "MViT_V2_S_Weights"), ("swin3d_b", "Swin3D_B_Weights"), ("r3d_18", "R3D_18_Weights")]:
        weights = getattr(tv, enum).KINETICS400_V1
        assert get_spec(name).url == weights.url
        assert get_spec(name).mean == pytest.approx(tuple(weights.transforms().mean))


@pytest.mark.parametrize("name", ["mvit_base_16x4", "mvit_v2_s"])
def test_fixed_input_backbone_names_its_requirement(name, tiny_data, capsys):
    code = vidclf("fit", "--model.backbone", name, "--data.frames", "8", "--data.train", tiny_data / "train",
                  "--trainer.fast_dev_run", "true")
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"{name} takes exactly 16 frames at 224x224" in err, err


def test_offline_download_names_the_url_and_the_fix():
    with pytest.raises(VidclfError, match=r"could not download x3d_xs weights from http://127.0.0.1:9/X3D_XS"
                                          r".*--model.pretrained=/path/to/X3D_XS.pyth, or train from scratch: "
                                          r"--config from_scratch \(small3d"):
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
