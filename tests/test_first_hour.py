"""What a newcomer meets first: --help summaries, the end of a fit, a run folder as --ckpt_path, a class
folder given as the training set, and `vidclf data` naming its bad files."""

from __future__ import annotations

import re
import shutil

import pytest

from conftest import QUIET, SHARED_VIDEOS, TINY, read_csv, vidclf, write_csv


def test_every_subcommand_has_its_own_one_line_summary(capsys):
    assert vidclf("--help") == 0
    listing = capsys.readouterr().out.split("Available subcommands:", 1)[1]
    summaries = dict(re.findall(r"^    (\w+)\s+(.+?)(?=^    \w|\Z)", listing, flags=re.M | re.S))
    assert set(summaries) == {"fit", "validate", "test", "predict", "export", "serve", "pretrain", "data"}
    for name, text in summaries.items():
        sentence = " ".join(text.split())
        assert sentence.endswith(".") and sentence.count(". ") == 0, (name, sentence)  # one whole sentence
    assert "held-out test videos" in summaries["test"]


def test_fit_ends_with_where_everything_went(tiny_data, tmp_path, capsys):
    assert vidclf("fit", *TINY, *QUIET, "--data.train", tiny_data / "train", "--data.val", tiny_data / "val",
                  "--trainer.max_epochs", "2", "--trainer.default_root_dir", tmp_path) == 0
    err = capsys.readouterr().out
    run = tmp_path / "version_0"
    accuracies = [float(r["val/acc"]) for r in read_csv(run / "metrics.csv") if r.get("val/acc")]
    best = max(accuracies)
    assert f"vidclf: fit done; run folder {run}" in err
    assert (f"best checkpoint  {run / 'checkpoints' / 'best.ckpt'} (epoch {accuracies.index(best)}, "
            f"val/acc {best:.4f})") in err
    assert f"vidclf predict  --ckpt_path {run / 'checkpoints' / 'best.ckpt'} --data.predict VIDEOS" in err


def test_fit_without_validation_names_its_last_checkpoint(tiny_data, tmp_path, capsys):
    assert vidclf("fit", *TINY, *QUIET, "--data.train", tiny_data / "train", "--trainer.max_epochs", "1",
                  "--trainer.default_root_dir", tmp_path) == 0
    err = capsys.readouterr().out
    assert f"last checkpoint  {tmp_path / 'version_0' / 'checkpoints' / 'last.ckpt'} (no val/acc" in err
    assert "pass --data.val or --data.val_split" in err


def test_a_run_folder_as_ckpt_path_means_its_best_checkpoint(trained, tiny_data, tmp_path, capsys):
    assert vidclf("validate", *QUIET, "--ckpt_path", trained, "--data.val", tiny_data / "val",
                  "--trainer.default_root_dir", tmp_path) == 0
    assert f"--ckpt_path {trained} is a folder: using {trained / 'checkpoints' / 'best.ckpt'}" in capsys.readouterr().err
    assert read_csv(tmp_path / "version_0" / "metrics.csv")[-1]["val/acc"]
    (tmp_path / "empty").mkdir()
    assert vidclf("predict", "--ckpt_path", tmp_path / "empty", "--data.predict", tiny_data / "val") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"a folder without {tmp_path / 'empty' / 'checkpoints' / 'best.ckpt'}" in err[0]


def test_a_class_folder_given_as_the_training_set_says_to_pass_its_parent(tiny_data, tmp_path, capsys):
    assert vidclf("fit", *TINY, "--data.train", tiny_data / "train" / "rising",
                  "--trainer.default_root_dir", tmp_path) == 2
    err = capsys.readouterr().err
    assert "the videos sit directly in this folder" in err and "pass its parent folder" in err


def test_data_names_its_bad_files_and_keeps_an_earlier_look(tiny_data, tmp_path, capsys):
    train = tmp_path / "train"
    shutil.copytree(tiny_data / "train", train)
    for i in range(5):
        (train / "rising" / f"broken{i}.mp4").write_bytes(b"\x00" * 100)
    out = tmp_path / "look"
    assert vidclf("data", "--data.train", train, "--output", out) == 0
    printed = capsys.readouterr().out
    assert printed.count("unreadable: ") == 3 and f"{train / 'rising' / 'broken0.mp4'}" in printed
    assert f"... and 2 more in {out / 'files.csv'}" in printed
    assert vidclf("data", "--data.train", train, "--output", out) == 2
    assert "already holds summary.csv" in capsys.readouterr().err
    assert vidclf("data", "--data.train", train, "--output", out, "--overwrite", "true") == 0


