"""What validate and test write: the per-class table, and the confusion matrix figure (single-label)
or the precision-recall curves of the weakest classes (multi-label)."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch

from vidclf.io.figures import pyplot, save_figure
from vidclf.io.files import write_rows
from vidclf.metrics.multilabel import evaluate, ranked

PR_CLASSES = 8  # precision-recall curves drawn: the classes with the lowest AP
_WORD = {"val": "validate", "test": "test"}


class EvalReport(pl.Callback):
    """At the end of `vidclf validate` and `vidclf test`: a per-class table on the console,
    RUN/per_class.csv and RUN/confusion_matrix.png (rows: true class, normalised per row); for a
    multi-label model RUN/pr_curves.png instead (a confusion matrix has no meaning there)."""

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.state.fn == "validate":
            self._report(trainer, pl_module, "val")

    def on_test_end(self, trainer, pl_module) -> None:
        self._report(trainer, pl_module, "test")

    def _report(self, trainer, pl_module, stage: str) -> None:
        if pl_module.hparams.multi_label:
            self._multi_label_report(trainer, pl_module, stage)
            return
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
        print(f"vidclf: {_WORD[stage]} results in {run}: metrics.csv, per_class.csv, confusion_matrix.png")


    def _multi_label_report(self, trainer, pl_module, stage: str) -> None:
        run = Path(trainer.log_dir or ".")  # a collective call under DDP: all processes ask
        if not trainer.is_global_zero or stage not in pl_module.evaluated:
            return
        probs, targets = pl_module.evaluated[stage]  # gathered from all processes
        thresholds = pl_module.active_thresholds().cpu()
        names = pl_module.class_names
        _, per_class = evaluate(probs, targets, thresholds)
        rows = [{"class": n, "videos": int(per_class["support"][i]), "ap": _round(per_class["ap"][i]),
                 "precision": _round(per_class["precision"][i]), "recall": _round(per_class["recall"][i]),
                 "f1": _round(per_class["f1"][i]), "threshold": round(float(thresholds[i]), 6)}
                for i, n in enumerate(names)]
        write_rows(str(run / "per_class.csv"), rows)
        width = max(len("class"), *(len(n) for n in names))
        print(f"{'class':<{width}}  videos     ap  precision  recall     f1  threshold")
        for r in rows:
            ap, precision, recall, f1 = (f"{r[k]:.3f}" if r[k] != "" else "-" for k in ("ap", "precision", "recall", "f1"))
            print(f"{r['class']:<{width}}  {r['videos']:>6}  {ap:>5}  {precision:>9}  {recall:>6}  {f1:>5}  "
                  f"{r['threshold']:>9.3f}")
        plot_pr_curves(probs, targets, per_class, names, run / "pr_curves.png", f"{stage}: {len(probs)} videos")
        print(f"vidclf: {_WORD[stage]} results in {run}: metrics.csv, per_class.csv, pr_curves.png")


def _round(value) -> float | str:
    """A metric for a table: 4 decimals, or empty where it is undefined (a class without positives)."""
    value = float(value)
    return "" if value != value else round(value, 4)


def per_class_rows(counts: torch.Tensor, names: list[str]) -> list[dict]:
    """One row per class from confusion counts (true x predicted)."""
    correct, support, predicted = counts.diag(), counts.sum(1), counts.sum(0)
    recall = torch.where(support > 0, correct / support.clamp(min=1), torch.nan)
    precision = torch.where(predicted > 0, correct / predicted.clamp(min=1), torch.zeros_like(correct))
    f1 = torch.where(precision + recall > 0, 2 * precision * recall / (precision + recall), torch.zeros_like(correct))
    return [{"class": n, "videos": int(support[i]), "accuracy": round(float(recall[i]), 4),
             "precision": round(float(precision[i]), 4), "f1": round(float(f1[i]), 4)} for i, n in enumerate(names)]


def plot_pr_curves(probs: torch.Tensor, targets: torch.Tensor, per_class: dict, names: list[str],
                   path: Path, title: str) -> None:
    """Precision against recall for the PR_CLASSES classes with the lowest AP (among those with
    positives), each with a dot where its threshold puts it (`per_class`: multilabel.evaluate's)."""
    plt = pyplot()
    ap = per_class["ap"]
    worst = sorted((i for i in range(len(names)) if ap[i] == ap[i]), key=lambda i: float(ap[i]))[:PR_CLASSES]
    fig, ax = plt.subplots(figsize=(7, 6), dpi=100)
    for i in worst:
        _, tps, fps = ranked(probs[:, i], targets[:, i])
        recall, precision = (tps / tps[-1]).numpy(), (tps / (tps + fps)).numpy()
        line, = ax.step([0.0, *recall], [precision[0], *precision], where="pre",
                        label=f"{names[i]} (AP {float(ap[i]):.3f})")
        ax.plot(float(per_class["recall"][i]), float(per_class["precision"][i]), "o", color=line.get_color())
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(f"{title}; weakest {len(worst)} classes (dot: threshold in use)")
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def plot_confusion(counts: torch.Tensor, names: list[str], path: Path, title: str) -> None:
    """Row-normalised confusion matrix with class names on both axes; readable up to ~100 classes."""
    plt = pyplot()

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
    save_figure(fig, path)
