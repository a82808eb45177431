"""Shared fixtures: tiny real videos encoded with PyAV at test time, and the real CLI run in-process."""

from __future__ import annotations

import csv
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vidclf.cli import main
from vidclf.synthetic import render_dataset, render_motion, render_tagged, write_video

REPO = Path(__file__).resolve().parents[1]
SHARED_VIDEOS = REPO.parent / "shared" / "videos"

# Small clips so a CPU fit takes seconds: 4 frames at 32 px.
TINY = ["--model.backbone", "x3d_xs", "--data.frames", "4", "--data.rate", "6", "--data.crop", "32",
        "--data.resize", "36", "--data.train_resize", "[32, 40]", "--data.num_clips", "2",
        "--data.batch_size", "4", "--data.num_workers", "0"]
QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]

# (extension, encoder) pairs every container test writes; all decode through the same PyAV path.
CONTAINERS = [(".mp4", "libx264"), (".avi", "mpeg4"), (".mov", "libx264"), (".mkv", "libx264"),
              (".webm", "libvpx-vp9")]


def free_port() -> int:
    """A port on 127.0.0.1 nothing listens on (for a server a test starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def vidclf(*args: str) -> int:
    """Run the vidclf CLI in-process, as `vidclf ARGS` would; returns its exit code."""
    argv, sys.argv = sys.argv, ["vidclf"]
    try:
        main([str(a) for a in args])
    except SystemExit as exit_:
        return exit_.code or 0
    finally:
        sys.argv = argv
    return 0


@pytest.fixture
def fixed_threads(monkeypatch):
    """Runs that must give the same numbers use the same torch thread count: vidclf otherwise picks it
    from the cores free at the start, and float sums differ with it on a busy machine."""
    import torch

    from vidclf.cores import USER_THREADS

    monkeypatch.setenv(USER_THREADS, "1")  # as if the user had set OMP_NUM_THREADS: vidclf leaves torch's alone
    threads = torch.get_num_threads()
    yield threads
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """train/ (3 classes x 4 mp4) and val/ (3 classes x 5, one per container) of 48 px motion clips."""
    root = tmp_path_factory.mktemp("tiny")
    render_dataset(str(root / "train"), per_class=4, seed=0, frames=36, size=48)
    rng = np.random.default_rng(1)
    for motion in ("falling", "rising", "sideways"):
        (root / "val" / motion).mkdir(parents=True)
        for ext, codec in CONTAINERS:
            write_video(str(root / "val" / motion / f"{motion}{ext}"), render_motion(motion, rng, 36, 48),
                        codec=codec)
    return root


@pytest.fixture(scope="session")
def trained(tiny_data, tmp_path_factory) -> Path:
    """A run directory from a real `vidclf fit` on tiny_data (2 epochs)."""
    root = tmp_path_factory.mktemp("runs")
    code = vidclf("fit", *TINY, *QUIET, "--data.train", tiny_data / "train", "--data.val", tiny_data / "val",
                  "--trainer.max_epochs", "2", "--trainer.default_root_dir", root)
    assert code == 0
    return root / "version_0"


@pytest.fixture(scope="session")
def tagged(tmp_path_factory) -> Path:
    """train.csv (24 videos) and val.csv (15) of 48 px clips, each tagged with any of TAGS (some none)."""
    root = tmp_path_factory.mktemp("tagged")
    render_tagged(str(root), "train", 24, seed=0, frames=36, size=48)
    render_tagged(str(root), "val", 15, seed=1, frames=36, size=48)
    return root


@pytest.fixture(scope="session")
def tagged_run(tagged, tmp_path_factory) -> Path:
    """A run directory from a real multi-label `vidclf fit` (2 epochs)."""
    root = tmp_path_factory.mktemp("tagged_runs")
    assert vidclf("fit", *TINY, *QUIET, "--data.allow_empty_labels", "true", "--data.train", tagged / "train.csv",
                  "--data.val", tagged / "val.csv", "--trainer.max_epochs", "2",
                  "--trainer.default_root_dir", root) == 0
    return root / "version_0"


def run_example(name: str, *args) -> list[str]:
    """Lines printed by examples/NAME run with vidclf made unimportable (examples must stand alone)."""
    code = ("import sys, runpy; sys.modules['vidclf'] = None; sys.argv = sys.argv[1:]; "
            "runpy.run_path(sys.argv[0], run_name='__main__')")
    done = subprocess.run([sys.executable, "-c", code, str(REPO / "examples" / name), *map(str, args)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()


def evaluation(run: Path, sub: str = "validate") -> Path:
    """The newest evaluation folder RUN/<sub>/<date>_<time> that `vidclf validate/test` wrote for a run."""
    return max((run / sub).iterdir(), key=lambda p: p.stat().st_mtime_ns)


def write_csv(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def read_csv(path: Path) -> list[dict]:
    """Rows of a CSV vidclf wrote; a file name that is not UTF-8 comes back as the file system gave it."""
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as f:
        return list(csv.DictReader(f))


def copy_shared(names: list[str], dest: Path) -> list[Path]:
    """Copy files from ../shared/videos into a test folder (never into the repo)."""
    dest.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy(SHARED_VIDEOS / n, dest / Path(n).name)) for n in names]


def predict_rows(ckpt, videos, out: Path, *options) -> list[dict]:
    """Rows of `vidclf predict` of `videos` with `options` (e.g. --runtime torch); `ckpt` None: options name the model."""
    model = ["--ckpt_path", ckpt] if ckpt else []
    assert vidclf("predict", *QUIET, *model, "--data.predict", videos, "--output", out,
                  "--data.num_workers", "0", *options) == 0
    return read_csv(out)


def assert_same_rows(rows: list[dict], reference: list[dict], tolerance: float = 1e-4) -> None:
    """Rows of one runtime against another's: same files, statuses and labels (where the reference's
    top two differ by more than `tolerance`), every probability within `tolerance`."""
    key = ("path", "start", "status")  # timeline rows: a window per start
    assert [tuple(r.get(k) for k in key) for r in rows] == [tuple(r.get(k) for k in key) for r in reference]
    for row, ref in zip(rows, reference):
        probs = [k for k in ref if k == "prob" or k.endswith("_prob") or k.startswith("prob_")]
        for key in probs:
            if ref[key]:
                assert float(row[key]) == pytest.approx(float(ref[key]), abs=tolerance), (ref["path"], key)
        margin = float(ref["top1_prob"]) - float(ref["top2_prob"]) if ref.get("top2_prob") else 1.0
        if margin > tolerance:
            assert row.get("label", row.get("labels")) == ref.get("label", ref.get("labels")), ref["path"]
