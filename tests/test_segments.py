"""Labelled segments of long videos: lists with start,end columns train, evaluate and predict per
segment, without cutting a file."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import QUIET, REPO, TINY, read_csv, vidclf, write_csv
from vidclf.data.cache import FrameCache
from vidclf.data.clips import ClipSettings
from vidclf.data.datasets import VideoClips
from vidclf.data.segments import parse_time, segment, split
from vidclf.data.sources import labelled_videos
from vidclf.errors import VidclfError
from vidclf.synthetic import MOTIONS, render_long, write_video

ORDERS = [["rising", "falling", "sideways"], ["sideways", "rising", "falling"], ["falling", "sideways", "rising"]]


def clock(seconds: float) -> str:
    return f"00:{int(seconds // 60):02d}:{seconds % 60:06.3f}"


@pytest.fixture(scope="module")
def long_videos(tmp_path_factory):
    """train.csv: 4 long videos of 6 two-second segments each (every motion twice, in turns), times
    in seconds and in HH:MM:SS.mmm; val.csv: 2 other long videos."""
    root = tmp_path_factory.mktemp("long")
    rng = np.random.default_rng(0)
    lists = {}
    for name, count in (("train", 4), ("val", 2)):
        rows = []
        for v in range(count):
            motions = ORDERS[v % 3] + ORDERS[(v + 1) % 3]
            path = root / f"{name}_{v}.mp4"
            times = render_long(str(path), motions, 2.0, rng, size=48)
            for i, (motion, (start, end)) in enumerate(zip(motions, times)):
                as_clock = i % 2 == 1
                rows.append({"path": path.name, "label": motion, "start": clock(start) if as_clock else start,
                             "end": clock(end) if as_clock else end})
        lists[name] = write_csv(root / f"{name}.csv", rows)
    return root, lists


def test_times_and_sample_strings():
    assert [parse_time(t) for t in ("12.5", "01:02.5", "01:02:03.250", 7)] == [12.5, 62.5, 3723.25, 7.0]
    for bad in ("abc", "-1", "1:60", "01:75:00", "", "inf"):
        with pytest.raises(ValueError):
            parse_time(bad)
    assert segment("/v/a b#c.mp4", 1.5, 12.0) == "/v/a b#c.mp4#t=1.5,12"
    assert split("/v/a b#c.mp4#t=1.5,12") == ("/v/a b#c.mp4", 1.5, 12.0)
    assert split("/v/a.mp4") == ("/v/a.mp4", None, None)


def test_clips_come_from_their_segment_decoded_or_cached(tmp_path):
    """A video dark for 2 s, then bright for 2 s: every clip of the bright segment is bright."""
    frames = np.concatenate([np.full((60, 48, 48, 3), 20, np.uint8), np.full((60, 48, 48, 3), 230, np.uint8)])
    path = str(tmp_path / "dark_bright.mp4")
    write_video(path, frames)
    clip = ClipSettings(frames=4, rate=6, crop=32, resize=36, train_resize=(32, 40))
    cache = FrameCache(str(tmp_path / "cache"), clip.interval, 40)
    for sample, low, high in ((segment(path, 2.0, 4.0), 200, 255), (segment(path, 0.0, 2.0), 0, 50)):
        for dataset in (VideoClips([sample] * 8, None, clip, train=True), VideoClips([sample] * 8, None, clip, train=True,
                                                                                      cache=cache),
                        VideoClips([sample], None, clip, num_clips=5)):
            for i in range(len(dataset)):
                video = dataset[(0, i, 0)]["video"].float()
                assert low <= video.mean() <= high, (sample, dataset.cache, float(video.mean()))
    # a segment reaching past the end is clipped, with a note; one starting after it is an error
    item = VideoClips([segment(path, 3.0, 9.5)], None, clip)[0]
    assert "video" in item and "clipped" in item["warning"]
    item = VideoClips([segment(path, 5.0, 6.0)], None, clip)[0]
    assert "after the video ends" in item["error"]


def test_segment_lists_fit_validate_and_predict_one_row_per_segment(long_videos, tmp_path):
    root, lists = long_videos
    runs = tmp_path / "runs"
    assert vidclf("fit", *TINY, *QUIET, "--data.train", lists["train"], "--data.val", lists["val"],
                  "--trainer.max_epochs", "1", "--trainer.default_root_dir", runs) == 0
    ckpt = runs / "version_0/checkpoints/last.ckpt"
    assert torch.load(ckpt, weights_only=True)["hyper_parameters"]["class_names"] == sorted(MOTIONS)
    out, timeline = tmp_path / "predictions.csv", tmp_path / "timeline.csv"
    assert vidclf("predict", "--ckpt_path", ckpt, "--data.predict", lists["val"], "--output", out,
                  "--timeline", timeline, "--window", "1") == 0
    rows = read_csv(out)
    assert [(r["path"], float(r["start"]), float(r["end"])) for r in rows] == \
        [(str(root / f"val_{v}.mp4"), 2.0 * i, 2.0 * (i + 1)) for v in range(2) for i in range(6)]
    assert all(r["status"] == "ok" and r["label"] in MOTIONS for r in rows)
    windows = read_csv(timeline)
    assert len(windows) == 12 * 2  # two 1 s windows per 2 s segment
    first = [w for w in windows if w["path"].endswith("val_0.mp4") and w["segment_start"] == "2.0"]
    assert [(float(w["start"]), float(w["end"])) for w in first] == [(2.0, 3.0), (3.0, 4.0)]
    # a list mixing whole videos (no times) and segments: the whole video's row has empty times
    mixed = write_csv(tmp_path / "mixed.csv", [{"path": str(root / "val_1.mp4"), "start": "", "end": ""},
                                               {"path": str(root / "val_1.mp4"), "start": "4", "end": "6"}])
    assert vidclf("predict", "--ckpt_path", ckpt, "--data.predict", mixed, "--output", tmp_path / "mixed_out.csv") == 0
    assert [(r["start"], r["end"]) for r in read_csv(tmp_path / "mixed_out.csv")] == [("", ""), ("4.0", "6.0")]
    with pytest.raises(VidclfError, match=r"mixed.csv:2: start '3', end ''"):
        labelled_videos(str(write_csv(tmp_path / "mixed.csv", [{"path": "a.mp4", "label": "x", "start": "3",
                                                                 "end": ""}])))


def test_segments_of_one_video_in_two_splits_are_refused(long_videos, tmp_path, capsys):
    root, lists = long_videos
    rows = read_csv(lists["train"])
    leak = write_csv(tmp_path / "leak.csv", [{**rows[0], "path": str(root / rows[0]["path"])}])
    args = ["fit", *TINY, *QUIET, "--data.train", lists["train"], "--data.val", leak, "--trainer.max_epochs", "1",
            "--trainer.limit_train_batches", "1", "--trainer.default_root_dir", tmp_path / "runs"]
    assert vidclf(*args) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"vidclf: error: {root / 'train_0.mp4'}: segments of this video are in both train")
    assert "--data.shared_videos true" in err
    assert vidclf(*args, "--data.shared_videos", "true") == 0
    # --data.val_split keeps each video's segments together
    assert vidclf("fit", *TINY, *QUIET, "--data.train", lists["train"], "--data.val_split", "0.25",
                  "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "1",
                  "--trainer.default_root_dir", tmp_path / "split") == 0


def test_bad_segment_rows_are_one_line(long_videos, tmp_path, capsys):
    root, lists = long_videos
    good = {"path": str(root / "train_0.mp4"), "label": "rising"}
    for rows, expected in (
            ([{**good, "start": "2", "end": "1"}], "bad.csv:2: the segment ends (1) at or before it starts (2)"),
            ([{**good, "start": "0", "end": "0:65"}], "bad.csv:2: start '0', end '0:65': give times as seconds"),
            ([{**good, "start": "0"}], "bad.csv: a segment needs both start and end columns")):
        bad = write_csv(tmp_path / "bad.csv", rows)
        assert vidclf("fit", *TINY, "--data.train", bad, "--trainer.default_root_dir", tmp_path / "runs") == 2
        assert expected in capsys.readouterr().err


def test_a_segment_past_the_end_is_clipped_and_reported(long_videos, tmp_path):
    root, lists = long_videos
    rows = [{**r, "path": str(root / r["path"])} for r in read_csv(lists["train"])]
    rows[5]["end"] = "30"  # train_0 lasts 12 s
    rows[11]["start"], rows[11]["end"] = "40", "42"  # train_1: after its end
    listing = write_csv(tmp_path / "train.csv", rows)
    runs = tmp_path / "runs"
    assert vidclf("fit", *TINY, *QUIET, "--data.train", listing, "--data.val", lists["val"], "--data.cache",
                  tmp_path / "cache", "--trainer.max_epochs", "1", "--trainer.default_root_dir", runs) == 0
    report = {r["path"]: r["status"] for r in read_csv(runs / "version_0/data_report.csv")}
    assert report[f"{root / 'train_0.mp4'}#t=10,30"].startswith("partly used: segment ends at 30 s")
    assert "after the video ends" in report[f"{root / 'train_1.mp4'}#t=40,42"]


@pytest.mark.slow
def test_fit_learns_labelled_segments_of_long_videos(tmp_path):
    """8 long videos (6 segments of 2 s each, every motion twice) to train on, 3 others to validate:
    the classifier learns the segments well above chance (1/3)."""
    rng = np.random.default_rng(3)
    lists = {}
    for name, count in (("train", 8), ("val", 3)):
        rows = []
        for v in range(count):
            motions = list(rng.permutation(list(MOTIONS) * 2))
            path = tmp_path / f"{name}_{v}.mp4"
            for motion, (start, end) in zip(motions, render_long(str(path), motions, 2.0, rng, size=64)):
                rows.append({"path": path.name, "label": motion, "start": start, "end": end})
        lists[name] = write_csv(tmp_path / f"{name}.csv", rows)
    runs = tmp_path / "runs"
    assert vidclf("fit", "--config", REPO / "configs/demo.yaml", *QUIET, "--data.train", lists["train"], "--data.val",
                  lists["val"], "--data.num_workers", "1", "--trainer.max_epochs", "14",
                  "--trainer.default_root_dir", runs) == 0
    accuracy = max(float(r["val/acc"]) for r in read_csv(runs / "version_0/metrics.csv") if r.get("val/acc"))
    assert accuracy >= 0.6, accuracy  # 18 validation segments, chance 0.33
