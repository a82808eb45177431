"""Checkpoints: the callback that writes them and the one reader every command uses."""

from __future__ import annotations

from pathlib import Path

import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from vidclf.errors import VidclfError


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


def read_checkpoint(path: str) -> dict:
    """A vidclf checkpoint's contents, or one clear error naming the file."""
    if not Path(path).is_file():
        raise VidclfError(f"--ckpt_path {path}: no such file; pass RUN/checkpoints/best.ckpt of a vidclf run")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise VidclfError(f"--ckpt_path {path}: not a readable checkpoint ({type(err).__name__})") from None
    if "backbone" not in checkpoint.get("hyper_parameters", {}):
        raise VidclfError(f"--ckpt_path {path}: not a vidclf checkpoint; pass one from RUN/checkpoints/")
    return checkpoint
