"""Runs that survive: resume after SIGKILL, same seed same result, outputs never half-written or
silently replaced, real-world file names, config mistakes reported as one line."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import QUIET, TINY, read_csv, vidclf, write_csv
from vidclf.data.datamodule import VideoDataModule
from vidclf.data.sources import labelled_videos
from vidclf.io.files import write_rows

SEEDED = [*TINY, *QUIET, "--seed_everything", "7", "--model.dropout", "0.3"]


def last_epoch_metrics(run: Path) -> dict:
    rows = [r for r in read_csv(run / "metrics.csv") if r.get("val/loss")]
    return {k: v for k, v in rows[-1].items() if k.startswith("val/") or k == "epoch"}


@pytest.mark.slow
def test_killed_fit_resumes_and_ends_as_if_never_stopped(tiny_data, tmp_path, fixed_threads):
    args = ["fit", *SEEDED, "--data.train", tiny_data / "train", "--data.val", tiny_data / "val",
            "--data.num_workers", "1", "--trainer.max_epochs", "5"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": str(fixed_threads)}
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "vidclf", *map(str, args), "--trainer.default_root_dir",
                             str(killed)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = killed / "version_0" / "checkpoints" / "last.ckpt"
    deadline = time.time() + 300
    while not last.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # somewhere in epoch 2: after the first checkpoint, before the end
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert vidclf(*args, "--trainer.default_root_dir", killed, "--ckpt_path", "last") == 0
    assert sorted(p.name for p in killed.iterdir()) == ["version_0"]  # resumed in place
    assert torch.load(killed / "version_0/checkpoints/best.ckpt", weights_only=True)["state_dict"]

    straight = tmp_path / "straight"
    assert vidclf(*args, "--trainer.default_root_dir", straight) == 0
    resumed = last_epoch_metrics(killed / "version_0")
    assert resumed["epoch"] == "4"  # all 5 epochs ran
    assert resumed == last_epoch_metrics(straight / "version_0")
    # metrics.csv keeps the epochs logged before the kill, and none twice
    epochs = [{k: v for k, v in r.items() if k.startswith("val/") or k in ("epoch", "step")}
              for r in read_csv(killed / "version_0" / "metrics.csv") if r.get("val/loss")]
    assert epochs == [{k: v for k, v in r.items() if k.startswith("val/") or k in ("epoch", "step")}
                      for r in read_csv(straight / "version_0" / "metrics.csv") if r.get("val/loss")]
    for run in (killed, straight):  # last.ckpt follows every epoch, improved or not
        assert torch.load(run / "version_0/checkpoints/last.ckpt", weights_only=True)["global_step"] == 15


def test_same_seed_same_run_with_workers(tiny_data, tmp_path, fixed_threads):
    runs = []
    for name in ("a", "b"):
        assert vidclf("fit", *SEEDED, "--data.train", tiny_data / "train", "--data.val", tiny_data / "val",
                      "--data.num_workers", "2", "--trainer.max_epochs", "2", "--trainer.log_every_n_steps", "1",
                      "--trainer.default_root_dir", tmp_path / name) == 0
        runs.append(read_csv(tmp_path / name / "version_0" / "metrics.csv"))
    assert runs[0] == runs[1] and any(r.get("train/loss_step") for r in runs[0])
    info = (tmp_path / "a/version_0/run_info.json").read_text()
    assert '"pytorchvideo": "0.1.5"' in info and '"falling"' in info
    assert (tmp_path / "a/version_0/config.yaml").is_file()


def test_resume_without_a_run_says_how_to_start(tmp_path, tiny_data, capsys):
    assert vidclf("fit", *TINY, "--data.train", tiny_data / "train", "--ckpt_path", "last",
                  "--trainer.default_root_dir", tmp_path) == 2
    assert "no run under" in capsys.readouterr().err


def test_outputs_are_never_silently_replaced_or_half_written(trained, tiny_data, tmp_path, capsys):
    out = tmp_path / "preds.csv"
    out.write_text("precious\n")
    predict = ["predict", *QUIET, "--ckpt_path", trained / "checkpoints/best.ckpt",
               "--data.predict", tiny_data / "val" / "rising", "--output"]
    assert vidclf(*predict, out) == 2
    assert "already exists; choose another --output or pass --overwrite true" in capsys.readouterr().err
    assert out.read_text() == "precious\n"
    assert vidclf(*predict, out, "--overwrite", "true") == 0 and len(read_csv(out)) == 5
    blocked = tmp_path / "a_file"
    blocked.write_text("")
    assert vidclf(*predict, blocked / "preds.csv") == 2
    assert "cannot write" in capsys.readouterr().err

    class Unprintable:
        def __str__(self):
            raise RuntimeError("interrupted")

    target = tmp_path / "half.csv"
    with pytest.raises(RuntimeError):
        write_rows(str(target), [{"path": "a"}, {"path": Unprintable()}])
    assert not target.exists() and not list(tmp_path.glob(".half.csv*"))


def test_real_world_names_paths_and_stray_files(tiny_data, tmp_path):
    train = tmp_path / "my train"
    sources = sorted((tiny_data / "train" / "rising").glob("*.mp4"))
    odd_names = ["it's \"quoted\", ok.MP4", "café ünïcode.mp4", "with space.Mov"]
    for cls, names in (("señor café", odd_names), ("two words", odd_names[:2])):
        (train / cls).mkdir(parents=True)
        for src, name in zip(sources, names):
            shutil.copy(src, train / cls / name)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for src in sources[:2]:
        shutil.copy(src, elsewhere / src.name)
    (train / "linked class").symlink_to(elsewhere, target_is_directory=True)
    (train / "two words" / "notes.txt").write_text("not a video")
    (train / "two words" / ".DS_Store").write_bytes(b"\0")
    listing = labelled_videos(str(train))
    assert sorted({label for _, label in listing.items}) == ["linked class", "señor café", "two words"]
    assert len(listing.items) == 7
    runs = tmp_path / "runs"
    assert vidclf("fit", *TINY, *QUIET, "--data.train", train, "--trainer.max_steps", "1",
                  "--trainer.default_root_dir", runs) == 0
    report = {Path(r["path"]).name: r["status"] for r in read_csv(runs / "version_0/data_report.csv")}
    assert report == {"notes.txt": "ignored: not a video file name (.txt)", ".DS_Store": "ignored: hidden file"}
    listing_csv = write_csv(tmp_path / "list, with comma.csv",
                            [{"path": os.path.relpath(p, tmp_path), "label": label} for p, label in listing.items])
    out = tmp_path / "préds.csv"
    assert vidclf("predict", *QUIET, "--ckpt_path", runs / "version_0/checkpoints/last.ckpt",
                  "--data.predict", listing_csv, "--output", out) == 0
    rows = read_csv(out)
    assert [Path(r["path"]).name for r in rows] == [Path(p).name for p, _ in listing.items]
    assert all(r["status"] == "ok" for r in rows)


TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=20)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(TEXT.filter(lambda s: s.strip() == s), TEXT), min_size=1, max_size=8,
                     unique_by=lambda row: str(Path(row[0]))))  # a path listed twice is an error (tested)
def test_csv_round_trip_any_text(rows, tmp_path_factory):
    folder = tmp_path_factory.mktemp("csv")
    listing = write_csv(folder / "list.csv", [{"path": p, "label": label} for p, label in rows])
    assert labelled_videos(str(listing)).items == [(str(folder / p), label) for p, label in rows]


@settings(max_examples=40, deadline=None)
@given(labels=st.lists(TEXT, min_size=2, max_size=12).filter(lambda ls: len(set(ls)) >= 2))
def test_labels_map_to_sorted_class_indices(labels, tmp_path_factory):
    folder = tmp_path_factory.mktemp("labels")
    listing = write_csv(folder / "train.csv", [{"path": f"{i}.mp4", "label": label} for i, label in enumerate(labels)])
    data = VideoDataModule(train=str(listing), num_workers=0, scan=False)  # label mapping only: no files
    data.setup("fit")
    assert data.classes == sorted(set(labels))
    assert [data.classes[i] for i in data.datasets["train"].labels] == labels


@pytest.mark.parametrize("args, expected", [
    (["fit", "--data.batchsize", "3"], "unrecognized arguments: --data.batchsize 3; did you mean --data.batch_size?"),
    (["fit", "--trainer.max_epochs", "abc"], "--trainer.max_epochs expects int, got 'abc'"),
    (["fit", "--config", "TYPO"], "typo.yaml: unknown option(s) model.backbon (did you mean model.backbone?)"),
    (["fit", "--config", "/no/such.yaml"], "--config /no/such.yaml: no such file, and not a config shipped with vidclf"),
])
def test_config_mistakes_are_one_line_with_a_suggestion(args, expected, tmp_path, capsys):
    typo = tmp_path / "typo.yaml"
    typo.write_text("model:\n  backbon: x3d_s\n")
    assert vidclf(*[str(typo) if a == "TYPO" else a for a in args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("vidclf: error: ") and expected in err[0], err


def test_step_checkpoints_refresh_last_from_the_first_epoch(tiny_data, tmp_path, monkeypatch):
    import vidclf.models.classifier as module

    seen = []
    last = tmp_path / "version_0" / "checkpoints" / "last.ckpt"

    def probe(self, outputs, batch, batch_idx):
        seen.append((self.current_epoch, self.global_step,
                     torch.load(last, weights_only=True)["global_step"] if last.exists() else None))

    monkeypatch.setattr(module.VideoClassifier, "on_train_batch_end", probe, raising=False)
    assert vidclf("fit", *TINY, *QUIET, "--data.train", tiny_data / "train", "--data.val", tiny_data / "val",
                  "--trainer.max_epochs", "1", "--checkpoint.every_n_train_steps", "1",
                  "--trainer.default_root_dir", tmp_path) == 0
    # callbacks run before the module's hook: after every step of the first epoch, last.ckpt is that step
    assert [(epoch, file_step) for epoch, _, file_step in seen] == [(0, 1), (0, 2), (0, 3)]
