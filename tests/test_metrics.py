"""Per-class numbers from confusion counts, and the metric set per number of classes."""

import pytest
import torch

from vidclf.metrics.video import video_metrics
from vidclf.reports.evaluation import per_class_rows


def test_per_class_rows_from_counts():
    counts = torch.tensor([[3.0, 1.0, 0.0], [0.0, 2.0, 2.0], [0.0, 0.0, 0.0]])  # rows: true class
    a, b, c = per_class_rows(counts, ["a", "b", "c"])
    assert (a["videos"], a["accuracy"], a["precision"]) == (4, 0.75, 1.0)
    assert (b["accuracy"], b["precision"], b["f1"]) == (0.5, pytest.approx(0.6667, abs=1e-4), pytest.approx(0.5714, abs=1e-4))
    assert c["videos"] == 0 and c["precision"] == 0.0  # predicted twice, never right


def test_top5_only_above_five_classes():
    five = video_metrics(5, "val/")
    assert set(five(torch.eye(5)[[1, 2]], torch.tensor([1, 0]))) == {"val/acc", "val/f1_macro", "val/acc_mean_class"}
    metrics = video_metrics(7, "val/")
    probs = torch.eye(7)[[1, 2]] * 0.5 + torch.arange(7.0)[None] / 100  # truth ranks 1st and 3rd-ish
    values = metrics(probs, torch.tensor([1, 0]))
    assert values["val/acc"] == 0.5 and values["val/acc_top5"] == 0.5
