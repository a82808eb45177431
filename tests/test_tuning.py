"""`--model.lr auto` (a learning-rate range test before fitting, its rule) and `--data.batch_size auto`
(Lightning's batch-size search), and runs that repeat them exactly without searching again."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import yaml

from conftest import QUIET, TINY, vidclf
from vidclf.errors import VidclfError
from vidclf.synthetic import write_video
from vidclf.tuning.lr import MIN_LR, pick_lr


def test_the_rule_takes_the_steepest_descent_below_a_tenth_of_the_minimum():
    lrs = list(np.logspace(-6, 0, 60))
    # falls from 1e-5 to a minimum at 1e-2, then diverges
    losses = [2.0 - math.tanh(math.log10(lr) + 4) if lr < 1e-2 else 0.5 + (math.log10(lr) + 2) ** 2 for lr in lrs]
    lr, rule = pick_lr(lrs, losses)
    assert MIN_LR <= lr <= 1e-3 and rule.startswith("steepest")
    # no clear fall (from scratch, nothing learned within the search): a tenth of where it diverges
    flat = [1.05 + 0.01 * math.log10(lr / 1e-6) + (0.5 if lr > 2e-2 else 0.0) for lr in lrs]
    lr, rule = pick_lr(lrs, flat)
    assert 1e-3 <= lr <= 3e-3 and "fell less than 5%" in rule
    with pytest.raises(VidclfError, match="neither fell nor diverged at any rate"):
        pick_lr(lrs, [1.0 + 0.01 * (i % 2) for i in range(60)])
    with pytest.raises(VidclfError, match="stopped after 8 steps"):
        pick_lr(lrs[:8], losses[:8])


@pytest.fixture(scope="module")
def bright_dark(tmp_path_factory):
    """Two classes a single frame tells apart (dark and bright noise): the loss falls within a short search."""
    root = tmp_path_factory.mktemp("bright_dark")
    rng = np.random.default_rng(0)
    for label, level in (("dark", 40), ("bright", 210)):
        (root / label).mkdir()
        for i in range(6):
            frames = np.clip(rng.normal(level, 30, (24, 40, 40, 3)), 0, 255).astype(np.uint8)
            write_video(str(root / label / f"{i}.mp4"), frames)
    return root


def test_lr_auto_searches_saves_the_rate_and_a_rerun_or_resume_does_not_search(bright_dark, tmp_path, capsys):
    args = ["fit", *TINY, *QUIET, "--data.train", bright_dark, "--data.val_split", "0.34", "--trainer.max_epochs", "1",
            "--trainer.default_root_dir", tmp_path]
    assert vidclf(*args, "--model.lr", "auto", "--lr_find_steps", "30") == 0
    err = capsys.readouterr().err
    assert "vidclf: searching the learning rate: 30 steps" in err and "vidclf: learning rate " in err
    run = tmp_path / "version_0"
    lr = yaml.safe_load((run / "config.yaml").read_text())["model"]["lr"]
    assert isinstance(lr, float) and MIN_LR <= lr < 1
    checkpoint = torch.load(run / "checkpoints/last.ckpt", map_location="cpu", weights_only=True)
    assert checkpoint["hyper_parameters"]["lr"] == lr
    assert (run / "lr_find.png").stat().st_size > 10_000
    assert not list(tmp_path.glob(".lr_find*"))  # the search's temporary checkpoint is gone
    # the saved config reruns with that rate, no search
    assert vidclf("fit", "--config", run / "config.yaml", "--trainer.default_root_dir", tmp_path / "again") == 0
    assert "searching the learning rate" not in capsys.readouterr().err
    # a resumed run keeps the checkpoint's rate
    assert vidclf(*args[:-4], "--trainer.max_epochs", "2", "--trainer.default_root_dir", tmp_path,
                  "--ckpt_path", "last") == 0
    assert "searching the learning rate" not in capsys.readouterr().err
    assert torch.load(run / "checkpoints/last.ckpt", weights_only=True)["hyper_parameters"]["lr"] == lr


def test_a_search_that_finds_nothing_is_one_line(tiny_data, tmp_path, capsys):
    assert vidclf("fit", *TINY, "--data.train", tiny_data / "train", "--trainer.max_epochs", "1",
                  "--model.lr", "auto", "--lr_find_steps", "5", "--trainer.default_root_dir", tmp_path) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("vidclf: error: the learning-rate search stopped after 5 steps") and "lr_find.png" in err


@pytest.mark.slow
def test_batch_size_auto_searches_saves_the_size_and_a_resume_does_not_search(tiny_data, tmp_path, capsys):
    args = ["fit", *TINY, *QUIET, "--data.train", tiny_data / "train", "--data.val", tiny_data / "val",
            "--data.batch_size", "auto"]
    assert vidclf(*args, "--trainer.max_epochs", "1", "--trainer.default_root_dir", tmp_path / "no_cap") == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("vidclf: error: --data.batch_size auto finds the largest batch that fits in GPU memory")
    assert "--batch_size_max" in err

    root = tmp_path / "runs"
    assert vidclf(*args, "--batch_size_max", "6", "--trainer.max_epochs", "1", "--trainer.default_root_dir", root) == 0
    assert "vidclf: searching the largest batch that fits (CPU), up to 6" in capsys.readouterr().err
    run = root / "version_0"
    size = yaml.safe_load((run / "config.yaml").read_text())["data"]["batch_size"]
    assert isinstance(size, int) and 4 <= size <= 6  # 2, 4, then the cap (less Lightning's 5% margin)
    checkpoint = torch.load(run / "checkpoints/last.ckpt", map_location="cpu", weights_only=True)
    assert checkpoint["datamodule_hyper_parameters"]["batch_size"] == size
    assert checkpoint["global_step"] == math.ceil(12 / size)  # the epoch ran at the size found
    assert vidclf(*args, "--batch_size_max", "6", "--trainer.max_epochs", "2", "--trainer.default_root_dir", root,
                  "--ckpt_path", "last") == 0
    assert "searching the largest batch" not in capsys.readouterr().err
    checkpoint = torch.load(run / "checkpoints/last.ckpt", map_location="cpu", weights_only=True)
    assert checkpoint["global_step"] == 2 * math.ceil(12 / size)
    # with a checkpoint, `auto` is the size its run found; without one there is no trained model to validate
    assert vidclf("validate", "--ckpt_path", run / "checkpoints/last.ckpt", "--data.val", tiny_data / "val",
                  "--data.batch_size", "auto") == 0
    assert vidclf("validate", *TINY, "--data.train", tiny_data / "train", "--data.val", tiny_data / "val",
                  "--data.batch_size", "auto", "--trainer.default_root_dir", tmp_path / "v") == 2
    assert "validate needs a trained model: pass --ckpt_path" in capsys.readouterr().err
