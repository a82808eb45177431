"""UnlabelledVideos: videos without labels -> training clips, for self-supervised pretraining."""

from __future__ import annotations

from typing import Optional, Union

from torch.utils.data import DataLoader

from vidclf.data.clip_module import ClipDataModule
from vidclf.data.clips import ClipSettings
from vidclf.data.datasets import VideoClips
from vidclf.data.sources import unlabelled_videos
from vidclf.data.sources.splits import check_disjoint
from vidclf.errors import VidclfError
from vidclf.ranges import ClosedUnitInterval, NonNegativeInt, PositiveInt


class UnlabelledVideos(ClipDataModule):
    """Videos to pretrain on, cut into random training clips exactly as `fit` cuts them (decoding,
    scan, frame cache, augmentation, DDP sharding); their labels, if any, are not read.

    Args:
        train: Videos to learn from: a file, a folder (searched recursively: class subfolders are
            fine, their names are not used), a glob pattern, a list (.csv, .tsv, .jsonl) with a path
            column; or a list of these.
        val: Held-out videos, same forms: their reconstruction loss (the same masks every epoch) is
            logged as val/loss and picks best.ckpt. Default: none.
        videos_root: Folder that relative paths in lists are relative to. Default: the list's folder.
        max_failed: Stop when more than this fraction of a split's videos cannot be decoded.
        scan: Before training, check that every video opens and decodes (remembered by path, size and
            mtime); unusable ones are skipped and reported in RUN/data_report.csv.
        cache: Folder for a training frame cache (as `fit --data.cache`).
        frames: Frames per clip (set from --model.frames / the model preset on the command line).
        rate: Take one frame every `rate` frames of 30 fps video (VideoMAE: 4 on Kinetics, 2 on
            Something-Something). Fine-tuning the encoder uses the same rate by default.
        crop: Square clip size in pixels (set from --model.crop / the model preset on the command line).
        resize: Short side before the centre crop of validation clips. Default: crop * 8 / 7.
        train_resize: Training short side range [min, max] before the random crop. Default:
            [resize, resize * 5 / 4].
        hflip: Randomly flip training clips horizontally.
        train_clips: Random clips drawn from each video per epoch.
        batch_size: Clips per batch.
        num_workers: Decoding worker processes.
        storage_options: Options for remote filesystems (as `fit --data.storage_options`).
    """

    def __init__(self, train: Union[str, list[str], None] = None, val: Union[str, list[str], None] = None,
                 videos_root: Optional[str] = None, storage_options: Optional[dict] = None,
                 max_failed: ClosedUnitInterval = 0.25, scan: bool = True,
                 cache: Optional[str] = None, frames: PositiveInt = 16, rate: PositiveInt = 4, crop: PositiveInt = 112,
                 resize: Optional[PositiveInt] = None,
                 train_resize: Optional[tuple[PositiveInt, PositiveInt]] = None, hflip: bool = True,
                 train_clips: PositiveInt = 1, batch_size: PositiveInt = 8, num_workers: NonNegativeInt = 2):
        super().__init__()
        self.save_hyperparameters({k: v for k, v in locals().items() if k not in ("self", "__class__")})
        self._keep_options()
        resize = max(resize or round(crop * 8 / 7), crop)
        train_resize = tuple(train_resize or (resize, resize * 5 // 4))
        if train_resize[0] > train_resize[1]:
            raise VidclfError(f"--data.train_resize {list(train_resize)}: give [min, max] with min <= max")
        self.clip = ClipSettings(frames=frames, rate=rate, crop=crop, resize=resize, train_resize=train_resize)
        self.multi_label, self.classes, self.timeline = False, None, None

    def setup(self, stage: str) -> None:
        super().setup(stage)
        for name in ("train", "val"):
            if getattr(self.hparams, name):
                self.datasets[name] = self._videos(name)
        if "train" not in self.datasets:
            raise VidclfError("pretrain needs videos; pass --data.train FOLDER (or a list, a glob, a file)")
        check_disjoint({name: ds.paths for name, ds in self.datasets.items()})

    def _videos(self, name: str) -> VideoClips:
        listing = unlabelled_videos(getattr(self.hparams, name), self.hparams.videos_root)
        self.ignored.update({(name, path): f"ignored: {reason}" for path, reason in listing.ignored})
        items = [(path, None) for path in listing.items]
        if self.hparams.scan:
            items = self._usable(items, name)
        train = name == "train"
        cache = self._frame_cache() if train else None
        return VideoClips([p for p, _ in items], None, self.clip, train=train, hflip=self.hparams.hflip,
                          seed=self.seed, cache=cache)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self._epoch_sampler(len(self.datasets["train"])))
