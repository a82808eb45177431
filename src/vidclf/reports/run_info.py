"""RUN/run_info.json: what produced a run (command, versions, classes); the options a checkpoint keeps, without secrets."""

from __future__ import annotations

import platform
import sys
from importlib import metadata
from pathlib import Path

import pytorch_lightning as pl

from vidclf.io import secrets
from vidclf.io.files import write_json


class RunInfo(pl.Callback):
    """RUN/run_info.json: versions, command line and classes, beside Lightning's config.yaml."""

    PACKAGES = ("vidclf", "torch", "torchvision", "pytorch-lightning", "pytorchvideo", "av", "torchmetrics")

    def setup(self, trainer, pl_module, stage: str) -> None:
        run = trainer.log_dir  # every process must ask: under DDP it is a collective call
        if not trainer.is_global_zero or not run or stage == "predict":
            return
        info = {"command": secrets.redact_argv(sys.argv), "stage": stage, "python": platform.python_version(),
                "versions": {name: _version(name) for name in self.PACKAGES},
                "classes": getattr(pl_module, "class_names", None)}
        Path(run).mkdir(parents=True, exist_ok=True)
        write_json(str(Path(run) / "run_info.json"), info)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        """The model's and data's options in a checkpoint: URLs without their secrets."""
        for key in ("hyper_parameters", "datamodule_hyper_parameters"):
            if key in checkpoint:
                checkpoint[key] = secrets.redact_values(checkpoint[key])


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"
