"""What a training run shows while it runs: the model in one line, and a bar with the loss and validation score."""

from __future__ import annotations

from pytorch_lightning.callbacks import ModelSummary, TQDMProgressBar
from pytorch_lightning.utilities.model_summary import get_human_readable_count

from vidclf.models.finetune import backbone_parts

# Logged metric -> its short name in the bar, in the order shown.
SHOWN = {"train/loss_step": "loss", "val/loss": "val_loss", "val/acc": "val_acc", "val/mAP": "val_mAP"}


class RunProgress(TQDMProgressBar):
    """Lightning's bar with the step's loss and the last validation's accuracy (or mAP, or loss), not v_num."""

    def get_metrics(self, trainer, pl_module) -> dict[str, float]:
        logged = trainer.callback_metrics
        return {short: float(logged[key]) for key, short in SHOWN.items() if key in logged}


class ModelLine(ModelSummary):
    """The model as one line (backbone, parameters, trainable ones) in place of Lightning's table of
    submodules, whose FLOPs column reads 0 unless an example input is set."""

    def on_fit_start(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero:
            return
        hparams = pl_module.hparams
        name = getattr(hparams, "backbone", None) or f"masked video autoencoder ({getattr(hparams, 'preset', '')})"
        total = sum(p.numel() for p in pl_module.parameters())
        trainable = sum(p.numel() for p in pl_module.parameters() if p.requires_grad)
        strategy, until = getattr(hparams, "finetune", "full"), ""
        if strategy != "full":  # the backbone is frozen batch by batch: count what will train
            trainable -= sum(p.numel() for p in backbone_parts(pl_module.net)[0] if p.requires_grad)
            until = f" until epoch {hparams.unfreeze_epoch}" if strategy == "freeze_unfreeze" else ""
        print(f"vidclf: model {name}: {_count(total)} parameters, {_count(trainable)} trainable{until}", flush=True)


def _count(number: int) -> str:
    """1234567 -> '1.2 M', as Lightning's summary writes counts."""
    return get_human_readable_count(number).strip()
