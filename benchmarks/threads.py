"""Training time with the thread counts vidclf chooses vs torch's default, on this machine.

Runs the demo recipe (configs/demo.yaml: X3D-XS, 2 decoding workers) for a few epochs on the
synthetic demo set, as `vidclf fit` subprocesses, with OMP_NUM_THREADS set to what torch would
use by itself here (its default: the cores it sees), set to 1, and unset (vidclf's choice:
the cores free to the process, vidclf.cores). Wall time per epoch, ratio
against torch's default measured in the same run.

    .venv/bin/python benchmarks/threads.py [--epochs 3] [--per-class 24] [--busy 1]

--busy N runs N other CPU-bound processes meanwhile (a shared, busy machine).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def fit_seconds(data: Path, runs: Path, epochs: int, threads: str | None) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "VIDCLF_USER_THREADS")}
    if threads is not None:
        env["OMP_NUM_THREADS"] = threads
    args = [sys.executable, "-m", "vidclf", "fit", "--config", str(ROOT / "configs/demo.yaml"),
            "--data.train", str(data / "train"), "--data.val", str(data / "val"),
            "--trainer.max_epochs", str(epochs), "--trainer.default_root_dir", str(runs),
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
    start = time.perf_counter()
    subprocess.run(args, env=env, check=True, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - start) / epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--per-class", type=int, default=24)
    parser.add_argument("--busy", type=int, default=0, help="other CPU-bound processes running meanwhile")
    args = parser.parse_args()
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    try:
        run(args)
    finally:
        for hog in hogs:
            hog.kill()


def run(args) -> None:
    from vidclf.cores import compute_threads, core_count
    from vidclf.synthetic import render_dataset

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "demo"
        render_dataset(str(data / "train"), per_class=args.per_class, seed=0)
        render_dataset(str(data / "val"), per_class=max(2, args.per_class // 4), seed=1)
        cores = core_count()
        rows = [(f"torch default ({torch.get_num_threads()} threads)", str(torch.get_num_threads())),
                ("OMP_NUM_THREADS=1", "1"), ("vidclf's choice (free cores)", None)]
        print(f"{cores} cores available, {args.busy} other busy process(es), demo recipe (2 decoding workers), "
              f"{args.epochs} epochs each")
        base = None
        for name, threads in rows:
            if threads is None:
                name = f"vidclf's choice (now {compute_threads()} thread(s))"
            seconds = fit_seconds(data, Path(tmp) / "runs", args.epochs, threads)
            base = base or seconds
            print(f"{name:<32} {seconds:7.1f} s/epoch  {base / seconds:5.2f}x")


if __name__ == "__main__":
    main()
