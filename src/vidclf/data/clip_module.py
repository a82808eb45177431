"""ClipDataModule: what every vidclf data module shares (threads, scan, frame cache, samplers, loaders, reports)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import pytorch_lightning as pl
import torch
from pytorch_lightning.overrides.distributed import UnrepeatedDistributedSampler
from pytorch_lightning.utilities.parsing import AttributeDict
from torch.utils.data import DataLoader, Sampler

from vidclf.cores import compute_threads
from vidclf.data.cache import FrameCache
from vidclf.data.collate import collate
from vidclf.data.datasets import VideoClips, VideoWindows
from vidclf.data.feature_cache import FeatureClips
from vidclf.data.sampler import EpochSampler
from vidclf.data.scan import scan
from vidclf.errors import VidclfError
from vidclf.io import secrets, storage
from vidclf.ranges import store_plain


class ClipDataModule(pl.LightningDataModule):
    """Videos cut into clips (`self.clip`); subclasses list the videos of each split into `datasets`."""

    def __init__(self):
        super().__init__()
        self.ignored: dict[tuple[str, str], str] = {}  # (split, path) -> why it is not used
        self.datasets: dict[str, VideoClips] = {}

    def _keep_options(self) -> None:
        """After save_hyperparameters: remote storage configured, its secrets redacted (never in
        checkpoints or logs), numbers plain (checkpoints load with weights_only)."""
        storage.configure(self.hparams.storage_options)
        self.hparams.storage_options = secrets.redact(self.hparams.storage_options)
        store_plain(self)

    @property
    def hparams_initial(self):
        """The options as logged (hparams.yaml, TensorBoard): URLs without their secrets."""
        return AttributeDict(secrets.redact_values(dict(super().hparams_initial)))

    def setup(self, stage: str) -> None:
        self.seed = torch.initial_seed()  # set by --seed_everything
        threads = compute_threads(self.trainer.num_devices if self.trainer is not None else 1)
        if threads:
            torch.set_num_threads(threads)

    def _frame_cache(self) -> Optional[FrameCache]:
        """The training frame cache of --data.cache, if given."""
        if not self.hparams.cache:
            return None
        return FrameCache(self.hparams.cache, self.clip.interval, max(self.clip.train_resize[1], self.clip.crop))

    def _epoch_sampler(self, size: int, weights: Optional[Sequence[float]] = None) -> EpochSampler:
        # Epochs begun so far. Read when the epoch's iterator is built (workers prefetch at once);
        # current_epoch still lags there right after a resume, and set_epoch comes too late.
        epoch = lambda: self.trainer.fit_loop.epoch_progress.current.processed if self.trainer else 0  # noqa: E731
        return EpochSampler(size, self.seed, epoch, self.hparams.train_clips, weights)

    def _usable(self, items: list, name: str) -> list:
        """Items whose video is there, opens and decodes; the others go to the data report, with a summary:
        missing videos (the scan says `missing: ...`) apart from those that cannot be decoded."""
        found = scan([p for p, _ in items])
        missing = {p: reason for p, reason in found.items() if reason.startswith("missing")}
        broken = {p: reason for p, reason in found.items() if p not in missing}
        self._set_aside(items, name, missing, "are missing", "are missing", "",
                        "relative paths in a list are taken from the list's folder: set --data.videos_root to the "
                        "folder holding the videos")
        self._set_aside(items, name, broken, "cannot be decoded", "cannot be decoded and are skipped", "skipped: ")
        return [item for item in items if item[0] not in found]

    def _set_aside(self, items: list, name: str, reasons: dict[str, str], what: str, said: str, status: str,
                   fix: str = "") -> None:
        """Put `reasons` ({sample: why}) in the data report (as `status` + why) and say so in one line;
        more than --data.max_failed of them stop the run, naming the first and `fix`."""
        if not reasons:
            return
        self.ignored.update({(name, p): f"{status}{reason}" for p, reason in reasons.items()})
        first, count = next(iter(reasons)), f"{len(reasons)} of {len(items)} {name} videos"
        if len(reasons) > self.hparams.max_failed * len(items):
            raise VidclfError(f"{count} {what}, more than --data.max_failed {self.hparams.max_failed}; e.g. {first}: "
                              f"{reasons[first]}" + (f"; {fix}" if fix else "") + " (vidclf data lists them all)")
        print(f"vidclf: {count} {said}, e.g. {first} (all in RUN/data_report.csv)")

    def _loader(self, name: str, sampler: Optional[Sampler] = None) -> DataLoader:
        # cached features are in memory already: worker processes would only cost their start
        workers = 0 if isinstance(self.datasets[name], FeatureClips) else self.hparams.num_workers
        # a timeline item already holds up to 16 clips of one video
        batch_size = 1 if isinstance(self.datasets[name], VideoWindows) else self.hparams.batch_size
        if batch_size == "auto":
            raise VidclfError("--data.batch_size auto is searched by `vidclf fit` (for training); give a number here")
        trainer = self.trainer
        if name in ("val", "test", "predict") and trainer is not None and trainer.world_size > 1:
            # each process scores a disjoint share, no video padded in twice; metrics and rows are gathered
            sampler = UnrepeatedDistributedSampler(self.datasets[name], trainer.world_size, trainer.global_rank,
                                                   shuffle=False)
        return DataLoader(self.datasets[name], batch_size=batch_size, sampler=sampler,
                          num_workers=workers, collate_fn=collate, persistent_workers=workers > 0)

    def val_dataloader(self):
        return self._loader("val") if "val" in self.datasets else []

    def paths(self, name: str) -> list[str]:
        """Paths of split `name` in dataset index order (for reports and prediction files)."""
        return self.datasets[name].paths

