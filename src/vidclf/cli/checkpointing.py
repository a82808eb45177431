"""The checkpoints a run writes: best.ckpt by the monitored metric, and last.ckpt at every save point."""

from __future__ import annotations

from pytorch_lightning.callbacks import ModelCheckpoint

SINGLE_LABEL_MONITOR, MULTI_LABEL_MONITOR = "val/acc", "val/mAP"


class Checkpoint(ModelCheckpoint):
    """Checkpoints: best.ckpt by val/acc (multi-label: val/mAP); last.ckpt follows every save point.

    The default monitored metric follows the model: val/acc, or val/mAP for a multi-label model.
    Lightning 2.6 rewrites last.ckpt only when a top-k checkpoint is written, so with a flat
    validation metric `--ckpt_path last` would resume from an old epoch and lose work: with
    `save_last`, a second checkpoint callback without a metric (`last_checkpoint`) writes it instead.
    """

    def setup(self, trainer, pl_module, stage: str) -> None:
        if getattr(pl_module.hparams, "multi_label", False) and self.monitor == SINGLE_LABEL_MONITOR:
            self.monitor = MULTI_LABEL_MONITOR  # the default metric follows the kind of model
        super().setup(trainer, pl_module, stage)


def last_checkpoint(options) -> ModelCheckpoint:
    """RUN/checkpoints/last.ckpt written at the save points `options` (the --checkpoint.* values) set,
    whatever the metric does: Lightning's own callback with no metric keeps exactly the newest."""
    return ModelCheckpoint(dirpath=options.get("dirpath"), filename="last", monitor=None, save_top_k=1,
                           every_n_train_steps=options.get("every_n_train_steps"),
                           every_n_epochs=options.get("every_n_epochs"),
                           train_time_interval=options.get("train_time_interval"),
                           save_on_train_epoch_end=options.get("save_on_train_epoch_end"),
                           save_weights_only=bool(options.get("save_weights_only")), enable_version_counter=False)
