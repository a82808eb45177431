"""Real videos from ../shared/videos: a short fit on the typing-vs-exercising set, and predict over
every file in the shared folder (odd codecs, rotation, corrupt data): one row per file."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import QUIET, SHARED_VIDEOS, read_csv, vidclf, write_csv

SET = SHARED_VIDEOS / "dataset_typing_vs_exercise"
REAL = ["--model.backbone", "x3d_xs", "--data.crop", "96", "--data.batch_size", "3", "--data.num_workers", "2"]


def split(name: str) -> list[dict]:
    rows = read_csv(SET / "labels.csv")
    return [{"path": str(SET / r["path"]), "label": r["label"]} for r in rows if r["upstream_split"] == name]


def test_fit_and_predict_real_clips(tmp_path):
    picked = {label: [r for r in split("train") if r["label"] == label][:3] for label in ("typing", "doing_exercises")}
    train = write_csv(tmp_path / "train.csv", picked["typing"] + picked["doing_exercises"])
    val = write_csv(tmp_path / "val.csv", split("val")[:2] + split("val")[-2:])
    assert vidclf("fit", *REAL, *QUIET, "--data.train", train, "--data.val", val, "--trainer.max_epochs", "1",
                  "--trainer.default_root_dir", tmp_path / "runs") == 0
    out = tmp_path / "preds.csv"
    assert vidclf("predict", *QUIET, "--ckpt_path", tmp_path / "runs/version_0/checkpoints/last.ckpt",
                  "--data.predict", val, "--output", out) == 0
    rows = read_csv(out)
    assert [r["path"] for r in rows] == [r["path"] for r in read_csv(val)]
    assert all(r["status"] == "ok" and r["label"] in ("typing", "doing_exercises") for r in rows)


@pytest.mark.slow
def test_predict_over_every_shared_video(trained, tmp_path):
    files = sorted(str(p) for p in SHARED_VIDEOS.rglob("*") if p.is_file())
    out = tmp_path / "all.csv"
    assert vidclf("predict", *QUIET, "--ckpt_path", trained / "checkpoints/best.ckpt",
                  "--data.predict", SHARED_VIDEOS, "--data.num_workers", "2", "--output", out) == 0
    rows = read_csv(out)
    assert sorted(r["path"] for r in rows) == files  # every file has its row
    odd = sorted((Path(r["path"]).name, r["status"][:40]) for r in rows if r["status"] != "ok")
    assert odd == [("labels.csv", "ignored: not a video file name (.csv)")] * 2 + [
        ("manifest.csv", "ignored: not a video file name (.csv)")]
    warned = [(Path(r["path"]).name, r["warning"]) for r in rows if r["warning"]]
    assert len(warned) == 1 and warned[0][0] == "mp4_h264_corrupted_nal.mp4"  # decoded as players show it
    assert warned[0][1].startswith("partly decoded: 1 damaged packet(s) skipped at ")
