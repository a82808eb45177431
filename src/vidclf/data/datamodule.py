"""VideoDataModule: folders or CSV lists of videos -> batches of uint8 clips."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional, Union

import torch
from torch.utils.data import DataLoader

from vidclf.data.clip_module import ClipDataModule
from vidclf.data.clips import ClipSettings
from vidclf.data.datasets import VideoClips, VideoWindows
from vidclf.data.feature_cache import serve_features
from vidclf.data.sampler import balanced_weights
from vidclf.data.segments import file_of
from vidclf.data.sources import has_split, labelled_videos, unlabelled_videos
from vidclf.data.sources.formats import NAMES as FORMAT_NAMES
from vidclf.data.sources.formats import recognise
from vidclf.data.sources.splits import check_disjoint, hmdb51_source, stratified_split
from vidclf.errors import VidclfError
from vidclf.io import storage
from vidclf.models.backbones import get_spec
from vidclf.ranges import ClosedUnitInterval, HoldOut, NonNegativeInt, PositiveInt, store_plain


class VideoDataModule(ClipDataModule):
    """Videos for training, evaluation and prediction, cut into clips the backbone expects.

    Args:
        train: Training videos: a folder with one subfolder per class (videos may sit deeper inside
            a class folder), a data set root with train/, val/ (or validation/) and test/ folders of
            class folders (as Kinetics ships), or a list (.csv, .tsv or .jsonl) with path,label and
            optionally split columns; path,labels for several labels per video (`a;b` or `a|b`, a
            JSON array in .jsonl); with start,end columns (seconds or HH:MM:SS.mmm) each row is a
            labelled segment of its video (a video may have many). A data set root or a list with a
            split column also supplies val and test when those are not given. Class names are the
            sorted labels found here. Any of these may be a URL fsspec reads (s3://, gs://, az://,
            https://): a remote folder, data set root or list, whose relative paths are relative to it.
        val: Validation videos, same forms as `train`.
        test: Test videos, same forms as `train`.
        predict: Videos to predict: a file, a folder (searched recursively), a glob pattern or a CSV with a
            path column; or a list of these.
        videos_root: Folder that relative paths in lists are relative to, and where the videos of a data
            set's annotation files are. Default: the list's folder.
        format: How to read `train`/`val`/`test`/`predict` files: `auto` (recognised from name and content),
            `list` (vidclf's CSV/TSV/JSONL), or a data set's own annotations: ucf101 (classInd.txt +
            trainlist0N/testlist0N.txt), hmdb51 (the folder of <class>_test_splitN.txt files), kinetics
            (the annotation CSV), ssv2 (train/validation.json + labels.json), activitynet (the 1.3
            JSON), charades (CSV + Charades_v1_classes.txt, multi-label per video),
            charades_segments (one segment per action), labelstudio (JSON export of video tasks).
        split: Which of a data set's numbered splits to use (HMDB51: 1, 2 or 3).
        split_column: The list column naming each row's split (train, val, test, or training,
            validation, testing ...), for a list whose own `split` column means something else.
        storage_options: Options for remote filesystems as JSON, e.g. '{"endpoint_url":
            "http://127.0.0.1:9000"}', or per protocol '{"s3": {...}, "gs": {...}}'. Credentials
            belong in each filesystem's environment or config (AWS_ACCESS_KEY_ID, AWS_PROFILE,
            GOOGLE_APPLICATION_CREDENTIALS ...); secrets given here are used but saved as
            "<redacted>" in config.yaml, checkpoints and logs.
        multi_label: Several labels per video (sigmoid outputs, mAP, tuned thresholds). Default: when
            the training list has a labels column (or the checkpoint's model is multi-label).
        allow_empty_labels: Multi-label: a video may have no label (every class absent).
        val_split: Without `val`, hold out this fraction of each training class for validation
            (multi-label: of each set of labels; segments: whole videos, by their most frequent
            label; HMDB51: whole source videos, its clips being named by their film; deterministic
            for a given --seed_everything).
        shared_videos: Allow segments of one video in several splits (refused by default: they share
            its scene and people, so validation on them measures memory).
        max_failed: Stop when more than this fraction of a split's videos cannot be decoded.
        scan: Before training, validation or testing, check that every video opens and decodes
            (in parallel, remembered by path, size and mtime); unusable ones are skipped and reported.
        cache: Folder for a training frame cache: each training video is decoded once (on first use)
            into JPEG frames at the clip frame rate and largest training size; later epochs and runs
            read those. Entries follow the videos and settings (a changed file gets a new entry).
        backbone: Backbone whose input the clips match (set from --model.backbone on the command line).
        classes: Class names in index order. Default: from `train`, or from the checkpoint.
        frames: Frames per clip. Default: the backbone's.
        rate: Take one frame every `rate` frames of 30 fps video. Default: the backbone's.
        crop: Square crop size in pixels. Default: the backbone's.
        resize: Evaluation short side in pixels before the centre crop. Default: the backbone's, or with
            `crop` set, the crop scaled as the backbone scales its own (x3d_s: 182 for 160, so 127 for 112).
        train_resize: Training short side range [min, max] before the random crop. Default: the
            backbone's, or with `crop` set, [crop, 1.25 x crop].
        num_clips: Clips spread evenly over each video for validate/test/predict; their scores are averaged.
        num_crops: Spatial crops per clip for validate/test/predict: 1 (centre) or 3 (left/top, centre,
            right/bottom along the long side), averaged with the clips.
        hflip: Randomly flip training clips horizontally (turn off when left/right matters).
        train_clips: Random clips drawn from each training video per epoch.
        sampler: `shuffle`: every training video `train_clips` times per epoch, in random order;
            `balanced`: as many draws, with replacement, so that every class is drawn equally often
            (for imbalanced data; multi-label: a video weighs as its rarest label). Both split the
            epoch between processes under DDP.
        batch_size: Videos per batch (per process), or `auto` (fit on a GPU): the largest that fits in
            memory, found by a short search before training (`vidclf fit --batch_size_max`), saved in
            the run's config.yaml and checkpoints.
        num_workers: Decoding worker processes.
        feature_views: Probes in seconds (fit with --model.finetune freeze): the frozen backbone's features
            of each training video under this many augmented views, and of each validation video, are
            computed once and cached in ~/.cache/vidclf/features (by file, settings and weights); epoch e
            trains the head on view e mod K without decoding. With K >= epochs it equals an uncached run.
    """

    def __init__(self, train: Optional[str] = None, val: Optional[str] = None, test: Optional[str] = None,
                 predict: Union[str, list[str], None] = None, videos_root: Optional[str] = None,
                 format: Literal[FORMAT_NAMES] = "auto", split: Literal[1, 2, 3] = 1, split_column: str = "split",
                 storage_options: Optional[dict] = None,
                 multi_label: Optional[bool] = None, allow_empty_labels: bool = False,
                 val_split: HoldOut = 0.0, shared_videos: bool = False, max_failed: ClosedUnitInterval = 0.25,
                 scan: bool = True,
                 cache: Optional[str] = None, backbone: str = "x3d_xs", classes: Optional[list[str]] = None,
                 frames: Optional[PositiveInt] = None, rate: Optional[PositiveInt] = None,
                 crop: Optional[PositiveInt] = None, resize: Optional[PositiveInt] = None,
                 train_resize: Optional[tuple[PositiveInt, PositiveInt]] = None,
                 num_clips: PositiveInt = 5, num_crops: Literal[1, 3] = 1, hflip: bool = True,
                 train_clips: PositiveInt = 1, sampler: Literal["shuffle", "balanced"] = "shuffle",
                 batch_size: Union[PositiveInt, Literal["auto"]] = 8, num_workers: NonNegativeInt = 2,
                 feature_views: Optional[PositiveInt] = None):
        super().__init__()
        self.save_hyperparameters()
        self._keep_options()
        if val and val_split:
            raise VidclfError(f"--data.val {val} and --data.val_split {val_split} both give validation videos; "
                              f"pass one of them")
        if train_resize is not None and train_resize[0] > train_resize[1]:
            raise VidclfError(f"--data.train_resize {list(train_resize)}: give [min, max] with min <= max")
        spec = get_spec(backbone)
        self.clip = ClipSettings(
            frames=frames or spec.frames, rate=rate or spec.rate, crop=crop or spec.crop,
            resize=resize or (spec.resize if crop is None else round(crop * spec.resize / spec.crop)),
            train_resize=tuple(train_resize or (spec.train_resize if crop is None else (crop, crop * 5 // 4))))
        if spec.fixed_input and (self.clip.frames, self.clip.crop) != (spec.frames, spec.crop):
            raise VidclfError(f"{backbone} takes exactly {spec.frames} frames at {spec.crop}x{spec.crop} (its "
                              f"positional embeddings are fixed), not --data.frames {self.clip.frames} --data.crop "
                              f"{self.clip.crop}; leave both unset or pick another backbone")
        self.multi_label = multi_label
        self._train_items = self._list("train") if train else None
        if multi_label is None:  # decided by the training list: a labels column
            self.multi_label = any(isinstance(label, tuple) for _, label in self._train_items or [])
            self.hparams.multi_label = self.multi_label  # as resolved: the model's hparam says the same
            store_plain(self)
        self._val_items = None
        if val_split and not val and self._source("val"):
            raise VidclfError(f"--data.train {train} holds its own validation videos (a val split), and "
                              f"--data.val_split {val_split} asks to hold out others; drop --data.val_split")
        if self._train_items is not None and val_split > 0:
            hmdb51 = format == "hmdb51" or (format == "auto" and not storage.is_remote(train)
                                            and recognise(Path(train).expanduser()) == "hmdb51")
            self._train_items, self._val_items = stratified_split(self._train_items, val_split, torch.initial_seed(),
                                                                  hmdb51_source if hmdb51 else None)
        if classes is None and self._train_items is not None:
            classes = sorted({label for _, labels in self._train_items for label in self._label_set(labels)})
            if len(classes) < (1 if self.multi_label else 2):
                raise VidclfError(f"--data.train {train}: found only class {classes}; a classifier needs "
                                  f"at least two classes (one subfolder or label per class)")
        self.classes = classes
        self.timeline: Optional[tuple[Optional[float], Optional[float]]] = None  # (window, stride), set by predict

    def setup(self, stage: str) -> None:
        super().setup(stage)
        hp = self.hparams
        if stage == "fit":
            self.datasets["train"] = self._labelled(self._train_items, "train", train=True)
        if stage in ("fit", "validate") and (self._source("val") or self._val_items):
            self.datasets["val"] = self._labelled(self._val_items or self._list("val"), "val")
        if stage == "test":
            self.datasets["test"] = self._labelled(self._list("test"), "test")
        splits = {name: ds.paths for name, ds in self.datasets.items() if name != "predict"}
        if self._train_items is not None and "train" not in splits:  # e.g. test with --data.train given
            splits["train"] = [p for p, _ in self._train_items]
        check_disjoint(splits, self.hparams.shared_videos)
        if stage == "predict":
            paths = self._list("predict")
            if self.timeline:
                window, stride = self.timeline
                self.datasets["predict"] = VideoWindows(paths, self.clip, window or self.clip.seconds,
                                                        stride or window or self.clip.seconds)
            else:
                self.datasets["predict"] = VideoClips(paths, None, self.clip, num_clips=hp.num_clips,
                                                      num_crops=hp.num_crops)

    def _list(self, name: str) -> list:
        source, root = self._source(name), self.hparams.videos_root
        if not source:
            raise VidclfError(f"{name} needs videos; pass --data.{name} PATH")
        if name == "predict":
            listing = unlabelled_videos(source, root, self.hparams.format)
        else:
            listing = labelled_videos(source, split=name, videos_root=root, multi_label=self.multi_label,
                                      allow_empty=self.hparams.allow_empty_labels, format=self.hparams.format,
                                      split_number=self.hparams.split, split_column=self.hparams.split_column)
        self.ignored.update({(name, path): reason if reason.startswith("missing") else f"ignored: {reason}"
                             for path, reason in listing.ignored})
        missing = sum(reason.startswith("missing") for _, reason in listing.ignored)
        if missing:  # every copy of Kinetics lacks some videos: counted and listed, not fatal
            listed = missing + len(listing.items)
            if missing > self.hparams.max_failed * listed:
                raise VidclfError(f"{missing} of {listed} {name} videos named in {source} are missing, more than "
                                  f"--data.max_failed {self.hparams.max_failed}; set --data.videos_root to the folder "
                                  f"holding them (e.g. {listing.ignored[0][1]}; vidclf data lists them all)")
            print(f"vidclf: {missing} of {listed} {name} videos named in {source} are missing under "
                  f"{root or 'its folder'} (listed in RUN/data_report.csv)")
        return listing.items

    def listed_splits(self) -> dict[str, list]:
        """{split: [(sample, label)]} of every split given (or held in the training source), as listed,
        nothing scanned or dropped (for `vidclf data`)."""
        splits = {"train": self._train_items or []}
        if self._val_items:
            splits["val"] = self._val_items
        for name in ("val", "test"):
            if name not in splits and self._source(name):
                splits[name] = self._list(name)
        return splits

    def _source(self, name: str) -> Optional[str]:
        """--data.NAME, or for val/test the training source when it holds that split too (a data set
        root with train/ val/ test/ folders, or a list with a split column)."""
        given = getattr(self.hparams, name)
        hp = self.hparams
        if given or name not in ("val", "test") or not has_split(hp.train, name, hp.format, hp.videos_root, hp.split,
                                                                 hp.split_column):
            return given
        return self.hparams.train

    def _labelled(self, items, name: str, train: bool = False) -> VideoClips:
        if items is None:
            raise VidclfError(f"{name} needs videos; pass --data.{name} PATH")
        if not self.classes:
            raise VidclfError(f"no class names for {name}: pass --data.train, or --ckpt_path of a trained model "
                              f"(a video-text model without training: --model.classes)")
        index = {c: i for i, c in enumerate(self.classes)}
        unknown = sorted({label for _, labels in items for label in self._label_set(labels) if label not in index})
        if unknown:
            raise VidclfError(f"--data.{name}: class(es) {unknown} are not among the trained classes "
                              f"{self.classes}; remove them or add them to the training data")
        if self.hparams.scan:
            items = self._usable(items, name)
        paths = [p for p, _ in items]
        if self.multi_label:  # (videos, classes) of 0/1
            labels = torch.zeros(len(items), len(self.classes))
            for row, (_, names) in enumerate(items):
                labels[row, [index[label] for label in self._label_set(names)]] = 1.0
        else:
            labels = [index[label] for _, label in items]
        cache = self._frame_cache() if train else None
        return VideoClips(paths, labels, self.clip, train=train, num_clips=1 if train else self.hparams.num_clips,
                          num_crops=1 if train else self.hparams.num_crops, hflip=self.hparams.hflip, seed=self.seed,
                          cache=cache)

    @staticmethod
    def _label_set(labels: Union[str, tuple[str, ...]]) -> tuple[str, ...]:
        """The class names of one video: a multi-label tuple, or the one label."""
        return labels if isinstance(labels, tuple) else (labels,)

    def train_dataloader(self) -> DataLoader:
        if self.hparams.feature_views:
            serve_features(self, "train")
        return self._loader("train", self.train_sampler())

    def train_files(self) -> list[str]:
        """The video files of --data.train (a segment's file once per segment), before any scan."""
        return [file_of(path) for path, _ in self._train_items or []]

    def train_sampler(self):
        """The training order: each epoch's (epoch, video, draw) keys."""
        labels = self.datasets["train"].labels
        weights = balanced_weights(labels) if self.hparams.sampler == "balanced" else None
        return self._epoch_sampler(len(labels), weights)

    def val_dataloader(self):
        if self.hparams.feature_views and "val" in self.datasets and self.trainer.state.fn == "fit":
            serve_features(self, "val")
        return super().val_dataloader()

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("predict")
