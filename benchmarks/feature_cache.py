"""Frozen-backbone fit (a linear probe) with the feature cache vs recomputing the backbone every epoch,
in one run: seconds per epoch (training + validation) of `vidclf fit --model.finetune freeze`, without
and with --data.feature_views, on the demo set, at each backbone's real input size and random weights
(nothing is downloaded: VideoMAE-B from transformers' default config).

    .venv/bin/python benchmarks/feature_cache.py [--backbones x3d_s,videomae_b] [--views 2] [--epochs 10]

Three fits per backbone: recompute (its epochs all cost the same, so --recompute_epochs of them are
timed), the first cached run (computes the features of --views views, then --epochs epochs from them),
and a second cached run (every feature read from the cache: what a learning-rate sweep pays).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl

REPO = Path(__file__).resolve().parents[1]
TIMES = "VIDCLF_BENCH_TIMES"  # where EpochTimer appends its epochs (a JSON lines file)


class EpochTimer(pl.Callback):
    """Seconds of every epoch (training and its validation), appended to the file $VIDCLF_BENCH_TIMES."""

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.started = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        with open(os.environ[TIMES], "a") as f:
            f.write(json.dumps(time.perf_counter() - self.started) + "\n")


def fit(backbone: str, root: Path, epochs: int, views: int | None, cache: Path) -> tuple[float, list[float]]:
    """(seconds of the whole command, seconds of each epoch) of one fit, in its own process."""
    times = root / "times.jsonl"
    args = ["fit", "--model.backbone", backbone, "--model.pretrained", "false", "--model.finetune", "freeze",
            "--data.train", str(REPO / "data/demo/train"), "--data.val", str(REPO / "data/demo/val"),
            "--data.num_clips", "1", "--data.batch_size", "8", "--data.num_workers", "2",
            "--trainer.max_epochs", str(epochs), "--trainer.default_root_dir", str(root),
            "--trainer.enable_progress_bar", "false", "--trainer.num_sanity_val_steps", "0",
            "--trainer.callbacks+=feature_cache.EpochTimer", *(["--data.feature_views", str(views)] if views else [])]
    code = ("import sys; sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[2]); "
            "from train_step import resolve; from vidclf.cli import main; "
            "name = resolve(sys.argv[3]); args = sys.argv[4:]; args[2] = name; main(args)")
    env = {**os.environ, TIMES: str(times), "XDG_CACHE_HOME": str(cache)}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, str(REPO / "benchmarks"), str(REPO / "src"), backbone, *args],
                          env=env, capture_output=True, text=True)
    total = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    said = [line for line in done.stderr.splitlines() if line.startswith("vidclf: features")]
    for line in said:
        print(f"    {line}")
    return total, [json.loads(line) for line in times.read_text().splitlines()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbones", default="x3d_s,videomae_b")
    parser.add_argument("--views", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--recompute_epochs", type=int, default=2)
    options = parser.parse_args()
    if not (REPO / "data/demo/train").is_dir():
        subprocess.run([sys.executable, "-m", "vidclf.synthetic", str(REPO / "data/demo")], check=True)
    print(f"demo set: {sum(1 for _ in (REPO / 'data/demo/train').rglob('*.mp4'))} training, "
          f"{sum(1 for _ in (REPO / 'data/demo/val').rglob('*.mp4'))} validation videos; 1 clip each; batch 8")
    for backbone in options.backbones.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            tmp, cache = Path(tmp), Path(tmp) / "cache"
            print(f"{backbone}:")
            _, plain = fit(backbone, tmp / "plain", options.recompute_epochs, None, cache)
            first_total, first = fit(backbone, tmp / "first", options.epochs, options.views, cache)
            again_total, again = fit(backbone, tmp / "again", options.epochs, options.views, cache)
            recompute = sum(plain[1:] or plain) / len(plain[1:] or plain)  # the first epoch warms up
            cached = sum(again[1:]) / len(again[1:])
            print(f"  recompute: {recompute:.2f} s per epoch ({len(plain)} epochs timed)")
            print(f"  cached:    {cached:.3f} s per epoch ({len(again)} epochs from the cache), "
                  f"{recompute / cached:.0f}x faster per epoch")
            print(f"  first cached run: {first_total:.1f} s in all for features of {options.views} views + "
                  f"{options.epochs} epochs; second run {again_total:.1f} s in all; {options.epochs} epochs of "
                  f"recompute would be {recompute * options.epochs:.0f} s")


if __name__ == "__main__":
    main()
