"""No input file stops or hangs a run: damaged, index-less, unnamed (not UTF-8) and non-regular
files each get their row; the part of a damaged file that decodes is used; fuzzed files too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import av
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import QUIET, read_csv, vidclf
from mutants import NOT_UTF8, crashers, faststart_mp4, mutate, seed_videos, write_mutants
from vidclf.data.clips import ClipSettings, clip_times, uniform_starts
from vidclf.data.datasets import VideoClips, VideoWindows
from vidclf.data.decode import VideoReader
from vidclf.data.scan import probe
from vidclf.synthetic import render_motion, write_video

CLIP = ClipSettings(frames=4, rate=6, crop=32, resize=36, train_resize=(32, 40))


def read_rows(path: Path) -> list[dict]:
    """Rows of a predictions/report file, CSV or JSON Lines (JSON escapes names that are not UTF-8)."""
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return read_csv(path)


@pytest.fixture(scope="module")
def bad_folder(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    folder = tmp_path_factory.mktemp("bad")
    return folder, crashers(folder)


@pytest.mark.parametrize("suffix", [".csv", pytest.param(".jsonl", marks=pytest.mark.slow)])  # the same rows, another writer
def test_predict_gives_every_bad_file_its_row(trained, bad_folder, tmp_path, suffix):
    """Unknown codec, cut and bit-flipped files, a FIFO, a socket and a name that is not UTF-8:
    predict finishes (in a subprocess, so a hang would fail the test), one row per file."""
    folder, expected = bad_folder
    out = tmp_path / f"preds{suffix}"
    done = subprocess.run([sys.executable, "-m", "vidclf", "predict", *QUIET, "--ckpt_path",
                           str(trained / "checkpoints/best.ckpt"), "--data.predict", str(folder),
                           "--data.num_workers", "2", "--output", str(out)], capture_output=True, text=True,
                          timeout=300, errors="backslashreplace")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    rows = {Path(r["path"]).name: r for r in read_rows(out)}
    assert sorted(rows) == sorted(expected)  # every file, the odd name byte for byte
    assert str(folder / os.fsdecode(NOT_UTF8)) in {r["path"] for r in read_rows(out)}
    for name, outcome in expected.items():
        status, warning = rows[name]["status"], rows[name].get("warning") or ""
        if outcome == "ok":
            assert status == "ok" and not warning, name
        elif outcome == "partly":
            assert status == "ok" and warning.startswith("partly decoded:"), (name, warning)
        elif outcome == "ignored":
            assert status.startswith("ignored: not a regular file ("), (name, status)
        elif outcome == "decodes":
            assert status == "ok", (name, status)
        else:
            assert status.startswith("error: "), (name, status)
    assert rows["unknown_codec.mp4"]["status"] == "error: unknown video codec (FFmpeg has no decoder for it, or its header is damaged)"
    assert "named pipe" in rows["pipe.mp4"]["status"] and "socket" in rows["socket.webm"]["status"]


def test_timeline_and_plain_predict_agree_on_every_bad_file(trained, bad_folder, tmp_path):
    folder, expected = bad_folder
    ckpt = trained / "checkpoints/best.ckpt"
    assert vidclf("predict", *QUIET, "--ckpt_path", ckpt, "--data.predict", folder, "--output", tmp_path / "a.csv") == 0
    assert vidclf("predict", *QUIET, "--ckpt_path", ckpt, "--data.predict", folder, "--output", tmp_path / "b.csv",
                  "--timeline", tmp_path / "windows.csv", "--window", "1.0") == 0
    plain = {Path(r["path"]).name: r["status"].split(":")[0] for r in read_rows(tmp_path / "a.csv")}
    timeline = {Path(r["path"]).name: r["status"].split(":")[0] for r in read_rows(tmp_path / "b.csv")}
    assert plain == timeline and set(plain) == set(expected)
    windows = read_rows(tmp_path / "windows.csv")
    cut = [float(w["start"]) for w in windows if Path(w["path"]).name == "cut_at_50.mp4"]
    assert cut and max(cut) < 4.5  # no windows past where the cut file stops decoding


def test_fit_uses_what_decodes_and_reports_the_rest(bad_folder, tiny_data, tmp_path):
    """A training class folder holding the bad files: the run trains, the report names each file."""
    folder, expected = bad_folder
    train = tmp_path / "train"
    for motion in ("falling", "rising", "sideways"):
        (train / motion).mkdir(parents=True)
        for video in (tiny_data / "train" / motion).iterdir():
            os.link(video, train / motion / video.name)
    os.symlink(folder, train / "rising" / "bad")  # class folders may hold subfolders
    code = vidclf("fit", "--model.backbone", "x3d_xs", "--data.frames", "4", "--data.rate", "6", "--data.crop", "32",
                  "--data.batch_size", "4", "--data.num_workers", "2", "--data.max_failed", "0.5", *QUIET,
                  "--data.train", train, "--trainer.max_epochs", "1", "--trainer.default_root_dir", tmp_path / "runs")
    assert code == 0
    report = {Path(r["path"]).name: r["status"] for r in read_rows(tmp_path / "runs/version_0/data_report.csv")}
    for name, outcome in expected.items():
        if outcome == "error":
            assert report[name].startswith("skipped: "), (name, report.get(name))
        elif outcome == "ignored":
            assert report[name].startswith("ignored: not a regular file"), (name, report.get(name))
        elif outcome == "ok":
            assert name not in report
    partly = [name for name, status in report.items() if status.startswith("partly used: partly decoded:")]
    assert set(partly) <= {n for n, o in expected.items() if o in ("partly", "decodes")} and partly


def test_cut_file_is_scored_from_its_decodable_part(tmp_path):
    """A faststart mp4 cut at 50% states 10 s but decodes to ~4.4 s: views spread over that part
    (not padded copies of its last frame), with a warning; too little left is refused."""
    data = faststart_mp4(tmp_path / "full.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[:len(data) // 2])
    item = VideoClips([str(cut)], None, CLIP, num_clips=5)[0]
    assert "decodes to 4." in item["warning"] and "of 10.00 s" in item["warning"]
    views = item["video"].float()  # (5, C, T, H, W)
    assert all((views[i] - views[i + 1]).abs().mean() > 1 for i in range(4))  # five different moments
    windows = VideoWindows([str(cut)], CLIP, window=1.0, stride=1.0)
    starts = [float(s) for i in range(len(windows)) if "starts" in windows[i] for s in windows[i]["starts"]]
    assert 3.0 <= max(starts) < 4.5 and windows[0].get("warning")  # timeline: windows over the same part
    train = VideoClips([str(cut)], [0], CLIP, train=True)
    items = [train[(0, 0, draw)] for draw in range(8)]  # clips that reach the damage are drawn again before it
    assert any("partly decoded" in it.get("warning", "") for it in items)
    for it in items:  # never a clip padded with the last decodable frame
        frames = it["video"][0].float()  # (C, T, H, W)
        assert all((frames[:, t] - frames[:, t + 1]).abs().mean() > 0.5 for t in range(3))
    (tmp_path / "stub.mp4").write_bytes(data[:len(data) // 20])  # a few frames of 10 s: too little
    assert "error" in VideoClips([str(tmp_path / "stub.mp4")], None, CLIP)[0]


def test_corrupt_packets_are_skipped_as_players_conceal_them():
    from conftest import SHARED_VIDEOS

    path = str(SHARED_VIDEOS / "robustness/corrupted/mp4_h264_corrupted_nal.mp4")
    with VideoReader(path) as reader:
        clips = reader.clips(clip_times(uniform_starts(reader.info.duration, 1.0, 5), 10, 0.1), 32)
        assert clips.shape[:2] == (5, 10) and reader.damaged and "partly decoded: 1 damaged packet" in reader.warning()


def remux(source: Path, target: Path, **options: str) -> Path:
    """The same encoded packets in another container (live=1: Matroska without cues or duration)."""
    with av.open(str(source)) as src, av.open(str(target), "w", options=options) as dst:
        stream = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.size:
                packet.stream = stream
                dst.mux(packet)
    return target


@pytest.fixture(scope="module")
def indexless(tmp_path_factory) -> list[tuple[Path, Path]]:
    """(indexed, index-less) pairs holding identical packets: VP8 and VP9 WebM, H.264 MKV and MPEG-TS."""
    folder = tmp_path_factory.mktemp("indexless")
    frames = render_motion("rising", np.random.default_rng(0), 600, 48)  # 20 s, keyframe every 2 s
    pairs = []
    for name, codec, target, options in [("vp8.webm", "libvpx", "vp8_live.webm", {"live": "1"}),
                                         ("vp9.webm", "libvpx-vp9", "vp9_live.webm", {"live": "1"}),
                                         ("h264.mkv", "libx264", "h264_live.mkv", {"live": "1"}),
                                         ("h264.mkv", "libx264", "h264.ts", {})]:
        if not (folder / name).exists():
            write_video(str(folder / name), frames, codec=codec, g="60")
        pairs.append((folder / name, remux(folder / name, folder / target, **options)))
    return pairs


def test_indexless_files_decode_the_same_frames_as_indexed_copies(indexless):
    times = clip_times(uniform_starts(19.0, 1.0, 10), 8, 0.125)  # ten views: several seeks
    for indexed, bare in indexless:
        with VideoReader(str(indexed)) as a, VideoReader(str(bare)) as b:
            assert np.array_equal(a.clips(times, 48), b.clips(times, 48)), bare.name
            assert not b.warning()


def test_indexless_predictions_equal_indexed_ones(trained, indexless, tmp_path):
    files = [p for pair in indexless for p in pair]
    out = tmp_path / "preds.csv"
    sources = "[" + ", ".join(f'"{p}"' for p in dict.fromkeys(files)) + "]"
    assert vidclf("predict", *QUIET, "--ckpt_path", trained / "checkpoints/best.ckpt", "--data.num_clips", "8",
                  "--data.predict", sources, "--output", out) == 0
    probs = {Path(r["path"]).name: r for r in read_csv(out)}
    for indexed, bare in indexless:
        assert probs[bare.name]["status"] == "ok"
        for column in ("top1_prob", "top2_prob", "top3_prob"):
            assert float(probs[bare.name][column]) == pytest.approx(float(probs[indexed.name][column]), abs=1e-5)


EXCEPTIONS = [OSError("disk gone"), ValueError("bad value"), AttributeError("'NoneType' object has no attribute 'x'"),
              RuntimeError("boom"), MemoryError(), KeyError("k"), UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad"),
              av.error.InvalidDataError(1094995529, "Invalid data found when processing input"), ZeroDivisionError()]
STEPS = ["av.open", "RGBFrames.__call__", "VideoReader._duration", "VideoReader._decode"]


# derandomize: the same examples in every run (CI stays reproducible; the fuzz campaign explores)
@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(error=st.sampled_from(EXCEPTIONS), step=st.sampled_from(STEPS), train=st.booleans())
def test_any_exception_while_reading_a_file_becomes_its_row(error, step, train, tmp_path_factory, monkeypatch):
    """Whatever a library raises while a file is opened or decoded, the file gets an error row
    (in training, validation/predict and timeline items, and in the scan) and nothing propagates."""
    path = tmp_path_factory.getbasetemp() / "boundary.mp4"
    if not path.exists():
        write_video(str(path), render_motion("rising", np.random.default_rng(0), 30, 32))

    def fail(*args, **kwargs):
        raise error

    with monkeypatch.context() as patch:
        if step == "av.open":
            patch.setattr("vidclf.data.decode.av.open", fail)
        else:
            patch.setattr(f"vidclf.data.decode.{step}", fail)  # RGBFrames: as decode.py imported it
        item = VideoClips([str(path)], [0], CLIP, train=train)[(0, 0, 0) if train else 0]
        timeline = VideoWindows([str(path)], CLIP, window=0.5, stride=0.5)
        windows = [timeline[i] for i in range(len(timeline))]
        reason = probe(str(path))["error"]
    assert "video" not in item and item["error"], item
    assert windows and all("video" not in w and w["error"] for w in windows), windows
    assert reason
    if step in ("RGBFrames.__call__", "VideoReader._decode") and not isinstance(error, av.error.FFmpegError):
        assert item["error"].startswith(f"unexpected {type(error).__name__}"), item  # named, not disguised


@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), which=st.integers(0, 5))
def test_a_mutated_file_gives_clips_or_an_error(seed, which, tmp_path_factory):
    folder = tmp_path_factory.getbasetemp() / "hypothesis_seeds"
    seeds = sorted(folder.iterdir()) if len(list(folder.glob("seed.*"))) == 6 else seed_videos(folder)
    _, data = mutate(seeds[which].read_bytes(), np.random.default_rng(seed))
    path = tmp_path_factory.getbasetemp() / f"mutant{seeds[which].suffix}"
    path.write_bytes(data)
    for item in (VideoClips([str(path)], None, CLIP, num_clips=3)[0], VideoClips([str(path)], [0], CLIP, train=True)[0]):
        assert ("video" in item) != ("error" in item)
        if "video" in item:
            assert item["video"].shape[-3:] == (4, 32, 32)


@pytest.mark.slow
def test_fuzzed_files_never_stop_or_hang_predict(trained, tmp_path):
    """600 seeded mutants of mp4/webm/avi/mkv/mov/gif: one predict call finishes in bounded
    time with exit 0, no traceback, one row per file. Prints the counts by outcome."""
    seeds = seed_videos(tmp_path / "seeds")
    kinds = write_mutants(seeds, tmp_path / "mutants", count=600, seed=12)
    out = tmp_path / "fuzz.csv"
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "vidclf", "predict", *QUIET, "--ckpt_path",
                           str(trained / "checkpoints/best.ckpt"), "--data.predict", str(tmp_path / "mutants"),
                           "--data.num_workers", "2", "--output", str(out)], capture_output=True, text=True,
                          timeout=900)
    seconds = time.perf_counter() - start
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    rows = read_rows(out)
    assert sorted(Path(r["path"]).name for r in rows) == sorted(kinds)
    outcome = Counter("ok, partly decoded" if r["status"] == "ok" and r["warning"] else
                      r["status"] if r["status"] == "ok" else r["status"].split(":")[0] + ": " +
                      r["status"].split(":")[1].strip()[:40] for r in rows)
    print(f"\nfuzz: {len(rows)} mutants of {len(seeds)} seeds in {seconds:.0f} s: "
          + "; ".join(f"{n} {k}" for k, n in outcome.most_common()))
