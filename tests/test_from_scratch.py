"""The small networks made for training from scratch (small3d, small2plus1d): the whole workflow on real
encoded videos, frame differences computed inside the network (exports take plain clips), weights
carried from one run to the next, the hint for a Kinetics-scale network trained from random weights,
and the one-line refusals."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import onnxruntime as ort
import pytest
import torch

from conftest import QUIET, assert_same_rows, predict_rows, read_csv, run_example, vidclf
from vidclf.models.backbones import build_backbone
from vidclf.models.loss import mixup

SMALL = ["--data.frames", "4", "--data.rate", "6", "--data.crop", "32", "--data.resize", "36",
         "--data.train_resize", "[32, 40]", "--data.num_clips", "2", "--data.batch_size", "4", "--data.num_workers", "0"]


def fit(tiny_data: Path, root: Path, *extra) -> int:
    return vidclf("fit", *SMALL, *QUIET, "--data.train", tiny_data / "train", "--data.val", tiny_data / "val",
                  "--trainer.max_epochs", "2", "--trainer.default_root_dir", root, *extra)


def test_small_network_with_frame_differences_through_the_whole_workflow(tiny_data, tmp_path, capsys):
    model = ["--model.backbone", "small2plus1d", "--model.width", "8", "--model.depth", "3", "--model.diff", "true"]
    assert fit(tiny_data, tmp_path / "runs", *model) == 0
    assert "random weights" not in capsys.readouterr().out  # made for it: no hint
    run = tmp_path / "runs/version_0"
    ckpt = run / "checkpoints/best.ckpt"
    assert vidclf("validate", *QUIET, "--ckpt_path", ckpt, "--data.val", tiny_data / "val") == 0
    assert "vidclf: validate results in" in capsys.readouterr().out
    out = tmp_path / "p.csv"
    assert vidclf("predict", *QUIET, "--ckpt_path", ckpt, "--data.predict", tiny_data / "val", "--output", out,
                  "--runtime", "openvino") == 0
    rows = read_csv(out)
    assert len(rows) == 15 and {r["status"] for r in rows} == {"ok"}
    assert_same_rows(rows, predict_rows(ckpt, tiny_data / "val", tmp_path / "torch.csv", "--runtime", "torch"))
    target = tmp_path / "model.onnx"
    assert vidclf("export", *QUIET, "--ckpt_path", ckpt, "--format", "onnx", "--output", target) == 0
    info = json.loads(Path(f"{target}.json").read_text())
    assert info["check"]["max_abs_diff"] < 1e-4 and info["backbone"] == "small2plus1d"
    [given] = ort.InferenceSession(str(target)).get_inputs()
    assert given.shape[1] == 3  # plain RGB clips: the differences are computed inside
    # the standalone example (numpy, PyAV, onnxruntime; vidclf not importable) scores as predict does
    video = tiny_data / "val/rising/rising.mp4"
    row = next(r for r in rows if Path(r["path"]).name == "rising.mp4")
    label, prob = run_example("predict_onnx.py", target, video)[0].split("\t")
    assert label == row["top1_label"] and float(prob) == pytest.approx(float(row["top1_prob"]), abs=1e-4)


def test_frame_differences_reach_the_network_and_change_what_it_sees():
    torch.manual_seed(0)
    net = build_backbone("small3d", 3, width=8, depth=2, diff=True).eval()
    assert net.blocks[0][0].in_channels == 6
    still = torch.randn(1, 3, 1, 1, 1).expand(1, 3, 4, 16, 16).contiguous()  # one image repeated: no motion
    first = net.blocks[0][0]
    with torch.no_grad():
        moving = still.clone()
        moving[:, :, 2:] += 1.0
        seen = []
        hook = first.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
        for clip in (still, moving):
            net(clip)
        hook.remove()
    assert seen[0][:, 3:].abs().max() == 0  # no change between frames: zero differences
    changed = seen[1][:, 3:]  # frame 2 is one brighter than frame 1: its difference shows it, frame 3's does not
    assert torch.allclose(changed[:, :, 2], torch.ones(())) and changed[:, :, 3].abs().max() < 1e-6


def test_a_run_carries_its_weights_to_new_classes(tiny_data, tmp_path, capsys):
    assert fit(tiny_data, tmp_path / "a", "--model.backbone", "small3d", "--model.width", "8",
               "--model.depth", "2") == 0
    ckpt = tmp_path / "a/version_0/checkpoints/last.ckpt"
    two = tmp_path / "two"
    for motion in ("rising", "falling"):  # other classes: only the head is new
        (two / "train").mkdir(parents=True, exist_ok=True)
        (two / "train" / motion).symlink_to(tiny_data / "train" / motion)
    args = ["fit", *SMALL, *QUIET, "--data.train", two / "train", "--trainer.max_epochs", "1",
            "--model.backbone", "small3d", "--model.width", "8", "--model.depth", "2"]
    assert vidclf(*args, "--model.pretrained", ckpt, "--trainer.default_root_dir", tmp_path / "b") == 0
    assert f"vidclf: loaded small3d weights from {ckpt}" in capsys.readouterr().out
    capsys.readouterr()
    assert vidclf(*args, "--model.width", "16", "--model.pretrained", ckpt, "--trainer.default_root_dir",
                  tmp_path / "c") == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "does not hold small3d weights of this width, depth and input" in err


def test_mixup_blends_each_video_with_a_partner_of_its_batch():
    torch.manual_seed(0)
    video = torch.randint(0, 256, (6, 1, 3, 2, 8, 8), dtype=torch.uint8)
    blended, partner, lam = mixup(video, 0.4)
    assert sorted(partner.tolist()) == list(range(6)) and 0 < lam < 1
    torch.testing.assert_close(blended, lam * video.float() + (1 - lam) * video[partner].float())


def test_fit_with_mixup_trains_on_blended_videos(tiny_data, tmp_path):
    losses = []
    for alpha in ("0", "0.4"):
        root = tmp_path / alpha
        assert fit(tiny_data, root, "--model.backbone", "small3d", "--model.width", "8", "--model.depth", "2",
                   "--model.mixup", alpha, "--trainer.max_epochs", "1") == 0
        losses.append([r["train/loss_epoch"] for r in read_csv(root / "version_0/metrics.csv") if r["train/loss_epoch"]])
    assert losses[0] != losses[1]  # the same seed and clips: only the blending differs


def test_a_kinetics_scale_network_from_random_weights_points_to_the_recipe(tiny_data, tmp_path, capsys):
    assert fit(tiny_data, tmp_path / "runs", "--model.backbone", "x3d_xs", "--trainer.max_epochs", "1") == 0
    out = capsys.readouterr().out
    assert "vidclf: x3d_xs starts from random weights, and it was designed for Kinetics-scale data; with few " \
           "videos try --config from_scratch" in out


@pytest.mark.parametrize("args, says", [
    (["--model.backbone", "x3d_xs", "--model.diff", "true"], "--model.diff: x3d_xs takes RGB frames"),
    (["--model.backbone", "x3d_xs", "--model.width", "16"], "--model.width: x3d_xs has its own shape"),
    (["--model.backbone", "small3d", "--model.pretrained", "true"], "small3d has no published weights"),
    (["--model.backbone", "small3d", "--model.width", "4"], "model.width"),
    (["--model.backbone", "small3d", "--model.depth", "9"], "model.depth"),
])
def test_options_the_small_networks_refuse_are_one_line(args, says, tiny_data, tmp_path, capsys):
    assert fit(tiny_data, tmp_path / "runs", *args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and says in err, err


@pytest.mark.slow
def test_small_network_trains_under_ddp(tiny_data, tmp_path):
    """Two CPU processes (gloo), the recipe's network with frame differences; SyncBatchNorm is CUDA-only."""
    done = subprocess.run([sys.executable, "-m", "vidclf", "fit", *SMALL, *QUIET, "--model.backbone", "small3d",
                           "--model.diff", "true", "--model.width", "8", "--data.train", str(tiny_data / "train"),
                           "--data.val", str(tiny_data / "val"), "--trainer.max_epochs", "1",
                           "--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.accelerator", "cpu",
                           "--trainer.default_root_dir", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert any(r.get("val/acc") for r in read_csv(tmp_path / "version_0/metrics.csv"))
