"""How the classifier measures itself: loss, clip and video accuracy, the confusion counts, and the
multi-label scores whose mAP and F1 (and the class thresholds tuned in fit) come at an epoch's end."""

from __future__ import annotations

import torch
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from vidclf.metrics.multilabel import DEFAULT_THRESHOLD, ScoreStore, evaluate, tune_thresholds
from vidclf.metrics.video import video_metrics


class Measured:
    """Metrics of a LightningModule with `hparams.multi_label` and `hparams.threshold` (a mixin)."""

    def build_metrics(self, k: int, multi_label: bool, threshold) -> None:
        stages = ("train", "val", "test")
        self.metrics = nn.ModuleDict({f"{stage}_loss": MeanMetric() for stage in stages})
        # counts (true class x predicted class) per video, for the per-class report of validate/test
        self.confusion = nn.ModuleDict()
        self.evaluated: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}  # multi-label: stage -> (probs, targets)
        if multi_label:
            # per-class decision thresholds: tuned in fit, saved in checkpoints, used by predict and export
            self.register_buffer("thresholds", torch.full((k,), DEFAULT_THRESHOLD if threshold is None else threshold))
            self.metrics.update({f"{stage}_scores": ScoreStore(k) for stage in stages})
        else:
            self.metrics.update({f"{stage}_clip": MulticlassAccuracy(k, average="micro") for stage in stages})
            self.metrics.update({f"{stage}_video": video_metrics(k, prefix=f"{stage}/") for stage in stages})
            self.confusion.update({stage: MulticlassConfusionMatrix(k) for stage in ("val", "test")})

    def measure(self, stage: str, loss: torch.Tensor, logits: torch.Tensor, video_probs: torch.Tensor,
                y: torch.Tensor, clip_y: torch.Tensor) -> None:
        """Log the step's loss and update the stage's metrics with its clips (logits) and videos."""
        b, train = len(video_probs), stage == "train"
        # epoch loss as a metric: a weighted mean that stays exact under DDP when processes hold unequal
        # shares (Lightning's own sync_dist mean divides by an integer-averaged batch count)
        self.metrics[f"{stage}_loss"].update(loss.detach(), weight=b)
        if train:
            self.log("train/loss_step", loss, batch_size=b, on_step=True, on_epoch=False, prog_bar=True)
        self.log(f"{stage}/loss_epoch" if train else f"{stage}/loss", self.metrics[f"{stage}_loss"],
                 on_step=False, on_epoch=True)
        if self.hparams.multi_label:  # ranking metrics need every score: computed at the epoch's end
            self.metrics[f"{stage}_scores"].update(video_probs, y)
            return
        self.metrics[f"{stage}_clip"](logits.flatten(0, 1), clip_y)
        self.metrics[f"{stage}_video"](video_probs, y)
        self.log_dict(self.metrics[f"{stage}_video"], batch_size=b, on_step=False, on_epoch=True)
        if not train:
            self.log(f"{stage}/acc_clip", self.metrics[f"{stage}_clip"], batch_size=b, on_epoch=True)
            self.confusion[stage].update(video_probs, y)

    def active_thresholds(self) -> torch.Tensor:
        """Multi-label: the per-class thresholds predictions use (--model.threshold, else tuned)."""
        if self.hparams.threshold is not None:
            return torch.full_like(self.thresholds, self.hparams.threshold)
        return self.thresholds

    def _multi_label_epoch_end(self, stage: str) -> None:
        """mAP and F1 of the epoch's videos, from every process's scores; after a validation in fit
        (not the sanity check), first tune the thresholds on them unless --model.threshold is set."""
        store = self.metrics[f"{stage}_scores"]
        probs, targets = store.compute()
        store.reset()
        if len(probs) == 0:
            return
        tuning = (stage == "val" and self.hparams.threshold is None and self.trainer.state.fn == "fit"
                  and not self.trainer.sanity_checking)
        if tuning:
            self.thresholds.copy_(tune_thresholds(probs, targets).to(self.thresholds))
        self.evaluated[stage] = (probs.cpu(), targets.cpu())
        metrics, _ = evaluate(probs, targets, self.active_thresholds())
        for name, value in metrics.items():  # the same value on every process: syncing keeps it
            self.log(f"{stage}/{name}", value, on_epoch=True, sync_dist=True, prog_bar=name == "mAP")

    def on_validation_epoch_start(self) -> None:
        if "val" in self.confusion:
            self.confusion["val"].reset()

    def on_test_epoch_start(self) -> None:
        if "test" in self.confusion:
            self.confusion["test"].reset()

    def on_train_epoch_end(self) -> None:
        if self.hparams.multi_label:
            self._multi_label_epoch_end("train")

    def on_validation_epoch_end(self) -> None:
        if self.hparams.multi_label:
            self._multi_label_epoch_end("val")

    def on_test_epoch_end(self) -> None:
        if self.hparams.multi_label:
            self._multi_label_epoch_end("test")
