"""Probes that train in seconds (--data.feature_views K): a frozen backbone's features of every training
video under K augmented views, and of every validation video's views, computed once, kept on disk, and
served in place of clips, so the head trains without decoding a frame or running the backbone.

View k of training video i is the clip epoch k of an uncached run draws for it (augmentation is a
function of seed, epoch and video), and epoch e reads view e mod K: with K at least the epochs, the run
equals one without the cache wherever the head scores one pooled vector. Entries are keyed by the
file (path, size, mtime), the clip settings, the views and a hash of the backbone's weights.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path
from typing import Optional, Union

import torch
from torch.utils.data import DataLoader, Dataset

from vidclf.data.collate import collate
from vidclf.data.datasets import VideoClips
from vidclf.data.segments import split
from vidclf.errors import VidclfError
from vidclf.io import storage
from vidclf.models.features import head_kind
from vidclf.models.finetune import backbone_parts


def default_folder() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "vidclf" / "features"


class FeatureClips(Dataset):
    """A VideoClips' videos as cached features: training items (1, D), the view of their epoch;
    evaluation items (views, D). Keys as VideoClips takes them."""

    def __init__(self, clips: VideoClips, features: dict[int, Union[torch.Tensor, str]], views: Optional[int]):
        self.clips, self.features, self.views = clips, features, views
        self.paths, self.labels = clips.paths, clips.labels

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, key) -> dict:
        epoch, index, draw = key if isinstance(key, tuple) else (0, key, 0)
        got = self.features[index]
        if isinstance(got, str):
            return {"index": index, "error": got}
        features = _each(got, lambda t: t[epoch % self.views][None]) if self.views else got
        label = self.clips.labels[index] if self.clips.labels is not None else -1
        return {"features": features, "label": label, "index": index}


class _Views(Dataset):
    """The clips to compute: (video, view, draw); a training view is the clip epoch `view` draws for the
    video at position `draw` of that epoch's order."""

    def __init__(self, clips: VideoClips, wanted: list[tuple[int, int, int]]):
        self.clips, self.wanted = clips, wanted

    def __len__(self) -> int:
        return len(self.wanted)

    def __getitem__(self, item: int) -> dict:
        index, view, draw = self.wanted[item]
        got = self.clips[(view, index, draw)] if self.clips.train else self.clips[index]
        return {**got, "index": item}


def _each(features, fn):
    """`fn` on a tensor, or on each tensor of a tuple (X-CLIP's head reads a pair)."""
    return tuple(fn(t) for t in features) if isinstance(features, tuple) else fn(features)


def _stack(views: list):
    """Views' features stacked on a new first axis (element-wise for tuples)."""
    if isinstance(views[0], tuple):
        return tuple(torch.stack([v[j] for v in views]) for j in range(len(views[0])))
    return torch.stack(views)


def check_probe(model, views: int) -> None:
    """One line for a run the cache cannot serve: a backbone that trains, augmentation inside the step,
    a head whose input it cannot keep."""
    mhp = model.hparams
    if mhp.finetune != "freeze" or mhp.train_bn or mhp.mixup:
        what = "--model.finetune freeze" if mhp.finetune != "freeze" else "--model.train_bn false and --model.mixup 0"
        raise VidclfError(f"--data.feature_views {views}: features are cached for a frozen backbone; add {what}, or "
                          f"drop --data.feature_views")
    head_kind(model.net)  # its own one-line error for heads whose input the cache cannot keep


