"""Every shipped config parses and runs a training step (recipes on tiny data, fragments composed
with the demo recipe). Pretrained recipes load a locally written zoo-format file, never the network."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import QUIET, read_csv, vidclf
from tiny_models import tiny_hf, tiny_timm_weights, tiny_words
from vidclf.models.backbones import get_spec

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
LIGHT = {"demo.yaml", "recipes/from_scratch.yaml", "recipes/x3d_s.yaml", "recipes/efficient_x3d_xs.yaml",
         "recipes/videomae_b.yaml", "recipes/timesformer_b.yaml", "recipes/vivit_b.yaml", "recipes/vjepa2_l.yaml",
         "recipes/tsn_convnext_t.yaml", "recipes/siglip2_b16_probe.yaml", "recipes/xclip_b32.yaml"}
# Recipes of the other families run on a tiny model of the same architecture, from a local folder / file.
TINY_HF = {"videomae_b": "videomae", "timesformer_b": "timesformer", "vivit_b": "vivit", "vjepa2_l": "vjepa2"}
TINY_WORDS = {"siglip2_b16": "siglip", "xclip_b32": "xclip"}  # video-text models, with a tokenizer
TWO_STEP = {"recipes/pretrain_then_finetune_small.yaml"}  # pretrain: and fit: sections (tests/test_pretrain.py)
TRACKERS = {"trackers/mlflow.yaml", "trackers/wandb.yaml"}  # they write into the working folder: tests/test_trackers.py
# trainer/ddp.yaml starts two processes (20 s): slow, like the DDP test of tests/test_training.py
ALL = [pytest.param(name, marks=() if name in LIGHT or (name.startswith("trainer/") and name != "trainer/ddp.yaml")
                    else pytest.mark.slow)
       for name in sorted(p.relative_to(CONFIGS).as_posix() for p in CONFIGS.rglob("*.yaml"))
       if name not in TWO_STEP | TRACKERS]
# One short step on tiny videos; clip shape stays the recipe's own (from its backbone).
STEP = ["--trainer.max_steps", "1", "--trainer.limit_val_batches", "1", "--trainer.num_sanity_val_steps", "0",
        "--data.batch_size", "2", "--data.num_workers", "0", "--data.num_clips", "1"]


def local_weights(backbone: str, folder: Path) -> Path:
    """A weight file in the backbone's published format, as its URL would serve it."""
    spec = get_spec(backbone)
    state = spec.builder().state_dict()  # the unmodified zoo / torchvision model
    path = folder / spec.url.rsplit("/", 1)[1]
    torch.save({spec.state_key: state} if spec.state_key else state, path)
    return path


@pytest.mark.parametrize("name", ALL)
def test_config_runs_a_step(name, tiny_data, tmp_path, monkeypatch):
    config = CONFIGS / name
    base = [] if name.startswith(("recipes/", "demo")) else ["--config", CONFIGS / "demo.yaml"]
    args = ["fit", *base, "--config", config, *QUIET, *STEP, "--data.train", tiny_data / "train",
            "--data.val", tiny_data / "val", "--trainer.default_root_dir", tmp_path / "runs"]
    if name in ("trainer/gpu.yaml", "trainer/ddp.yaml"):
        args += ["--trainer.accelerator", "cpu"]  # no GPU in CI: same config, bf16 autocast on CPU
    text = config.read_text()
    backbone = next((line.split(":")[1].split("#")[0].strip() for line in text.splitlines() if "backbone:" in line), None)
    if backbone in TINY_HF:  # pretrained: true loads the tiny checkpoint the way a hub download loads
        args += ["--model.backbone", f"hf:{tiny_hf(TINY_HF[backbone], tmp_path / 'hf')}"]
    elif backbone in TINY_WORDS:
        args += ["--model.backbone", f"hf:{tiny_words(TINY_WORDS[backbone], tmp_path / 'words')}"]
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the feature cache
    elif backbone and backbone.startswith("tsn_"):
        args += ["--model.backbone", "timm:test_convnext",
                 "--model.pretrained", tiny_timm_weights("test_convnext", tmp_path / "test_convnext.pth")]
    elif "pretrained: true" in text:
        args += ["--model.pretrained", local_weights(backbone, tmp_path)]
    if "cache:" in text:  # a recipe's cache folder is relative to where it runs: here the test's own
        args += ["--data.cache", tmp_path / "cache"]
    if "strategy: ddp" in text:  # DDP starts its processes by running the command again: not in-process
        args += ["--trainer.devices", "2", "--trainer.sync_batchnorm", "false"]  # SyncBatchNorm is CUDA-only
        done = subprocess.run([sys.executable, "-m", "vidclf", *map(str, args)], capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
    else:
        assert vidclf(*args) == 0
    assert (tmp_path / "runs/version_0/checkpoints/last.ckpt").is_file()
    assert read_csv(tmp_path / "runs/version_0/metrics.csv")
