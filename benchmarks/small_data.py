"""Learning from little data on the CPU: validation accuracy at equal wall-clock budgets of

  (a) the demo recipe (X3D-XS from scratch, lr 0.005),
  (b) the same with --model.lr auto (the search counts against the budget),
  (c) `vidclf pretrain` (VideoMAE-tiny) on the training videos for half the budget, then fine-tuning
      its encoder for the other half, and (d) a linear probe of that encoder (frozen) instead,
  (e) the control for (c): the same VideoMAE-tiny fine-tuned from random weights for the whole budget,

on the six-motion set (`python -m vidclf.synthetic DATA --six`: classes no single frame tells apart,
two squares carrying the class among three wandering ones under a panning camera; sizes, frame
rates, lengths and containers vary). Every arm uses the frame cache (its own, filled within its
budget; (d) reuses the cache pretraining filled, as a user would) and the threads vidclf chooses.
Epochs per arm are set so each arm fills its budget on 2 cores, from measured epoch times (startup
and first epoch / later epochs: (a) 33 / 18.7 s, pretraining 22 / 10.3 s, VideoMAE fine-tuning
28 / 21.3 s, linear probe 20 / 10.8 s); --trainer.max_time cuts any arm at 1.2x its budget, and the
table prints every arm's measured time.

    python benchmarks/small_data.py [--minutes 8] [--data data/six] [--out runs/bench_small_data]
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import time
from pathlib import Path

QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
VIDEOMAE = ["--model.frames", "16", "--model.crop", "64", "--data.rate", "2"]  # 1.07 s clips, 4x4 patches


def vidclf(args: list[str], minutes: float) -> float:
    """Run `vidclf ARGS` (capped at 1.2x `minutes`); returns its wall-clock seconds."""
    cap = int(minutes * 60 * 1.2)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "vidclf", *args, *QUIET,
                           "--trainer.max_time", f"00:00:{cap // 60:02d}:{cap % 60:02d}"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode:
        raise SystemExit(f"vidclf {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


def accuracy(run: Path) -> tuple[float, float, int]:
    """(best, last) val/acc of a fit run and its epochs."""
    with open(run / "metrics.csv") as f:
        values = [float(r["val/acc"]) for r in csv.DictReader(f) if r.get("val/acc")]
    return max(values), values[-1], len(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=8.0, help="wall-clock budget of each arm")
    parser.add_argument("--data", default="data/six")
    parser.add_argument("--out", default="runs/bench_small_data")
    parser.add_argument("--per-class", type=int, default=60)
    args = parser.parse_args()
    data, out, minutes = Path(args.data), Path(args.out), args.minutes
    if not (data / "train").is_dir():
        subprocess.run([sys.executable, "-m", "vidclf.synthetic", str(data), "--six", "--per-class",
                        str(args.per_class), "--val-per-class", str(args.per_class // 3)], check=True)
    scale = minutes / 8.0  # epochs below fill 8 minutes on 2 cores
    epochs = lambda n: str(max(1, round(n * scale)))  # noqa: E731
    split = ["--data.train", str(data / "train"), "--data.val", str(data / "val")]
    rows = []

    def fit(name: str, extra: list[str], budget: float) -> tuple[float, Path]:
        root = out / name
        seconds = vidclf(["fit", *extra, *split, "--trainer.default_root_dir", str(root)], budget)  # after --config
        run = sorted(root.glob("version_*"), key=lambda p: int(p.name[8:]))[-1]
        return seconds, run

    cache = lambda arm: ["--data.cache", str(out / f"cache_{arm}")]  # noqa: E731
    shutil.rmtree(out, ignore_errors=True)
    seconds, run = fit("a_scratch", ["--config", "configs/demo.yaml", *cache("a"), "--trainer.max_epochs", epochs(24)],
                       minutes)
    rows.append(("(a) demo recipe, X3D-XS from scratch, lr 0.005", seconds, *accuracy(run)))
    seconds, run = fit("b_lr_auto", ["--config", "configs/demo.yaml", *cache("b"), "--model.lr", "auto",
                                     "--trainer.max_epochs", epochs(22)], minutes)
    rows.append(("(b) demo recipe with --model.lr auto", seconds, *accuracy(run)))

    pre_root = out / "c_pretrain"
    pre_seconds = vidclf(["pretrain", "--data.train", str(data / "train"), *VIDEOMAE, "--model.mask_ratio", "0.75",
                          *cache("c"), "--trainer.max_epochs", epochs(22), "--trainer.default_root_dir",
                          str(pre_root)], minutes / 2)
    encoder = sorted(pre_root.glob("version_*"), key=lambda p: int(p.name[8:]))[-1] / "encoder"
    backbone = ["--model.backbone", f"hf:{encoder}", "--model.pretrained", "true", "--data.num_clips", "3", *cache("c")]
    seconds, run = fit("c_finetune", [*backbone, "--model.lr", "5e-4", "--model.layer_decay", "0.75",
                                      "--trainer.max_epochs", epochs(11)], minutes / 2)
    rows.append(("(c) VideoMAE-tiny: pretrain 1/2, fine-tune 1/2", pre_seconds + seconds, *accuracy(run)))
    seconds, run = fit("d_probe", [*backbone, "--model.finetune", "freeze", "--model.lr", "5e-3",
                                   "--model.dropout", "0.0", "--trainer.max_epochs", epochs(21)], minutes / 2)
    rows.append(("(d) VideoMAE-tiny: pretrain 1/2, linear probe 1/2", pre_seconds + seconds, *accuracy(run)))
    seconds, run = fit("e_videomae_scratch", ["--model.backbone", f"hf:{encoder}", "--model.pretrained", "false",
                                              "--data.num_clips", "3", "--model.lr", "5e-4", *cache("e"),
                                              "--trainer.max_epochs", epochs(22)], minutes)
    rows.append(("(e) VideoMAE-tiny from scratch (control for c)", seconds, *accuracy(run)))

    with open(pre_root.glob("version_*").__next__() / "metrics.csv") as f:
        losses = [float(r["train/loss_epoch"]) for r in csv.DictReader(f) if r.get("train/loss_epoch")]
    print(f"six-motion set: {data} (chance 1/6 = 0.167); budget {minutes:g} min per arm, 2 CPU cores")
    print(f"{'arm':52} {'minutes':>8} {'best val acc':>13} {'last':>6} {'epochs':>7}")
    for name, seconds, best, last, n in rows:
        print(f"{name:52} {seconds / 60:8.1f} {best:13.3f} {last:6.3f} {n:7d}")
    print(f"pretraining reconstruction loss per epoch: {' '.join(f'{v:.3f}' for v in losses)} "
          f"({pre_seconds / max(1, len(losses)):.0f} s per epoch)")


if __name__ == "__main__":
    main()
