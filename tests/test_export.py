"""Every backbone exports to every format, and the exported file (run by its own runtime, at a
batch size other than the one traced) gives the eager model's logits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import vidclf
from vidclf.commands import export as ex
from vidclf.models.backbones import BACKBONES, build_backbone, get_spec

LIGHT = {"x3d_xs", "r3d_18", "small3d"}
CASES = [pytest.param(name, fmt, marks=() if name in LIGHT else pytest.mark.slow)
         for name in BACKBONES for fmt in ("onnx", "openvino", "torchscript", "pt2")]


@pytest.mark.parametrize("name, fmt", CASES)
def test_backbone_exports(name, fmt, tmp_path):
    torch.manual_seed(0)
    net = build_backbone(name, 4).eval().to(memory_format=torch.channels_last_3d)
    spec = get_spec(name)
    clip = (3, spec.frames, spec.crop, spec.crop) if spec.fixed_input else (3, 8, 64, 64)
    path = str(tmp_path / f"model{ex.SUFFIX[fmt]}")
    ex.export_model(net, torch.randn(2, *clip), path, fmt)
    y = torch.randn(3, *clip)
    with torch.no_grad():
        expected = net(y).numpy()
    np.testing.assert_allclose(ex.run_exported(path, fmt, y), expected, atol=1e-4, rtol=1e-4)


def test_cli_exports_pt2_with_sidecar(trained, tmp_path, capsys):
    out = tmp_path / "model.pt2"
    assert vidclf("export", "--ckpt_path", trained / "checkpoints/best.ckpt", "--format", "pt2", "--output", out) == 0
    info = json.loads(Path(f"{out}.json").read_text())
    assert info["format"] == "pt2" and info["video"]["num_clips"] == 2  # as in the run: TINY sets 2
    assert info["check"]["max_abs_diff"] < 1e-4
    program = torch.export.load(str(out)).module()
    assert program(torch.randn(5, 3, 4, 32, 32)).shape == (5, 3)
    assert vidclf("export", "--ckpt_path", trained / "checkpoints/best.ckpt", "--format", "pt2", "--output", out) == 2
    assert "already exists" in capsys.readouterr().err
