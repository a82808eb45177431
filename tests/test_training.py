"""Training options beyond the defaults: DDP on CPU, a class-balanced sampler, class weights."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from lightning_fabric.utilities.distributed import DistributedSamplerWrapper

from conftest import QUIET, TINY, evaluation, read_csv, vidclf
from vidclf.data.datamodule import VideoDataModule
from vidclf.data.sampler import EpochSampler
from vidclf.synthetic import render_motion, write_video


def last_val(run: Path) -> dict:
    return [row for row in read_csv(run / "metrics.csv") if row.get("val/acc")][-1]


@pytest.mark.slow
def test_ddp_on_cpu_splits_each_epoch_and_syncs_metrics(tiny_data, tmp_path):
    """Two processes each train on half the videos (half the steps), and the validation numbers they
    log together are those of the whole validation set: `validate` of last.ckpt in one process agrees."""
    args = ["fit", *TINY, *QUIET, "--data.batch_size", "2", "--data.train", tiny_data / "train",
            "--data.val", tiny_data / "val", "--trainer.max_epochs", "2", "--trainer.strategy", "ddp",
            "--trainer.devices", "2", "--trainer.accelerator", "cpu", "--trainer.default_root_dir", tmp_path]
    done = subprocess.run([sys.executable, "-m", "vidclf", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"}, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["version_0"]  # both processes log into one run
    run = tmp_path / "version_0"
    rows = read_csv(run / "metrics.csv")
    # 12 training videos, batch 2: 6 steps per epoch in one process, 3 in each of two
    assert {int(r["epoch"]): int(r["step"]) for r in rows} == {0: 2, 1: 5}
    fitted = last_val(run)

    assert vidclf("validate", *QUIET, "--ckpt_path", run / "checkpoints/last.ckpt", "--data.val", tiny_data / "val",
                  "--data.num_workers", "0", "--trainer.default_root_dir", tmp_path) == 0
    alone = last_val(evaluation(run))
    for key in ("val/acc", "val/f1_macro", "val/acc_clip", "val/loss"):
        assert float(alone[key]) == pytest.approx(float(fitted[key]), abs=1e-5), key


@pytest.mark.parametrize("mode", ["shuffle", "balanced"])
def test_epoch_shares_are_disjoint_between_processes_and_change_per_epoch(mode):
    """The composition Lightning builds under DDP: vidclf's sampler inside its DistributedSamplerWrapper."""
    labels = [0] * 9 + [1] * 3
    weights = [1 / 9] * 9 + [1 / 3] * 3 if mode == "balanced" else None
    epochs = {}
    for epoch in range(3):
        shares = []
        for rank in range(2):
            sampler = EpochSampler(len(labels), seed=7, epoch=lambda e=epoch: e, weights=weights)
            shares.append(list(DistributedSamplerWrapper(sampler, num_replicas=2, rank=rank, shuffle=False)))
        draws = [key[2] for share in shares for key in share]
        assert sorted(draws) == list(range(len(labels)))  # every draw of the epoch, in exactly one process
        assert all(key[0] == epoch for share in shares for key in share)
        epochs[epoch] = [key[1] for share in shares for key in share]
        if mode == "shuffle":
            assert sorted(epochs[epoch]) == list(range(len(labels)))  # each video once
    assert epochs[0] != epochs[1] != epochs[2]


@pytest.fixture
def imbalanced(tmp_path) -> Path:
    """train/: 12 rising and 4 falling clips."""
    rng = np.random.default_rng(0)
    for motion, count in (("rising", 12), ("falling", 4)):
        (tmp_path / "train" / motion).mkdir(parents=True)
        for i in range(count):
            write_video(str(tmp_path / "train" / motion / f"{i}.mp4"), render_motion(motion, rng, 12, 32))
    return tmp_path / "train"


def test_balanced_sampler_draws_every_class_equally_often(imbalanced):
    counts = {}
    for sampler in ("shuffle", "balanced"):
        data = VideoDataModule(train=str(imbalanced), sampler=sampler, train_clips=100, num_workers=0)
        data.setup("fit")
        labels = data.datasets["train"].labels
        counts[sampler] = Counter(data.classes[labels[index]] for _, index, _ in data.train_dataloader().sampler)
    assert counts["shuffle"] == {"rising": 1200, "falling": 400}  # every video 100 times
    assert 0.45 < counts["balanced"]["falling"] / 1600 < 0.55


