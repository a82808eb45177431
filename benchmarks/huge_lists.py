"""Starting on huge lists: seconds from `vidclf fit` to the end of its first training step, and the
peak memory, on a path,label list of 20,000 videos never scanned and of 100,000 whose scan is
remembered (the files are hard links to a few tiny videos: distinct paths, a few KB of disk).

    python benchmarks/huge_lists.py [--videos 100000] [--fresh 20000] [--out runs/bench_huge_lists]
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from vidclf.synthetic import render_motion, write_video

CLASSES = 10
LINKS = 50_000


def make(folder: Path, count: int) -> Path:
    """`count` hard links to 1-second 48 px videos (50,000 per file: ext4 allows 65,000 links), and
    the list naming them."""
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(-(-count // LINKS)):
        source = folder / f"source_{k}.mp4"
        if not source.exists():
            write_video(str(source), render_motion("rising", np.random.default_rng(k), 30, 48))
    listing = folder / f"list_{count}.csv"
    with open(listing, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label"])
        for i in range(count):
            path = folder / f"v{i:06d}.mp4"
            if not path.exists():
                os.link(folder / f"source_{i // LINKS}.mp4", path)
            writer.writerow([path.name, f"class_{i % CLASSES}"])
    return listing


WRAPPER = ("import resource, subprocess, sys; "
           "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
           "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def first_step(listing: Path, env: dict) -> tuple[float, float]:
    """(seconds, peak MB of its largest process) of a fit that stops after its first training step."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", WRAPPER, sys.executable, "-m", "vidclf", "fit", "--data.train",
                           str(listing), "--data.frames", "4", "--data.crop", "32", "--data.resize", "36",
                           "--data.train_resize", "[32, 40]", "--data.num_workers", "2", "--trainer.max_steps", "1",
                           "--trainer.limit_val_batches", "0", "--trainer.num_sanity_val_steps", "0",
                           "--trainer.enable_progress_bar", "false",
                           "--trainer.default_root_dir", str(listing.parent / "runs")],
                          check=True, env=env, capture_output=True, text=True)
    return time.perf_counter() - start, int(done.stdout.split()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=100_000)
    parser.add_argument("--fresh", type=int, default=20_000)
    parser.add_argument("--out", default="runs/bench_huge_lists")
    args = parser.parse_args()
    out = Path(args.out)
    made = time.perf_counter()
    small, big = make(out / "videos", args.fresh), make(out / "videos", args.videos)
    print(f"{args.videos} videos (hard links) and lists in {time.perf_counter() - made:.0f} s")
    store = out / "cache"
    (store / "vidclf" / "scan.json").unlink(missing_ok=True)
    env = {**os.environ, "XDG_CACHE_HOME": str(store)}
    seconds, peak = first_step(small, env)
    print(f"{args.fresh:>7} videos, never scanned: {seconds:6.1f} s to the first step (peak {peak:.0f} MB)")
    first_step(big, env)  # scans the rest (not timed)
    seconds, peak = first_step(big, env)
    size = (store / "vidclf" / "scan.json").stat().st_size / 1e6
    print(f"{args.videos:>7} videos, scan remembered: {seconds:6.1f} s to the first step (peak {peak:.0f} MB); "
          f"scan store {size:.1f} MB")


if __name__ == "__main__":
    main()
