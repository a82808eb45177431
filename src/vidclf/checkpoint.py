"""Checkpoints: the callback that writes them and the one reader every command uses."""

from __future__ import annotations

from pathlib import Path

import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from vidclf.data import storage
from vidclf.errors import VidclfError


SINGLE_LABEL_MONITOR, MULTI_LABEL_MONITOR = "val/acc", "val/mAP"


class Checkpoint(ModelCheckpoint):
    """Checkpoints: last.ckpt follows every save point; best.ckpt by val/acc (multi-label: val/mAP).

    The default monitored metric follows the model: val/acc, or val/mAP for a multi-label model.

    Lightning 2.6 rewrites last.ckpt only when a top-k checkpoint is written, so with a flat
    validation metric `--ckpt_path last` would resume from an old epoch and lose work.
    """

    def setup(self, trainer, pl_module, stage: str) -> None:
        if getattr(pl_module.hparams, "multi_label", False) and self.monitor == SINGLE_LABEL_MONITOR:
            self.monitor = MULTI_LABEL_MONITOR  # the default metric follows the kind of model
        super().setup(trainer, pl_module, stage)

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


def read_checkpoint(path: str, pretraining: bool = False) -> dict:
    """A vidclf checkpoint's contents (of `vidclf pretrain` with `pretraining`), or one clear error
    naming the file. A remote checkpoint (a URL) is read from a local copy (see `local_checkpoint`)."""
    path = local_checkpoint(path)
    if not Path(path).is_file():
        raise VidclfError(f"--ckpt_path {path}: no such file; pass RUN/checkpoints/best.ckpt of a vidclf run")
    with open(path, "rb") as f:
        head = f.read(512)
    if not head.startswith((b"PK\x03\x04", b"\x80")):  # torch.save writes a zip (or a legacy pickle)
        raise VidclfError(f"--ckpt_path {path}: not a checkpoint but {_looks_like(head)}; pass "
                          f"RUN/checkpoints/best.ckpt (or last.ckpt) of a vidclf run")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise VidclfError(f"--ckpt_path {path}: a damaged or foreign checkpoint ({type(err).__name__}: "
                          f"{' '.join(str(err).split())[:160]}); pass one from RUN/checkpoints/") from None
    hparams = checkpoint.get("hyper_parameters", {})
    if "mask_ratio" in hparams and not pretraining:
        run = Path(path).parent.parent
        raise VidclfError(f"--ckpt_path {path}: a `vidclf pretrain` checkpoint (an encoder without classes); "
                          f"fine-tune it first: vidclf fit --model.backbone hf:{run / 'encoder'} --model.pretrained true")
    if "backbone" in hparams and pretraining:
        raise VidclfError(f"--ckpt_path {path}: a classifier's checkpoint; pretrain resumes from a `vidclf pretrain` "
                          f"run's checkpoint (RUN/checkpoints/last.ckpt under runs/pretrain)")
    if ("mask_ratio" if pretraining else "backbone") not in hparams:
        raise VidclfError(f"--ckpt_path {path}: not a vidclf checkpoint; pass one from RUN/checkpoints/")
    return checkpoint


def local_checkpoint(path: str) -> str:
    """`path`, or for a URL (s3://...) its local copy, downloaded once per version."""
    if not storage.is_remote(path):
        return path
    try:
        return str(storage.local_copy(path))
    except OSError as err:
        raise VidclfError(f"--ckpt_path {path}: {storage.reason(err)}") from None


def _looks_like(head: bytes) -> str:
    """What a file's first bytes say it is, in words."""
    if not head:
        return "an empty file"
    if head[4:8] == b"ftyp" or head.startswith(b"\x1a\x45\xdf\xa3"):
        return "a video file"
    if head.startswith(b"\x08") or b"onnx" in head[:64].lower():
        return "an ONNX model (export output, for onnxruntime)"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return f"a binary file starting with {head[:8].hex(' ')}"
    return "a text file"