def test_videos_a_list_names_but_the_disk_lacks_are_missing_not_undecodable(tiny_data, tmp_path, capsys):
    rows = [{"path": f"{m}/{m}.mp4", "label": m} for m in ("falling", "rising", "sideways")]  # beside the list: no
    listing = write_csv(tmp_path / "train.csv", rows)
    assert vidclf("fit", *TINY, *QUIET, "--data.train", listing, "--trainer.default_root_dir", tmp_path / "runs") == 2
    err = capsys.readouterr().err
    assert "3 of 3 train videos are missing" in err and f"no such file falling.mp4 in {tmp_path / 'falling'}" in err
    assert "set --data.videos_root" in err
    # the stopped run keeps only its reason: the report naming the missing videos
    report = read_csv(tmp_path / "runs" / "version_0" / "data_report.csv")
    assert [r["status"] for r in report] == [f"missing: no such file {m}.mp4 in {tmp_path / m}"
                                             for m in ("falling", "rising", "sideways")]
    assert not list((tmp_path / "runs" / "version_0").rglob("*.ckpt"))
    shutil.rmtree(tmp_path / "runs")
    videos = sorted((tiny_data / "train").rglob("*.mp4"))
    rows = [{"path": str(p), "label": p.parent.name} for p in videos] + [{"path": "gone/absent.mp4", "label": "rising"}]
    listing = write_csv(tmp_path / "most.csv", rows)
    assert vidclf("fit", *TINY, *QUIET, "--data.train", listing, "--trainer.max_epochs", "1",
                  "--trainer.default_root_dir", tmp_path / "runs") == 0
    assert f"1 of {len(videos) + 1} train videos are missing, e.g. {tmp_path / 'gone' / 'absent.mp4'}" in \
        capsys.readouterr().out
    report = {r["path"]: r["status"] for r in read_csv(tmp_path / "runs" / "version_0" / "data_report.csv")}
    assert report[str(tmp_path / "gone" / "absent.mp4")] == f"missing: no such file absent.mp4 in {tmp_path / 'gone'}"


@pytest.mark.slow
def test_the_offline_quick_path_on_real_clips(tmp_path, capsys):
    """The README's offline line on real clips (typing vs exercising), then the commands the end of the
    fit names, each given the run folder: the whole first hour without a download or a guessed path."""
    data = SHARED_VIDEOS / "dataset_typing_vs_exercise"
    small = ["--data.frames", "4", "--data.crop", "64", "--data.resize", "72", "--data.num_clips", "2",
             "--data.num_workers", "0", *QUIET]
    assert vidclf("fit", "--model.backbone", "x3d_xs", "--model.pretrained", "false", "--data.train", data,
                  "--data.val_split", "0.25", "--trainer.max_epochs", "2", *small,
                  "--trainer.default_root_dir", tmp_path / "runs") == 0
    err = capsys.readouterr().out
    run = tmp_path / "runs" / "version_0"
    assert f"vidclf: fit done; run folder {run}" in err and f"best checkpoint  {run / 'checkpoints' / 'best.ckpt'}" in err
    assert vidclf("predict", "--ckpt_path", run, "--data.predict", data / "typing", "--output",
                  tmp_path / "predictions.csv") == 0
    rows = read_csv(tmp_path / "predictions.csv")
    assert len(rows) == len(list((data / "typing").glob("*.mp4"))) and all(r["status"] == "ok" for r in rows)
    assert vidclf("export", "--ckpt_path", run, "--format", "onnx", "--output", tmp_path / "model.onnx") == 0
    assert (tmp_path / "model.onnx.json").is_file()


def test_fit_given_its_run_folder_continues_that_run(tiny_data, tmp_path, capsys):
    args = ["fit", *TINY, *QUIET, "--data.train", tiny_data / "train", "--data.val", tiny_data / "val",
            "--trainer.default_root_dir", tmp_path]
    assert vidclf(*args, "--trainer.max_epochs", "1") == 0
    run = tmp_path / "version_0"
    assert vidclf(*args, "--trainer.max_epochs", "2", "--ckpt_path", run) == 0
    assert f"--ckpt_path {run} is a folder: using {run / 'checkpoints' / 'last.ckpt'}" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["version_0"]  # resumed in place
    assert [r["epoch"] for r in read_csv(run / "metrics.csv") if r.get("val/acc")] == ["0", "1"]
