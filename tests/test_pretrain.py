"""`vidclf pretrain`: VideoMAE masked-video autoencoding on unlabelled videos, then `fit` on its encoder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import QUIET, REPO, read_csv, vidclf
from vidclf.models.classifier import VideoClassifier
from vidclf.models.reconstructions import fill_in, patchify, unpatchify

# A small VideoMAE so CPU steps take a fraction of a second: 4 frames x 32 px in 2 x 8 x 8 cubes.
SMALL = {"patch_size": 8, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
         "intermediate_size": 128, "decoder_hidden_size": 32, "decoder_num_hidden_layers": 1,
         "decoder_num_attention_heads": 2, "decoder_intermediate_size": 64, "norm_pix_loss": False}
PRETRAIN = ["pretrain", *QUIET, "--model.config", json.dumps(SMALL), "--model.frames", "4", "--model.crop", "32",
            "--model.lr", "3e-3", "--data.rate", "6", "--data.batch_size", "4", "--data.num_workers", "0"]


def losses(run: Path, key: str) -> list[float]:
    return [float(r[key]) for r in read_csv(run / "metrics.csv") if r.get(key)]


def test_pretrain_learns_and_fit_fine_tunes_its_encoder_bit_exact(tiny_data, tmp_path, capsys):
    root = tmp_path / "pretrain"
    assert vidclf(*PRETRAIN, "--data.train", tiny_data / "train", "--data.val", tiny_data / "val",
                  "--trainer.max_epochs", "6", "--trainer.default_root_dir", root) == 0
    run = root / "version_0"
    val = losses(run, "val/loss")
    assert len(val) == 6 and val[-1] < 0.9 * val[0], val  # the reconstruction of held-out videos improves
    assert sorted(p.name for p in (run / "reconstructions").iterdir()) == [f"epoch_{i:03d}.png" for i in range(6)]
    assert (run / "reconstructions/epoch_005.png").stat().st_size > 20_000
    encoder = run / "encoder"
    config = json.loads((encoder / "config.json").read_text())
    assert (config["model_type"], config["num_frames"], config["image_size"], config["vidclf_sampling_rate"]) == \
        ("videomae", 4, 32, 6)
    pretrained = torch.load(run / "checkpoints/last.ckpt", weights_only=True)["state_dict"]
    assert torch.equal(load_file(encoder / "model.safetensors")["videomae.embeddings.patch_embeddings.projection.weight"],
                       pretrained["net.videomae.embeddings.patch_embeddings.projection.weight"])

    # every encoder tensor arrives in the classifier as pretrained; the clip settings follow the encoder
    classifier = VideoClassifier(backbone=f"hf:{encoder}", pretrained=True, num_classes=3)
    mine = classifier.net.model.state_dict()
    encoder_keys = [k for k in pretrained if k.startswith("net.videomae.")]
    assert len(encoder_keys) > 20
    assert all(torch.equal(mine[k[4:]], pretrained[k]) for k in encoder_keys)
    capsys.readouterr()
    fit_root = tmp_path / "fit"
    assert vidclf("fit", *QUIET, "--model.backbone", f"hf:{encoder}", "--model.pretrained", "true",
                  "--data.train", tiny_data / "train", "--data.val", tiny_data / "val", "--data.batch_size", "4",
                  "--data.num_workers", "0", "--trainer.max_epochs", "1", "--trainer.default_root_dir", fit_root) == 0
    assert f"loaded videomae weights from {encoder}" in capsys.readouterr().out
    data = torch.load(fit_root / "version_0/checkpoints/last.ckpt", weights_only=True)["datamodule_hyper_parameters"]
    assert data["backbone"] == f"hf:{encoder}"
    out = tmp_path / "predictions.csv"
    assert vidclf("predict", "--ckpt_path", fit_root / "version_0/checkpoints/last.ckpt", "--data.predict",
                  tiny_data / "val", "--output", out) == 0
    assert len(read_csv(out)) == 15


def test_patches_round_trip_and_visible_cubes_stay_as_they_were():
    frames = torch.rand(2, 4, 3, 16, 24)
    cubes = patchify(frames, 2, 8)
    assert cubes.shape == (2, 2 * 2 * 3, 2 * 8 * 8, 3)
    assert torch.equal(unpatchify(cubes, tuple(frames.shape), 2, 8), frames)

    class Config:
        tubelet_size, patch_size, norm_pix_loss = 2, 8, False

    mask = torch.zeros(2, 12, dtype=torch.bool)
    mask[:, :6] = True
    rebuilt, hidden = fill_in(frames, mask, torch.zeros(2, 6, 2 * 8 * 8 * 3), Config)
    assert torch.equal(rebuilt[hidden == 0], frames[hidden == 0]) and (rebuilt[hidden == 1] == 0).all()
    assert hidden.mean() == 0.5


@pytest.mark.slow
def test_killed_pretrain_resumes_and_ends_as_if_never_stopped(tiny_data, tmp_path):
    args = [*PRETRAIN, "--data.train", tiny_data / "train", "--data.val", tiny_data / "val",
            "--data.num_workers", "1", "--trainer.max_epochs", "4"]
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "vidclf", *map(str, args), "--trainer.default_root_dir",
                             str(killed)], env={**os.environ, "PYTHONUNBUFFERED": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = killed / "version_0" / "checkpoints" / "last.ckpt"
    deadline = time.time() + 300
    while not last.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # after the first checkpoint, before the end
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert vidclf(*args, "--trainer.default_root_dir", killed, "--ckpt_path", "last") == 0
    assert sorted(p.name for p in killed.iterdir()) == ["version_0"]  # resumed in place
    straight = tmp_path / "straight"
    assert vidclf(*args, "--trainer.default_root_dir", straight) == 0
    a, b = (torch.load(root / "version_0/checkpoints/last.ckpt", weights_only=True) for root in (killed, straight))
    assert a["global_step"] == b["global_step"] == 12
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in b["state_dict"])
    assert losses(killed / "version_0", "val/loss") == losses(straight / "version_0", "val/loss")
    assert load_file(killed / "version_0/encoder/model.safetensors").keys() == \
        load_file(straight / "version_0/encoder/model.safetensors").keys()


def last_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    return err[-1] if err else ""


def test_bad_pretrain_input_is_one_line(tiny_data, tmp_path, capsys):
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    for i in range(3):
        (garbage / f"{i}.mp4").write_bytes(os.urandom(2000))
    base = [*PRETRAIN, "--trainer.max_epochs", "1", "--trainer.default_root_dir", tmp_path / "runs"]
    assert vidclf(*base, "--data.train", garbage) == 2
    err = last_error(capsys)
    assert err.startswith("vidclf: error: 3 of 3 train videos cannot be decoded") and "max_failed" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no videos here")
    assert vidclf(*base, "--data.train", empty) == 2
    assert "no video files found" in last_error(capsys)
    assert vidclf(*base, "--data.train", tiny_data / "train", "--model.preset", "huge") == 2
    err = last_error(capsys)
    assert err.startswith("vidclf: error:") and "model.preset" in err and "huge" in err
    for ratio in ("1.0", "0", "1.5"):
        assert vidclf(*base, "--data.train", tiny_data / "train", "--model.mask_ratio", ratio) == 2
        err = last_error(capsys)
        assert err.startswith("vidclf: error:") and "mask_ratio" in err, err
    assert vidclf(*base, "--data.train", tiny_data / "train", "--model.mask_ratio", "0.05") == 2
    assert "hides 0 of the 16 patches" in last_error(capsys)
    assert vidclf(*base, "--data.train", tiny_data / "train", "--model.frames", "5") == 2
    assert "multiple of 2" in last_error(capsys)
    assert vidclf(*base, "--data.train", tiny_data / "train", "--model.config", tmp_path / "nope.json") == 2
    assert "--model.config" in last_error(capsys)
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").rglob("*.ckpt"))


def test_a_pretrain_checkpoint_given_to_fit_or_predict_says_what_to_do(tiny_data, tmp_path, capsys):
    root = tmp_path / "pretrain"
    assert vidclf(*PRETRAIN, "--data.train", tiny_data / "train", "--trainer.max_epochs", "1",
                  "--trainer.limit_train_batches", "1", "--trainer.default_root_dir", root) == 0
    ckpt = root / "version_0/checkpoints/last.ckpt"
    capsys.readouterr()
    assert vidclf("predict", "--ckpt_path", ckpt, "--data.predict", tiny_data / "val") == 2
    err = last_error(capsys)
    assert "a `vidclf pretrain` checkpoint" in err and f"--model.backbone hf:{root / 'version_0' / 'encoder'}" in err
    # resumed, it continues its own model: a model option given again is named as ignored (as fit does)
    assert vidclf("pretrain", "--ckpt_path", root / "version_0", "--model.mask_ratio", "0.5",
                  "--trainer.max_epochs", "2") == 0
    assert "vidclf: warning: ignored --model.mask_ratio 0.5: a resumed pretraining continues the model" in \
        capsys.readouterr().err


def test_the_small_data_recipe_runs_both_steps(tiny_data, tmp_path, capsys):
    recipe = REPO / "configs/recipes/pretrain_then_finetune_small.yaml"
    step = ["--trainer.max_steps", "1", "--trainer.limit_val_batches", "1", "--trainer.num_sanity_val_steps", "0",
            "--data.batch_size", "2", "--data.num_workers", "0", "--data.cache", tmp_path / "cache"]
    assert vidclf("--config", recipe, "pretrain", *QUIET, *step, "--data.train", tiny_data / "train",
                  "--trainer.default_root_dir", tmp_path / "pretrain") == 0
    encoder = tmp_path / "pretrain/version_0/encoder"
    assert json.loads((encoder / "config.json").read_text())["image_size"] == 64
    assert vidclf("--config", recipe, "fit", *QUIET, *step, "--data.train", tiny_data / "train", "--data.val",
                  tiny_data / "val", "--model.backbone", f"hf:{encoder}", "--data.num_clips", "1",
                  "--trainer.default_root_dir", tmp_path / "fit") == 0
    assert (tmp_path / "fit/version_0/checkpoints/last.ckpt").is_file()
    # a misspelt key in a subcommand's section of the file is one line, as in any config file
    bad = tmp_path / "bad.yaml"
    bad.write_text(recipe.read_text().replace("mask_ratio:", "mask_ration:"))
    assert vidclf("--config", bad, "pretrain", "--data.train", tiny_data / "train") == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"vidclf: error: {bad}: unknown option(s) model.mask_ration (did you mean model.mask_ratio?)")


@pytest.mark.slow  # two processes started by DDP (about 25 s)
def test_pretrain_under_ddp_splits_each_epoch_and_syncs_its_validation_loss(tiny_data, tmp_path):
    """Two CPU processes pretrain one run: each takes half of every epoch's steps, one encoder and one
    set of figures are written, and the validation loss they log together is the whole validation set's:
    the same weights evaluated in one process give it again."""
    import pytorch_lightning as pl

    from vidclf.data.unlabelled import UnlabelledVideos
    from vidclf.models.pretraining import MaskedVideoModel

    args = [*PRETRAIN, "--data.batch_size", "2", "--data.train", tiny_data / "train", "--data.val", tiny_data / "val",
            "--trainer.max_epochs", "2", "--trainer.strategy", "ddp", "--trainer.devices", "2",
            "--trainer.accelerator", "cpu", "--trainer.default_root_dir", tmp_path]
    done = subprocess.run([sys.executable, "-m", "vidclf", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"}, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["version_0"]  # both processes log into one run
    run = tmp_path / "version_0"
    rows = read_csv(run / "metrics.csv")
    assert {int(r["epoch"]): int(r["step"]) for r in rows if r.get("val/loss")} == {0: 2, 1: 5}  # 12 videos, 2 x 2
    assert sorted(p.name for p in (run / "reconstructions").iterdir()) == ["epoch_000.png", "epoch_001.png"]
    checkpoint = torch.load(run / "checkpoints/last.ckpt", weights_only=True)
    assert torch.equal(load_file(run / "encoder/model.safetensors")["videomae.embeddings.patch_embeddings.projection.weight"],
                       checkpoint["state_dict"]["net.videomae.embeddings.patch_embeddings.projection.weight"])

    pl.seed_everything(42)  # the run's seed: the validation masks follow it
    model = MaskedVideoModel(**{k: v for k, v in checkpoint["hyper_parameters"].items() if not k.startswith("_")})
    model.load_state_dict(checkpoint["state_dict"])
    data = UnlabelledVideos(train=str(tiny_data / "train"), val=str(tiny_data / "val"), frames=4, rate=6, crop=32,
                            batch_size=2, num_workers=0)
    alone = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                       enable_model_summary=False).validate(model, datamodule=data, verbose=False)[0]["val/loss"]
    assert alone == pytest.approx(losses(run, "val/loss")[-1], rel=1e-5)
