"""The end of `fit` in a few lines: where the run is, its best checkpoint and score, and the next commands."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint


class RunSummary(pl.Callback):
    """After fit (first process only): the run folder, best.ckpt with its epoch and monitored value
    (or last.ckpt when nothing was monitored), and the validate / predict / export commands for it;
    after Ctrl-C, the command that resumes the run."""

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if not isinstance(exception, KeyboardInterrupt) or trainer.state.fn not in ("fit", None):
            return
        run = Path(trainer.log_dir or ".")  # a collective call under DDP: every process asks
        if not trainer.is_global_zero:
            return
        sub = "pretrain" if hasattr(pl_module.hparams, "mask_ratio") else "fit"
        last = run / "checkpoints" / "last.ckpt"
        if last.is_file():
            epoch = torch.load(last, map_location="cpu", weights_only=True, mmap=True)["epoch"]
            print(f"vidclf: {sub} stopped; resume it from its last checkpoint (epoch {epoch}) with:\n"
                  f"    vidclf {sub} --ckpt_path {run}", flush=True)
        else:
            print(f"vidclf: {sub} stopped before its first checkpoint ({run}); run the same command again "
                  f"to start over", flush=True)

    def on_fit_end(self, trainer, pl_module) -> None:
        folder = trainer.log_dir  # a collective call under DDP: every process asks
        if not trainer.is_global_zero or folder is None:
            return
        run, best = Path(folder), _best_callback(trainer)
        if hasattr(pl_module.hparams, "mask_ratio"):  # vidclf pretrain: the encoder is what comes next
            print(f"vidclf: pretrain done; run folder {run}\n  encoder  {run / 'encoder'}\n  next:\n"
                  f"    vidclf fit --model.backbone hf:{run / 'encoder'} --model.pretrained true --data.train VIDEOS",
                  flush=True)
            return
        lines = [f"vidclf: fit done; run folder {run}"]
        if best is not None and best.best_model_path and best.best_model_score is not None:
            checkpoint = best.best_model_path
            epoch = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)["epoch"]  # no tensor read
            lines.append(f"  best checkpoint  {checkpoint} (epoch {epoch}, {best.monitor} "
                         f"{float(best.best_model_score):.4f})")
        else:
            checkpoint = str(run / "checkpoints" / "last.ckpt")
            monitor = best.monitor if best is not None else "a validation metric"
            lines.append(f"  last checkpoint  {checkpoint} (no {monitor} to pick a best one: pass --data.val "
                         f"or --data.val_split)")
        lines += ["  next:",
                  f"    vidclf validate --ckpt_path {checkpoint} --data.val VIDEOS",
                  f"    vidclf predict  --ckpt_path {checkpoint} --data.predict VIDEOS --output predictions.csv",
                  f"    vidclf export   --ckpt_path {checkpoint} --format onnx"]
        print("\n".join(lines), flush=True)


def _best_callback(trainer) -> ModelCheckpoint | None:
    """The checkpoint callback that picks best.ckpt (the one with a monitored metric)."""
    return next((c for c in trainer.checkpoint_callbacks if c.monitor is not None), None)
