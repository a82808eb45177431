"""Callbacks that turn batches into files a user reads: predictions and the data report."""

from __future__ import annotations

import csv
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from importlib import metadata
from pathlib import Path
from typing import Optional

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from vidclf.errors import VidclfError

MIN_FREE_BYTES = 1 << 20
STAGE_SPLIT = {"train": "train", "validation": "val", "test": "test", "predict": "predict"}


def check_output(path: str, overwrite: bool) -> None:
    """Fail before any work if `path` exists (unless overwrite) or its folder cannot be written."""
    target = Path(path)
    if target.exists() and not overwrite:
        raise VidclfError(f"{path} already exists; choose another --output or pass --overwrite true")
    folder = target.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".vidclf-probe-"):
            pass
    except OSError as err:
        raise VidclfError(f"cannot write {path}: {err.strerror or err}; choose a writable --output") from None
    free = shutil.disk_usage(folder).free
    if free < MIN_FREE_BYTES:
        raise VidclfError(f"cannot write {path}: only {free // 1024} KiB free on that disk; free space "
                          f"or choose another --output")


def write_rows(path: str, rows: list[dict]) -> None:
    """Write rows as CSV, or JSON Lines for a .jsonl path, to a temporary name then rename it,
    so an interrupted run never leaves a half-written file under the final name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            if path.suffix.lower() == ".jsonl":
                f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
            else:
                writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["path"])
                writer.writeheader()
                writer.writerows(rows)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class PredictionWriter(pl.Callback):
    """One row per input video, in input order: label, probability, top-k, status (ok / error: reason).

    With `timeline`, also one row per window of each video in that file; the video's row then
    combines all its windows.
    """

    def __init__(self, output: str, top_k: int = 5, timeline: Optional[str] = None):
        self.output, self.top_k, self.timeline = output, top_k, timeline

    def on_predict_start(self, trainer, pl_module) -> None:
        self.started = time.perf_counter()
        self.rows: dict[int, dict] = {}
        self.windows: dict[int, list[tuple[float, torch.Tensor]]] = defaultdict(list)  # video -> (start, logits)

    def _ranked(self, probs: torch.Tensor, names: list[str]) -> dict:
        top_p, top_i = probs.float().cpu().topk(min(self.top_k, len(names)))
        row = {"label": names[top_i[0]], "prob": round(float(top_p[0]), 6), "status": "ok"}
        for rank, (p, i) in enumerate(zip(top_p.tolist(), top_i.tolist()), start=1):
            row[f"top{rank}_label"], row[f"top{rank}_prob"] = names[i], round(p, 6)
        return row

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        paths, names = trainer.datamodule.paths("predict"), pl_module.class_names
        if "window_logits" in outputs:
            for index, starts, logits in zip(outputs["index"].tolist(), outputs["starts"], outputs["window_logits"]):
                self.windows[index] += list(zip(starts.tolist(), logits.float().cpu()))
        elif outputs["probs"] is not None:
            for index, probs in zip(outputs["index"].tolist(), outputs["probs"]):
                self.rows[index] = {"path": paths[index], **self._ranked(probs, names)}
        for index, reason in outputs["failed"]:
            self.rows[index] = {"path": paths[index], "label": "", "prob": "", "status": f"error: {reason}"}
        bar = getattr(trainer.progress_bar_callback, "_predict_progress_bar", None)  # batches/s -> videos/s
        if bar is not None:
            done = len(self.rows.keys() | self.windows.keys())
            bar.set_postfix_str(f"{done / (time.perf_counter() - self.started):.2f} videos/s")

    def on_predict_end(self, trainer, pl_module) -> None:
        paths, names = trainer.datamodule.paths("predict"), pl_module.class_names
        timeline = []
        for index, windows in sorted(self.windows.items()):
            windows.sort(key=lambda w: w[0])
            logits = torch.stack([w[1] for w in windows])  # (windows, K)
            self.rows.setdefault(index, {"path": paths[index], **self._ranked(
                pl_module.video_probs(logits[None])[0], names)})
            length = trainer.datamodule.datasets["predict"].window
            timeline += [{"path": paths[index], "start": round(start, 3), "end": round(start + length, 3),
                          **self._ranked(window_logits.softmax(-1), names)}
                         for start, window_logits in windows]
        columns = next((list(r) for r in self.rows.values() if r["status"] == "ok"), ["path", "label", "prob", "status"])
        rows = [{c: self.rows[i].get(c, "") for c in columns} for i in sorted(self.rows)]
        ignored = sorted((p, why) for (split, p), why in getattr(trainer.datamodule, "ignored", {}).items()
                         if split == "predict")  # files in the input that are not videos: listed, not dropped
        rows += [{c: {"path": p, "status": why}.get(c, "") for c in columns} for p, why in ignored]
        write_rows(self.output, rows)
        if self.timeline:
            write_rows(self.timeline, timeline)
        errors = sum(r["status"].startswith("error") for r in rows)
        where = f"{self.output}" + (f" and {len(timeline)} windows -> {self.timeline}" if self.timeline else "")
        print(f"vidclf: predicted {len(rows) - len(ignored)} videos ({len(rows) - len(ignored) - errors} ok, "
              f"{errors} error), listed {len(ignored)} ignored file(s) -> {where}")


class DataReport(pl.Callback):
    """Videos that failed to decode are skipped, never swapped for others: list them in
    RUN/data_report.csv and say so in one line at the end of each stage."""

    def __init__(self):
        self.failed: dict[tuple[str, str], str] = {}

    def _collect(self, trainer, batch, stage: str) -> None:
        split = STAGE_SPLIT[stage]
        for index, reason in batch["failed"]:
            self.failed[(split, trainer.datamodule.paths(split)[index])] = reason

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._collect(trainer, batch, "train")

    def _gather(self) -> None:
        """Under DDP each process saw its share of the videos: pool what failed (all processes call this)."""
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            shares = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(shares, self.failed)
            for share in shares:
                self.failed.update(share)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._gather()
        failed = sum(split == "train" for split, _ in self.failed)
        total = len(trainer.datamodule.datasets["train"])
        limit = trainer.datamodule.hparams.max_failed
        if failed > limit * total:
            self._report(trainer)
            raise VidclfError(f"{failed} of {total} training videos could not be decoded, more than "
                              f"--data.max_failed {limit}; fix or remove them (see data_report.csv)")

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._collect(trainer, batch, "validation")

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._collect(trainer, batch, "test")

    def _report(self, trainer) -> None:
        self._gather()
        path = Path(trainer.log_dir or ".") / "data_report.csv"  # a collective call under DDP: all ask
        ignored = getattr(trainer.datamodule, "ignored", {})
        if not (self.failed or ignored) or not trainer.is_global_zero:
            return
        statuses = {**ignored, **{key: f"skipped: {reason}" for key, reason in self.failed.items()}}
        write_rows(str(path), [{"split": s, "path": p, "status": status} for (s, p), status in sorted(statuses.items())])
        skipped = sum(status.startswith("skipped") for status in statuses.values())
        print(f"vidclf: skipped {skipped} video(s) that could not be decoded and ignored "
              f"{len(statuses) - skipped} other file(s); see {path}")

    def on_fit_end(self, trainer, pl_module) -> None:
        self._report(trainer)

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.state.fn == "validate":
            self._report(trainer)

    def on_test_end(self, trainer, pl_module) -> None:
        self._report(trainer)


class RunInfo(pl.Callback):
    """RUN/run_info.json: versions, command line and classes, beside Lightning's config.yaml."""

    PACKAGES = ("vidclf", "torch", "torchvision", "pytorch-lightning", "pytorchvideo", "av", "torchmetrics")

    def setup(self, trainer, pl_module, stage: str) -> None:
        run = trainer.log_dir  # every process must ask: under DDP it is a collective call
        if not trainer.is_global_zero or not run or stage == "predict":
            return
        info = {"command": sys.argv, "stage": stage, "python": platform.python_version(),
                "versions": {name: _version(name) for name in self.PACKAGES},
                "classes": getattr(pl_module, "class_names", None)}
        Path(run).mkdir(parents=True, exist_ok=True)
        (Path(run) / "run_info.json").write_text(json.dumps(info, indent=2, ensure_ascii=False))


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


class Checkpoint(ModelCheckpoint):
    """ModelCheckpoint whose last.ckpt follows every save point, improved or not.

    Lightning 2.6 rewrites last.ckpt only when a top-k checkpoint is written, so with a flat
    validation metric `--ckpt_path last` would resume from an old epoch and lose work.
    """

    def on_validation_end(self, trainer, pl_module) -> None:
        super().on_validation_end(trainer, pl_module)
        self._refresh_last(trainer, at_train_epoch_end=False)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        self._refresh_last(trainer, at_train_epoch_end=True)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        # with --checkpoint.every_n_train_steps, Lightning defers saves until the monitored metric
        # exists (after the first validation); the resume point should not wait for it
        n = self._every_n_train_steps
        if self.save_last and n and trainer.global_step % n == 0 and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def _refresh_last(self, trainer, at_train_epoch_end: bool) -> None:
        # _should_skip_saving_checkpoint is True when this step was already saved (top-k improved)
        if (self.save_last and not self._should_skip_saving_checkpoint(trainer)
                and self._should_save_on_train_epoch_end(trainer) == at_train_epoch_end):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))


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
