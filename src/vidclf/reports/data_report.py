"""RUN/data_report.csv: every file that was not used, or used only in part, with the reason."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytorch_lightning as pl
import torch

from vidclf.errors import VidclfError
from vidclf.io.files import write_rows

STAGE_SPLIT = {"train": "train", "validation": "val", "test": "test", "predict": "predict"}


class DataReport(pl.Callback):
    """Videos that failed to decode are skipped, never swapped for others, and damaged videos of
    which only a part decodes are used for that part: list both, with the files passed over, in
    RUN/data_report.csv and say so in one line at the end of each stage. A run stopped by too many bad
    files writes the report too, unless it stopped before training (then it leaves no run folder)."""

    def __init__(self):
        self.failed: dict[tuple[str, str], str] = {}  # (split, path) -> reason
        self.partly: dict[tuple[str, str], str] = {}  # (split, path) -> what did not decode

    def _collect(self, trainer, batch, stage: str) -> None:
        split = STAGE_SPLIT[stage]
        paths = trainer.datamodule.paths(split)
        for index, reason in batch["failed"]:
            self.failed[(split, paths[index])] = reason
        for index, warning in batch["warnings"]:
            self.partly.setdefault((split, paths[index]), warning)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._collect(trainer, batch, "train")

    def _gather(self) -> None:
        """Under DDP each process saw its share of the videos: pool what failed (all processes call this)."""
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            shares = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(shares, (self.failed, self.partly))
            for failed, partly in shares:
                self.failed.update(failed)
                self.partly.update(partly)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._gather()
        failed = sum(split == "train" for split, _ in self.failed)
        total = len(trainer.datamodule.datasets["train"])
        limit = trainer.datamodule.hparams.max_failed
        if failed > limit * total:
            self._report(trainer)
            raise VidclfError(f"{failed} of {total} training videos could not be decoded, more than "
                              f"--data.max_failed {limit}; fix or remove them (see data_report.csv)")

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._collect(trainer, batch, "validation")

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._collect(trainer, batch, "test")

    def _report(self, trainer) -> None:
        self._gather()
        self._write(trainer, Path(trainer.log_dir or "."))  # log_dir: a collective call under DDP, all ask

    def _write(self, trainer, run: Path) -> bool:
        ignored = getattr(trainer.datamodule, "ignored", {})
        if not (self.failed or self.partly or ignored) or not trainer.is_global_zero:
            return False
        statuses = {**ignored, **{key: f"partly used: {warning}" for key, warning in self.partly.items()},
                    **{key: f"skipped: {reason}" for key, reason in self.failed.items()}}
        path = run / "data_report.csv"
        write_rows(str(path), [{"split": s, "path": p, "status": status} for (s, p), status in sorted(statuses.items())])
        skipped = sum(status.startswith("skipped") for status in statuses.values())
        partly = sum(status.startswith("partly") for status in statuses.values())
        print(f"vidclf: skipped {skipped} video(s) that could not be decoded, used {partly} damaged video(s) "
              f"in part and ignored {len(statuses) - skipped - partly} other file(s); see {path}")
        return True

    def on_fit_end(self, trainer, pl_module) -> None:
        self._report(trainer)

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.state.fn == "validate":
            self._report(trainer)

    def on_test_end(self, trainer, pl_module) -> None:
        self._report(trainer)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        """A run stopped by bad input after training began keeps its report in the run folder; one
        stopped before (nothing trained, the error names the files) leaves no run folder."""
        logger = trainer.loggers[0] if trainer.loggers else None
        if (trainer.state.fn == "predict" or logger is None or not trainer.is_global_zero
                or not isinstance(exception, VidclfError)):
            return
        run = Path(logger.log_dir)  # the logger's own folder: no collective call while failing
        if not run.is_dir():
            return
        if trainer.global_step > 0 or any(p.suffix == ".ckpt" for p in run.rglob("*")):
            self._write(trainer, run)
            return
        shutil.rmtree(run, ignore_errors=True)
        if run.parent.name in ("validate", "test") and not any(run.parent.iterdir()):
            run.parent.rmdir()  # RUN/validate/ held only this evaluation
