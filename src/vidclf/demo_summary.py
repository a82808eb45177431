"""Print what `make demo` produced: validation accuracy, predictions, export (python -m vidclf.demo_summary RUN)."""

import csv
import json
import sys
from pathlib import Path


def main(run: str) -> None:
    validate_run = max((Path(run) / "validate").iterdir())  # RUN/validate/<date>_<time>: the newest
    metrics = list(csv.DictReader(open(validate_run / "metrics.csv")))[-1]
    preds = list(csv.DictReader(open(Path(run) / "predictions.csv")))
    right = sum(Path(r["path"]).parent.name == r["label"] for r in preds)
    check = json.loads((Path(run) / "model.onnx.json").read_text())["check"]
    print(f"\nvidclf demo: validation accuracy {float(metrics['val/acc']):.3f} per video, "
          f"{float(metrics['val/acc_clip']):.3f} per clip (chance 0.333)\n"
          f"  predictions: {run}/predictions.csv ({right}/{len(preds)} correct)\n"
          f"  export:      {run}/model.onnx + model.onnx.json (max abs diff {check['max_abs_diff']:.1e})\n"
          f"  checkpoint:  {run}/checkpoints/best.ckpt")


if __name__ == "__main__":
    main(sys.argv[1])
