"""`vidclf data` on many videos: the first look (every file opened, its first frame decoded, hashed)
against a second look whose facts are remembered, in one run, with a private scan store.

    python benchmarks/data_look.py [--videos 10000] [--out runs/bench_data_look]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from vidclf.synthetic import write_video


def make(root: Path, count: int, classes: int = 10) -> None:
    """`count` distinct tiny videos (2 frames of 16 x 16 noise) in `classes` class folders."""
    rng = np.random.default_rng(0)
    for i in range(count):
        path = root / f"class_{i % classes}" / f"{i:05d}.mp4"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            write_video(str(path), rng.integers(0, 256, (2, 16, 16, 3), dtype=np.uint8))


def look(root: Path, out: Path, env: dict) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "vidclf", "data", "--data.train", str(root), "--output", str(out)],
                   check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=10_000)
    parser.add_argument("--out", default="runs/bench_data_look")
    args = parser.parse_args()
    out = Path(args.out)
    made = time.perf_counter()
    make(out / "videos", args.videos)
    print(f"{args.videos} videos under {out / 'videos'} ({time.perf_counter() - made:.0f} s to make)")
    store = out / "cache"
    (store / "vidclf" / "scan.json").unlink(missing_ok=True)
    env = {**os.environ, "XDG_CACHE_HOME": str(store)}
    first = look(out / "videos", out / "look", env)
    second = look(out / "videos", out / "look", env)
    size = (store / "vidclf" / "scan.json").stat().st_size / 1e6
    print(f"first look (scan + hash): {first:.1f} s; second (remembered): {second:.1f} s "
          f"({first / second:.1f}x faster); scan store {size:.1f} MB")


if __name__ == "__main__":
    main()
