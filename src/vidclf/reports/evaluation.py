"""What validate and test write: the per-class table and the confusion matrix figure."""

from __future__ import annotations

import os
from pathlib import Path

import pytorch_lightning as pl
import torch

from vidclf.reports.files import write_rows


class EvalReport(pl.Callback):
    """At the end of `vidclf validate` and `vidclf test`: a per-class table on the console,
    RUN/per_class.csv and RUN/confusion_matrix.png (rows: true class, normalised per row)."""

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.state.fn == "validate":
            self._report(trainer, pl_module, "val")

    def on_test_end(self, trainer, pl_module) -> None:
        self._report(trainer, pl_module, "test")

    def _report(self, trainer, pl_module, stage: str) -> None:
        counts = pl_module.confusion[stage].compute().cpu().double()  # (true, predicted), all processes
        run = Path(trainer.log_dir or ".")  # a collective call under DDP: all processes ask
        if not trainer.is_global_zero or counts.sum() == 0:
            return
        names = pl_module.class_names
        rows = per_class_rows(counts, names)
        write_rows(str(run / "per_class.csv"), rows)
        width = max(len("class"), *(len(n) for n in names))
        print(f"{'class':<{width}}  videos  accuracy  precision  f1")
        for r in rows:
            print(f"{r['class']:<{width}}  {r['videos']:>6}  {r['accuracy']:>8.3f}  {r['precision']:>9.3f}  {r['f1']:.3f}")
        plot_confusion(counts, names, run / "confusion_matrix.png", f"{stage}: {int(counts.sum())} videos")
        print(f"vidclf: per-class results -> {run / 'per_class.csv'}, {run / 'confusion_matrix.png'}")


def per_class_rows(counts: torch.Tensor, names: list[str]) -> list[dict]:
    """One row per class from confusion counts (true x predicted)."""
    correct, support, predicted = counts.diag(), counts.sum(1), counts.sum(0)
    recall = torch.where(support > 0, correct / support.clamp(min=1), torch.nan)
    precision = torch.where(predicted > 0, correct / predicted.clamp(min=1), torch.zeros_like(correct))
    f1 = torch.where(precision + recall > 0, 2 * precision * recall / (precision + recall), torch.zeros_like(correct))
    return [{"class": n, "videos": int(support[i]), "accuracy": round(float(recall[i]), 4),
             "precision": round(float(precision[i]), 4), "f1": round(float(f1[i]), 4)} for i, n in enumerate(names)]


def plot_confusion(counts: torch.Tensor, names: list[str], path: Path, title: str) -> None:
    """Row-normalised confusion matrix with class names on both axes; readable up to ~100 classes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(names)
    rates = (counts / counts.sum(1, keepdim=True).clamp(min=1)).numpy()
    side = min(40.0, max(5.0, 0.22 * k + 2))
    font = max(3.0, min(10.0, 300 / max(k, 1)))
    fig, ax = plt.subplots(figsize=(side, side), dpi=100)
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(k), names, rotation=90, fontsize=font)
    ax.set_yticks(range(k), names, fontsize=font)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if k <= 20:
        for i in range(k):
            for j in range(k):
                ax.text(j, i, f"{rates[i, j]:.2f}", ha="center", va="center", fontsize=font,
                        color="white" if rates[i, j] > 0.5 else "black")
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    tmp = path.with_name(f".tmp-{path.name}")
    fig.savefig(tmp, format="png")
    plt.close(fig)
    os.replace(tmp, path)
