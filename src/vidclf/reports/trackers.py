"""Experiment trackers (MLflow, Weights & Biases, any Lightning logger given by --trainer.logger) receive
the run's resolved options and its files, beside the run folder that vidclf always writes."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger

# What a run folder holds that a tracker should keep (figures, tables, the run's description).
FIT_FILES = ("config.yaml", "run_info.json", "lr_find.png", "data_report.csv")
EVAL_FILES = ("config.yaml", "metrics.csv", "per_class.csv", "confusion_matrix.png", "pr_curves.png", "data_report.csv")


class TrackerFiles(pl.Callback):
    """For each logger the user added (not vidclf's own CSV/TensorBoard): the resolved clip settings and
    classes as hyper-parameters when the run starts, and the run folder's figures and tables as artifacts
    when fit, validate or test ends (MLflow: log_artifact; W&B: the run's files; others: nothing)."""

    def __init__(self):
        self.told: set[int] = set()  # trackers given the resolved options (a parameter is logged once)

    def setup(self, trainer, pl_module, stage: str) -> None:
        trackers = [t for t in _trackers(trainer) if id(t) not in self.told]
        datamodule = trainer.datamodule
        if not trackers or not trainer.is_global_zero or datamodule is None or not hasattr(datamodule, "clip"):
            return
        clip = datamodule.clip
        resolved = {"resolved/frames": clip.frames, "resolved/rate": clip.rate, "resolved/crop": clip.crop,
                    "resolved/resize": clip.resize, "resolved/train_resize": list(clip.train_resize),
                    "resolved/classes": ",".join(getattr(pl_module, "class_names", None) or []),
                    "resolved/command": stage}
        for tracker in trackers:
            tracker.log_hyperparams(resolved)
            self.told.add(id(tracker))

    def on_fit_end(self, trainer, pl_module) -> None:
        self._send(trainer, FIT_FILES)

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.state.fn == "validate":
            self._send(trainer, EVAL_FILES)

    def on_test_end(self, trainer, pl_module) -> None:
        self._send(trainer, EVAL_FILES)

    def _send(self, trainer, names: tuple[str, ...]) -> None:
        run = Path(trainer.log_dir or ".")  # a collective call under DDP: every process asks
        trackers = _trackers(trainer)
        if not trackers or not trainer.is_global_zero:
            return
        files = [run / name for name in names if (run / name).is_file()]
        for tracker in trackers:
            for path in files:
                send_file(tracker, path, run)


def _trackers(trainer) -> list:
    """The loggers the user added: all but vidclf's own CSV and TensorBoard logs of the run folder."""
    return [logger for logger in trainer.loggers if not isinstance(logger, (CSVLogger, TensorBoardLogger))]


def send_file(tracker, path: Path, run: Path) -> None:
    """One file of the run folder into a tracker that keeps files."""
    kind = type(tracker).__name__
    if kind == "MLFlowLogger":
        tracker.experiment.log_artifact(tracker.run_id, str(path))
    elif kind == "WandbLogger":  # under the run folder's name: W&B keeps its own config.yaml in the same place
        tracker.experiment.save(str(path), base_path=str(run.parent), policy="now")
