"""The labelling loop, measured: random picks vs `vidclf select`, accuracy per round.

A synthetic set of six classes (vidclf.synthetic's SIX: only motion tells them apart) gives a pool of
unlabelled videos and a fixed validation set. Every run starts with --start videos labelled per class;
each round labels --add more from the pool (chosen at random, or by `vidclf select` on the last round's
model), then trains a new model from scratch (`--config from_scratch`, small3d) on all labels so far and
validates it. Accuracy per round, mean over --seeds, printed and drawn to a PNG.

    .venv/bin/python benchmarks/active.py [--seeds 3] [--rounds 4] [--add 30] [--start 5] [--per_class 40]
"""

from __future__ import annotations

import argparse
import csv
import random
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def vidclf(*args) -> str:
    done = subprocess.run([sys.executable, "-m", "vidclf", *map(str, args)], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    return done.stderr


def labels_of(pool: Path) -> dict[str, str]:
    return {str(p): p.parent.name for p in sorted(pool.rglob("*")) if p.is_file()}


def write_list(path: Path, chosen: list[str], labels: dict[str, str]) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label"])
        writer.writerows([(p, labels[p]) for p in chosen])
    return path


def fit(train: Path, val: Path, root: Path, epochs: int, seed: int, cache: Path) -> tuple[Path, float]:
    # the recipe's schedule, shortened: its warmup is 30 of 110 epochs
    vidclf("fit", "--config", "from_scratch", "--data.train", train, "--data.val", val, "--trainer.max_epochs", epochs,
           "--model.warmup_epochs", max(1, round(epochs * 30 / 110)), "--data.cache", cache,
           "--trainer.default_root_dir", root, "--seed_everything", seed, "--trainer.enable_progress_bar", "false")
    rows = list(csv.DictReader(open(root / "version_0" / "metrics.csv")))
    return root / "version_0" / "checkpoints" / "best.ckpt", max(float(r["val/acc"]) for r in rows if r.get("val/acc"))


def loop(strategy: str, pool: Path, val: Path, work: Path, seed: int, options) -> list[float]:
    labels = labels_of(pool)
    rng = random.Random(seed)
    by_class: dict[str, list[str]] = {}
    for path, label in labels.items():
        by_class.setdefault(label, []).append(path)
    chosen = [p for paths in by_class.values() for p in rng.sample(paths, options.start)]
    curve = []
    for round_ in range(options.rounds + 1):
        train = write_list(work / f"train_{round_}.csv", chosen, labels)
        ckpt, accuracy = fit(train, val, work / f"run_{round_}", options.epochs, seed, work.parent / "frames")
        curve.append(accuracy)
        print(f"  {strategy} seed {seed} round {round_}: {len(chosen)} labelled, val acc {accuracy:.3f}", flush=True)
        if round_ == options.rounds:
            break
        rest = [p for p in labels if p not in chosen]
        if strategy == "random":
            chosen += rng.sample(rest, options.add)
        else:
            vidclf("select", "--ckpt_path", ckpt, "--data.predict", pool, "--data.train", train, "--budget", options.add,
                   "--output", work / f"next_{round_}.json", "--trainer.enable_progress_bar", "false")
            chosen += [r["path"] for r in csv.DictReader(open(work / f"next_{round_}.csv"))]
    return curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--add", type=int, default=30)
    parser.add_argument("--start", type=int, default=5)
    parser.add_argument("--per_class", type=int, default=40, help="pool videos per class")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--png", default="active.png")
    options = parser.parse_args()
    from vidclf.synthetic import render_six_dataset

    curves: dict[str, list[list[float]]] = {"random": [], "select": []}
    with tempfile.TemporaryDirectory() as tmp:
        pool, val = Path(tmp) / "pool", Path(tmp) / "val"
        render_six_dataset(str(pool), options.per_class, seed=1)
        render_six_dataset(str(val), 10, seed=2)
        for seed in range(options.seeds):
            for strategy in curves:
                work = Path(tmp) / f"{strategy}_{seed}"
                work.mkdir()
                curves[strategy].append(loop(strategy, pool, val, work, seed, options))
    print("labelled per round:", [6 * options.start + options.add * r for r in range(options.rounds + 1)])
    for strategy, runs in curves.items():
        mean = [sum(r[i] for r in runs) / len(runs) for i in range(len(runs[0]))]
        print(f"{strategy:>7}: " + "  ".join(f"{a:.3f}" for a in mean))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [6 * options.start + options.add * r for r in range(options.rounds + 1)]
    for strategy, runs in curves.items():
        plt.plot(x, [sum(r[i] for r in runs) / len(runs) for i in range(len(x))], marker="o", label=strategy)
    plt.xlabel("labelled videos")
    plt.ylabel(f"validation accuracy (mean of {options.seeds} seeds)")
    plt.legend()
    plt.savefig(options.png, dpi=100)
    print(f"curves -> {options.png}")


if __name__ == "__main__":
    main()
