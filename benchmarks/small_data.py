"""Learning from little data on the CPU, without pretrained weights: validation accuracy at equal
wall-clock budgets of

  scratch:  `--config from_scratch` (small3d with frame differences, the recipe for this case),
  x3d:      the demo recipe (X3D-XS from scratch, lr 0.005),
  lr_auto:  the demo recipe with --model.lr auto (the search counts against the budget),
  videomae: `vidclf pretrain` (VideoMAE-tiny) on the training videos for half the budget, then
            fine-tuning its encoder for the other half; probe: a linear probe of that encoder instead;
  videomae_scratch: the same VideoMAE-tiny fine-tuned from random weights (the control for videomae),

on the six-motion set (`python -m vidclf.synthetic DATA --six`: classes no single frame tells apart,
two squares carrying the class among three wandering ones under a panning camera; sizes, frame
rates, lengths and containers vary) or the real typing-vs-exercise clips of ../shared/videos (30% held
out, stratified). Every arm uses its own frame cache, filled within its budget, and the threads vidclf
picks. Epochs are set so each arm fills its budget on 2 cores, from measured epoch times (SECONDS);
--trainer.max_time cuts an arm at 1.2x its budget. Per arm: minutes, best and last validation
accuracy, epochs, the accuracy of each class (`vidclf validate` of its best checkpoint), and a
learning curve (validation accuracy against minutes) in OUT/learning_curves.png.

    python benchmarks/small_data.py [--minutes 30] [--set six|real] [--arms scratch,x3d,videomae]
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
REAL = Path(__file__).resolve().parents[2] / "shared/videos/dataset_typing_vs_exercise"
# seconds of the first epoch (startup and filling the cache) and of each later one, measured on 2 cores
SECONDS = {"six": {"scratch": (40, 15.5), "x3d": (33, 18.7), "pretrain": (22, 10.3), "videomae": (28, 21.3),
                   "probe": (20, 10.8)},
           "real": {"scratch": (25, 5.0), "x3d": (25, 6.0), "pretrain": (25, 3.0), "videomae": (25, 6.0),
                    "probe": (25, 3.0)}}


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


def curve(run: Path) -> list[float]:
    """Validation accuracy after each epoch of a fit run."""
    with open(run / "metrics.csv") as f:
        return [float(r["val/acc"]) for r in csv.DictReader(f) if r.get("val/acc")]


def per_class(run: Path, val: list[str]) -> str:
    """`class accuracy` pairs from `vidclf validate` of the run's best checkpoint."""
    subprocess.run([sys.executable, "-m", "vidclf", "validate", "--ckpt_path", str(run), *val, *QUIET],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    folder = max((run / "validate").iterdir(), key=lambda p: p.stat().st_mtime_ns)
    with open(folder / "per_class.csv") as f:
        return " ".join(f"{r['class']} {float(r['accuracy']):.2f}" for r in csv.DictReader(f))


def plot(rows: list[tuple], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=100)
    for name, seconds, values, _ in rows:  # epochs spread evenly over the arm's measured minutes
        ax.plot([seconds / 60 * (i + 1) / len(values) for i in range(len(values))], values, marker=".", label=name)
    ax.set(xlabel="minutes (2 CPU cores)", ylabel="validation accuracy", title=title, ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="wall-clock budget of each arm")
    parser.add_argument("--set", choices=["six", "real"], default="six")
    parser.add_argument("--arms", default="scratch,x3d,videomae",
                        help="comma-separated: scratch, x3d, lr_auto, videomae, probe, videomae_scratch")
    parser.add_argument("--data", default="data/six", help="the six-motion set (rendered there if missing)")
    parser.add_argument("--out", default="runs/bench_small_data")
    parser.add_argument("--per-class", type=int, default=60)
    args = parser.parse_args()
    out, minutes, arms = Path(args.out) / args.set, args.minutes, args.arms.split(",")
    if args.set == "six":
        data = Path(args.data)
        if not (data / "train").is_dir():
            subprocess.run([sys.executable, "-m", "vidclf.synthetic", str(data), "--six", "--per-class",
                            str(args.per_class), "--val-per-class", str(args.per_class // 3)], check=True)
        train, split, val = str(data / "train"), ["--data.val", str(data / "val")], ["--data.val", str(data / "val")]
    else:  # the held-out part is set aside by the same seed in every arm and in validate
        train, split = str(REAL), ["--data.val_split", "0.3"]
        val = ["--data.train", train, *split]
    seconds_of = SECONDS[args.set]

    def epochs(arm: str, budget: float) -> str:
        first, later = seconds_of[arm]
        return str(max(1, round((budget * 60 - first) / later) + 1))

    def fit(name: str, extra: list[str], budget: float) -> tuple[float, Path]:
        root = out / name
        seconds = vidclf(["fit", *extra, "--data.train", train, *split, "--trainer.default_root_dir", str(root)],
                         budget)
        return seconds, sorted(root.glob("version_*"), key=lambda p: int(p.name[8:]))[-1]

    cache = lambda arm: ["--data.cache", str(out / f"cache_{arm}")]  # noqa: E731
    shutil.rmtree(out, ignore_errors=True)
    rows = []

    def arm(name: str, extra: list[str], budget: float, before: float = 0.0) -> None:
        seconds, run = fit(name, extra, budget)
        rows.append((name, before + seconds, curve(run), per_class(run, val)))

    demo = ["--config", "demo", "--data.val", "null"]  # its recipe, not its data
    if "scratch" in arms:
        n = epochs("scratch", minutes)  # the recipe's one-cycle shape: warmup over 27% of the run
        arm("scratch", ["--config", "from_scratch", *cache("scratch"), "--trainer.max_epochs", n,
                        "--model.warmup_epochs", str(round(int(n) * 0.27))], minutes)
    if "x3d" in arms:
        arm("x3d", [*demo, *cache("x3d"), "--trainer.max_epochs", epochs("x3d", minutes)], minutes)
    if "lr_auto" in arms:
        arm("lr_auto", [*demo, *cache("lr_auto"), "--model.lr", "auto", "--trainer.max_epochs",
                        epochs("x3d", minutes * 0.9)], minutes)
    if {"videomae", "probe", "videomae_scratch"} & set(arms):
        pre_root = out / "pretrain"
        pre_seconds = vidclf(["pretrain", "--data.train", train, *VIDEOMAE, "--model.mask_ratio", "0.75",
                              *cache("videomae"), "--trainer.max_epochs", epochs("pretrain", minutes / 2),
                              "--trainer.default_root_dir", str(pre_root)], minutes / 2)
        encoder = sorted(pre_root.glob("version_*"), key=lambda p: int(p.name[8:]))[-1] / "encoder"
        backbone = ["--model.backbone", f"hf:{encoder}", "--data.num_clips", "3", *cache("videomae")]
        if "videomae" in arms:
            arm("videomae", [*backbone, "--model.pretrained", "true", "--model.lr", "5e-4", "--model.layer_decay",
                             "0.75", "--trainer.max_epochs", epochs("videomae", minutes / 2)], minutes / 2, pre_seconds)
        if "probe" in arms:
            arm("probe", [*backbone, "--model.pretrained", "true", "--model.finetune", "freeze", "--model.lr", "5e-3",
                          "--model.dropout", "0.0", "--trainer.max_epochs", epochs("probe", minutes / 2)], minutes / 2,
                pre_seconds)
        if "videomae_scratch" in arms:
            arm("videomae_scratch", [*backbone, "--model.pretrained", "false", "--model.lr", "5e-4",
                                     "--trainer.max_epochs", epochs("videomae", minutes)], minutes)

    title = f"{args.set}: {minutes:g} min per arm, 2 CPU cores"
    plot(rows, out / "learning_curves.png", title)
    print(f"{title} ({'six-motion set, chance 0.167' if args.set == 'six' else 'typing vs exercise, chance 0.5'})")
    print(f"{'arm':18} {'minutes':>8} {'best val acc':>13} {'last':>6} {'epochs':>7}  per class (best checkpoint)")
    for name, seconds, values, classes in rows:
        print(f"{name:18} {seconds / 60:8.1f} {max(values):13.3f} {values[-1]:6.3f} {len(values):7d}  {classes}")
    print(f"learning curves: {out / 'learning_curves.png'}")


if __name__ == "__main__":
    main()
