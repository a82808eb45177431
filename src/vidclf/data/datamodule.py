"""VideoDataModule: folders or CSV lists of videos -> batches of uint8 clips."""

from __future__ import annotations

from typing import Literal, Optional, Union

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from vidclf.backbones import get_spec
from vidclf.data.dataset import ClipSettings, EpochSampler, VideoClips, VideoWindows, collate
from vidclf.data.sources import labelled_videos, unlabelled_videos
from vidclf.errors import VidclfError


class VideoDataModule(pl.LightningDataModule):
    """Videos for training, evaluation and prediction, cut into clips the backbone expects.

    Args:
        train: Training videos: a folder with one subfolder per class, or a CSV with path,label
            columns (paths relative to the CSV). Class names are the sorted labels found here.
        val: Validation videos, same forms as `train`.
        test: Test videos, same forms as `train`.
        predict: Videos to predict: a file, a folder (searched recursively), a glob pattern or a CSV with a
            path column; or a list of these.
        backbone: Backbone whose input the clips match (set from --model.backbone on the command line).
        classes: Class names in index order. Default: from `train`, or from the checkpoint.
        frames: Frames per clip. Default: the backbone's.
        rate: Take one frame every `rate` frames of 30 fps video. Default: the backbone's.
        crop: Square crop size in pixels. Default: the backbone's.
        resize: Evaluation short side in pixels before the centre crop. Default: the backbone's.
        train_resize: Training short side range [min, max] before the random crop. Default: the backbone's.
        num_clips: Clips spread evenly over each video for validate/test/predict; their scores are averaged.
        num_crops: Spatial crops per clip for validate/test/predict: 1 (centre) or 3 (left/top, centre,
            right/bottom along the long side), averaged with the clips.
        hflip: Randomly flip training clips horizontally (turn off when left/right matters).
        batch_size: Videos per batch.
        num_workers: Decoding worker processes.
    """

    def __init__(self, train: Optional[str] = None, val: Optional[str] = None, test: Optional[str] = None,
                 predict: Union[str, list[str], None] = None, backbone: str = "x3d_xs", classes: Optional[list[str]] = None,
                 frames: Optional[int] = None, rate: Optional[int] = None, crop: Optional[int] = None,
                 resize: Optional[int] = None, train_resize: Optional[tuple[int, int]] = None,
                 num_clips: int = 5, num_crops: Literal[1, 3] = 1, hflip: bool = True, batch_size: int = 8, num_workers: int = 2):
        super().__init__()
        self.save_hyperparameters()
        spec = get_spec(backbone)
        self.clip = ClipSettings(
            frames=frames or spec.frames, rate=rate or spec.rate, crop=crop or spec.crop,
            resize=resize or (spec.resize if crop is None else max(spec.resize, crop)),
            train_resize=tuple(train_resize or (spec.train_resize if crop is None else (crop, crop * 5 // 4))))
        self.ignored: dict[tuple[str, str], str] = {}  # (split, path) -> why it is not used
        self._train_items = self._list("train", labelled_videos) if train else None
        if classes is None and self._train_items is not None:
            classes = sorted({label for _, label in self._train_items})
            if len(classes) < 2:
                raise VidclfError(f"--data.train {train}: found only class {classes}; a classifier needs "
                                  f"at least two classes (one subfolder or label per class)")
        self.classes = classes
        self.datasets: dict[str, VideoClips] = {}
        self.timeline: Optional[tuple[Optional[float], Optional[float]]] = None  # (window, stride), set by predict

    def setup(self, stage: str) -> None:
        hp = self.hparams
        self.seed = torch.initial_seed()  # set by --seed_everything
        if stage == "fit":
            self.datasets["train"] = self._labelled(self._train_items, "train", train=True)
        if stage in ("fit", "validate") and hp.val:
            self.datasets["val"] = self._labelled(self._list("val", labelled_videos), "val")
        if stage == "test":
            self.datasets["test"] = self._labelled(self._list("test", labelled_videos), "test")
        if stage == "predict":
            paths = self._list("predict", unlabelled_videos)
            if self.timeline:
                window, stride = self.timeline
                self.datasets["predict"] = VideoWindows(paths, self.clip, window or self.clip.seconds,
                                                        stride or window or self.clip.seconds)
            else:
                self.datasets["predict"] = VideoClips(paths, None, self.clip, num_clips=hp.num_clips,
                                                      num_crops=hp.num_crops)

    def _list(self, name: str, read) -> list:
        source = getattr(self.hparams, name)
        if not source:
            raise VidclfError(f"{name} needs videos; pass --data.{name} PATH")
        listing = read(source)
        self.ignored.update({(name, path): f"ignored: {reason}" for path, reason in listing.ignored})
        return listing.items

    def _labelled(self, items, name: str, train: bool = False) -> VideoClips:
        if items is None:
            raise VidclfError(f"{name} needs videos; pass --data.{name} PATH")
        if not self.classes:
            raise VidclfError(f"no class names for {name}: pass --data.train, or --ckpt_path of a trained model")
        index = {c: i for i, c in enumerate(self.classes)}
        unknown = sorted({label for _, label in items if label not in index})
        if unknown:
            raise VidclfError(f"--data.{name}: class(es) {unknown} are not among the trained classes "
                              f"{self.classes}; remove them or add them to the training data")
        paths = [p for p, _ in items]
        labels = [index[label] for _, label in items]
        return VideoClips(paths, labels, self.clip, train=train, num_clips=1 if train else self.hparams.num_clips,
                          num_crops=1 if train else self.hparams.num_crops, hflip=self.hparams.hflip, seed=self.seed)

    def _loader(self, name: str, sampler: Optional[EpochSampler] = None) -> DataLoader:
        workers = self.hparams.num_workers
        # a timeline item already holds up to 16 clips of one video
        batch_size = 1 if isinstance(self.datasets[name], VideoWindows) else self.hparams.batch_size
        return DataLoader(self.datasets[name], batch_size=batch_size, sampler=sampler,
                          num_workers=workers, collate_fn=collate, persistent_workers=workers > 0)

    def train_dataloader(self) -> DataLoader:
        # Epochs begun so far. Read when the epoch's iterator is built (workers prefetch at once);
        # current_epoch still lags there right after a resume, and set_epoch comes too late.
        epoch = lambda: self.trainer.fit_loop.epoch_progress.current.processed if self.trainer else 0  # noqa: E731
        return self._loader("train", EpochSampler(len(self.datasets["train"]), self.seed, epoch))

    def val_dataloader(self):
        return self._loader("val") if "val" in self.datasets else []

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("predict")

    def paths(self, name: str) -> list[str]:
        """Paths of split `name` in dataset index order (for reports and prediction files)."""
        return self.datasets[name].paths