def test_fit_with_class_weights_and_balanced_sampler(imbalanced, tmp_path, capsys):
    args = ["fit", *TINY, *QUIET, "--data.train", imbalanced, "--data.val_split", "0.25", "--trainer.max_epochs", "1",
            "--trainer.default_root_dir", tmp_path / "runs"]
    assert vidclf(*args, "--model.class_weights", "balanced", "--data.sampler", "balanced") == 0
    # 9 rising and 3 falling left for training: N / (K * n) = 12 / 18 and 12 / 6
    assert "balanced class weights from 12 training videos: 0.67 (rising) to 2.00 (falling)" in capsys.readouterr().out
    assert read_csv(tmp_path / "runs/version_0/metrics.csv")
    assert vidclf(*args, "--model.class_weights", "[1.0, 2.0, 3.0]") == 2
    assert "--model.class_weights has 3 numbers for 2 classes" in capsys.readouterr().err


@pytest.mark.slow
def test_compiled_training_writes_ordinary_checkpoints(tiny_data, tmp_path):
    args = [*TINY, *QUIET, "--trainer.default_root_dir", tmp_path]
    assert vidclf("fit", *args, "--model.compile", "true", "--data.train", tiny_data / "train",
                  "--data.val", tiny_data / "val", "--trainer.max_epochs", "1") == 0
    fitted = last_val(tmp_path / "version_0")
    assert vidclf("validate", *args, "--ckpt_path", tmp_path / "version_0/checkpoints/last.ckpt",
                  "--data.val", tiny_data / "val") == 0
    assert float(last_val(evaluation(tmp_path / "version_0"))["val/loss"]) == pytest.approx(float(fitted["val/loss"]), abs=1e-4)


def test_bf16_and_gradient_accumulation(tiny_data, tmp_path):
    """bf16 autocast (on CPU here) and accumulation: half the optimizer steps, metrics written."""
    assert vidclf("fit", *TINY, *QUIET, "--data.batch_size", "2", "--data.train", tiny_data / "train",
                  "--data.val", tiny_data / "val", "--trainer.max_epochs", "1", "--trainer.precision", "bf16-mixed",
                  "--trainer.accumulate_grad_batches", "2", "--trainer.default_root_dir", tmp_path) == 0
    rows = read_csv(tmp_path / "version_0/metrics.csv")
    assert {int(r["step"]) for r in rows} == {2}  # 6 batches of 2, 3 optimizer steps (logged at step 2)
    assert float(last_val(tmp_path / "version_0")["val/loss"]) > 0


@pytest.mark.slow
def test_two_nodes_of_one_process_train_as_one_run(tiny_data, tmp_path):
    """Two `vidclf fit` processes as nodes 0 and 1 (Lightning's plain environment variables, MASTER_ADDR
    127.0.0.1), filling one frame cache at once: both finish, one run directory and checkpoint, each
    node trains on half of every epoch, and the synced validation equals `validate` in one process."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    runs = tmp_path / "runs"
    args = ["fit", *TINY, *QUIET, "--data.batch_size", "2", "--data.train", tiny_data / "train", "--data.val",
            tiny_data / "val", "--data.cache", tmp_path / "cache", "--trainer.max_epochs", "2", "--trainer.strategy",
            "ddp", "--trainer.num_nodes", "2", "--trainer.devices", "1", "--trainer.accelerator", "cpu",
            "--trainer.default_root_dir", runs]
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "PYTHONUNBUFFERED": "1"}
    nodes = [subprocess.Popen([sys.executable, "-m", "vidclf", *map(str, args)], env={**env, "NODE_RANK": str(rank)},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for rank in (1, 0)]
    outputs = [node.communicate(timeout=600)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], [o[-2000:] for o in outputs]
    assert sorted(p.name for p in runs.iterdir()) == ["version_0"]
    run = runs / "version_0"
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert {int(r["epoch"]): int(r["step"]) for r in read_csv(run / "metrics.csv")} == {0: 2, 1: 5}  # 3 steps each
    fitted = last_val(run)
    assert vidclf("validate", *QUIET, "--ckpt_path", run / "checkpoints/last.ckpt", "--data.val", tiny_data / "val",
                  "--data.num_workers", "0", "--trainer.default_root_dir", tmp_path / "alone") == 0
    alone = last_val(evaluation(run))
    for key in ("val/acc", "val/f1_macro", "val/acc_clip", "val/loss"):
        assert float(alone[key]) == pytest.approx(float(fitted[key]), abs=1e-5), key
