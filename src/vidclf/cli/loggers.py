"""The run folder's loggers (CSV and TensorBoard in RUN = ROOT/version_N) and its config.yaml with secrets redacted."""

from __future__ import annotations

import os
import time
from pathlib import Path

from pytorch_lightning.cli import SaveConfigCallback
from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger

from vidclf.io import secrets
from vidclf.io.files import read_rows

RUN_VERSION = "VIDCLF_RUN_VERSION"


class SaveConfig(SaveConfigCallback):
    """Lightning's RUN/config.yaml, with the secrets of --data.storage_options as "<redacted>" and those
    of URLs as REDACTED."""

    def setup(self, trainer, pl_module, stage: str) -> None:
        config = self.config
        if config.get("data.storage_options"):
            self.config = config.clone()
            self.config["data.storage_options"] = secrets.redact(config["data.storage_options"])
        try:
            super().setup(trainer, pl_module, stage)
        finally:
            self.config = config
        path = Path(trainer.log_dir or ".") / self.config_filename  # a collective call: every process asks
        if trainer.is_global_zero and path.is_file():
            text = path.read_text(encoding="utf-8")
            if "://" in text:
                path.write_text(secrets.redact_text(text), encoding="utf-8")


class ResumedCSVLogger(CSVLogger):
    """The CSV logger of a resumed run: the rows its metrics.csv had before the checkpoint stay
    (Lightning's writer deletes the file), rows from after it go (the resumed run logs them again)."""

    def __init__(self, *args, before_step: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.before_step = before_step
        path = Path(self.log_dir) / "metrics.csv"
        rows = read_rows(path) if path.is_file() else []
        self.kept = [r for r in rows if r.get("step", "").isdigit() and int(r["step"]) < before_step]

    @property
    def experiment(self):
        experiment = super().experiment  # made on first use: deletes metrics.csv (on the first process)
        if self.kept:  # written back once, through the writer's own public calls
            kept, self.kept = self.kept, []
            for row in kept:
                experiment.log_metrics({k: _number(v) for k, v in row.items() if v not in ("", None) and k != "step"},
                                       int(row["step"]))
            experiment.save()
        return experiment


def _number(text: str) -> int | float:
    """A metrics.csv cell as the value Lightning logged (epochs are whole numbers)."""
    return int(text) if text.isdigit() else float(text)


def run_loggers(root: str, version: str | None = None, resume_step: int = 0, timed: bool = False) -> list:
    """CSV and TensorBoard logs in one run directory ROOT/version_N (checkpoints go beside them), or
    ROOT/<date>_<time> when `timed` (an evaluation); a new folder unless `version` names the run being
    resumed (from its checkpoint at `resume_step`)."""
    if int(os.environ.get("LOCAL_RANK", "0")) > 0 and RUN_VERSION in os.environ:
        version = os.environ[RUN_VERSION]  # a DDP worker process logs into the run its launcher chose
    if version is None and timed:
        stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
        version = next(name for n in range(1000) if not Path(root, name := stamp + (f"_{n}" if n else "")).exists())
    elif version is None:
        taken = [int(p.name[8:]) for p in Path(root).glob("version_*") if p.name[8:].isdigit()]
        version = f"version_{max(taken, default=-1) + 1}"
    os.environ[RUN_VERSION] = version  # inherited by the processes DDP launches
    csv_logger = (ResumedCSVLogger(root, name="", version=version, before_step=resume_step)
                  if resume_step and Path(root, version, "metrics.csv").is_file()
                  else CSVLogger(root, name="", version=version))
    return [csv_logger,
            TensorBoardLogger(root, name="", version=version, default_hp_metric=False)]