def cached_features(model, clips: VideoClips, views: Optional[int], draws: dict[tuple[int, int], int],
                    batch_size: int, num_workers: int, folder: Optional[Path] = None) -> tuple[FeatureClips, int]:
    """`clips` as FeatureClips: each video's features read from the cache or computed (in eval mode,
    without gradients) and stored; returns the dataset and how many videos were computed. `draws`:
    (video, epoch) -> the video's first position in that epoch's order (training)."""
    folder = Path(folder or default_folder())
    settings = _settings(model, clips, views)
    features: dict[int, Union[torch.Tensor, str]] = {}
    keys = {}
    for index, sample in enumerate(clips.paths):
        keys[index] = folder / settings[:2] / f"{settings}-{_file_key(sample)}.pt"
        if keys[index].is_file():
            try:
                features[index] = torch.load(keys[index], weights_only=True)
            except Exception:  # noqa: BLE001 - a damaged entry is computed again
                pass
    todo = [i for i in range(len(clips)) if i not in features]
    if todo:
        count = views or 1
        wanted = [(i, v, draws.get((i, v), 0)) for i in todo for v in range(count)]
        loader = DataLoader(_Views(clips, wanted), batch_size=batch_size, num_workers=num_workers, collate_fn=collate)
        computed: dict[int, list] = {i: [None] * count for i in todo}
        was_training = model.training
        model.eval()
        with torch.no_grad():
            for batch in loader:
                for item, reason in batch["failed"]:
                    features[wanted[item][0]] = f"error: {reason}"
                if "video" not in batch:
                    continue
                inputs = _each(model.clip_head_inputs(batch["video"].to(model.device)), lambda t: t.float().cpu())
                for row, item in enumerate(batch["index"].tolist()):
                    index, view, _ = wanted[item]
                    computed[index][view] = _each(inputs, lambda t: t[row][0] if views else t[row])  # (B, N, ...)
        model.train(was_training)
        for index in todo:
            if index not in features:
                features[index] = _stack(computed[index]) if views else computed[index][0]
            keys[index].parent.mkdir(parents=True, exist_ok=True)
            tmp = keys[index].with_suffix(".tmp")
            torch.save(features[index], tmp)
            os.replace(tmp, keys[index])
    return FeatureClips(clips, features, views), len(todo)


def _settings(model, clips: VideoClips, views: Optional[int]) -> str:
    """A hash of what the features depend on besides the file: backbone weights, clip settings, views."""
    digest = hashlib.sha256()
    for p in backbone_parts(model.net)[0]:
        digest.update(p.detach().float().cpu().numpy().tobytes())
    digest.update(repr((model.hparams.backbone, clips.clip, clips.train, views, clips.num_clips, clips.num_crops,
                        clips.hflip, clips.seed)).encode())
    return digest.hexdigest()[:24]


def _file_key(sample: str) -> str:
    """A video file's identity: its path (with a segment's times), size and mtime; a URL by its name."""
    path = split(sample)[0]
    stat = "" if storage.is_remote(path) or not Path(path).exists() else f"{Path(path).stat().st_size}-{Path(path).stat().st_mtime_ns}"
    return hashlib.sha256(f"{sample}|{stat}".encode()).hexdigest()[:24]


def serve_features(datamodule, name: str) -> None:
    """Replace split `name` of `datamodule` (train or val) by its cached features, said in one line."""
    model, views = datamodule.trainer.lightning_module, datamodule.hparams.feature_views
    if isinstance(datamodule.datasets[name], FeatureClips):
        return
    check_probe(model, views)
    started = time.perf_counter()
    train = name == "train"
    draws = {}
    if train:  # where each video first comes in the order of epochs 0..K-1, as the sampler draws them
        sampler = datamodule.train_sampler()
        for view in range(views):
            sampler.epoch = lambda view=view: view
            for epoch, index, draw in sampler:
                draws.setdefault((index, view), draw)
    dataset, computed = cached_features(model, datamodule.datasets[name], views if train else None, draws,
                                        int(datamodule.hparams.batch_size), datamodule.hparams.num_workers)
    datamodule.datasets[name] = dataset
    what = f"{len(dataset)} {name} videos" + (f" x {views} views" if train else "")
    print(f"vidclf: features of {what}: {computed} videos computed, {len(dataset) - computed} from the cache "
          f"({default_folder()}), {time.perf_counter() - started:.1f} s", file=sys.stderr)
