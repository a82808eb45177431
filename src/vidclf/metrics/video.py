"""Per-video metrics of a single-label classifier: top-1 (top-5 above five classes), macro F1, mean class accuracy."""

from __future__ import annotations

from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score


def video_metrics(k: int, prefix: str) -> MetricCollection:
    """Per-video metrics: top-1 (and top-5 above 5 classes), macro F1, mean per-class accuracy."""
    metrics = {"acc": MulticlassAccuracy(k, average="micro"), "f1_macro": MulticlassF1Score(k, average="macro"),
               "acc_mean_class": MulticlassAccuracy(k, average="macro")}
    if k > 5:
        metrics["acc_top5"] = MulticlassAccuracy(k, top_k=5, average="micro")
    return MetricCollection(metrics, prefix=prefix)
