"""Map-style clip datasets: one item per video, so every video is seen (or reported) exactly once.

An item is {"video": uint8 (N, C, T, H, W), "label": int (multi-label: a 0/1 float (K,) tensor),
"index": int} with N clips (N = 1 in training), plus "warning": str when only part of a damaged file decodes (its clips are then drawn
from that part), or {"index": int, "error": str} when the file cannot be used, whatever the
exception: the caller skips and reports it, nothing is substituted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Optional, Sequence, Union

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler
from torchvision.transforms.v2.functional import resize

from vidclf.data.cache import FrameCache
from vidclf.data.decode import DecodeError, VideoReader, clip_times, failure, uniform_starts
from vidclf.data.segments import split


def derived_seed(*keys: int) -> int:
    """A well-mixed 32-bit seed from integer keys, e.g. (seed, epoch, index)."""
    return int(np.random.SeedSequence(list(keys)).generate_state(1)[0])


@dataclass(frozen=True)
class ClipSettings:
    """How clips are cut from a video (defaults come from the backbone spec)."""

    frames: int
    rate: int  # one frame every `rate` frames of 30 fps video
    crop: int
    resize: int  # eval short side
    train_resize: tuple[int, int]  # train short side range

    @property
    def interval(self) -> float:
        return self.rate / 30.0

    @property
    def seconds(self) -> float:
        return self.frames * self.interval


class VideoClips(Dataset):
    """Clips from `paths`; `train` draws one random clip with augmentation, else `num_clips` uniform ones."""

    def __init__(self, paths: Sequence[str], labels: Union[Sequence[int], torch.Tensor, None], clip: ClipSettings,
                 train: bool = False, num_clips: int = 1, num_crops: int = 1, hflip: bool = True, seed: int = 0,
                 cache: Optional[FrameCache] = None):
        self.paths, self.labels, self.clip = list(paths), labels, clip
        self.train, self.num_clips, self.num_crops = train, num_clips, num_crops
        self.hflip, self.seed, self.cache = hflip, seed, cache

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, key: Union[int, tuple[int, int, int]]) -> dict:
        """key: a video index, or (epoch, index, draw) from EpochSampler for training."""
        epoch, index, draw = key if isinstance(key, tuple) else (0, key, 0)
        # Augmentation depends on (seed, epoch, video, draw) only: the same under any number of
        # workers, any batch order, and after resuming from a checkpoint.
        rng = torch.Generator().manual_seed(derived_seed(self.seed, epoch, index, draw))
        try:
            video, warning = self._read(self.paths[index], rng)
        except Exception as err:  # any exception: a bad file costs its own row, never the run
            return {"index": index, "error": failure(err)}
        label = self.labels[index] if self.labels is not None else -1
        return {"video": video, "label": label, "index": index, **({"warning": warning} if warning else {})}

    def _read(self, sample: str, rng: torch.Generator) -> tuple[torch.Tensor, str]:
        path, start, end = split(sample)
        if self.cache is not None:
            return self._read_cached(path, start, end, rng)
        c = self.clip
        if self.train:
            where = float(torch.rand((), generator=rng))  # the clip's place in the video, 0..1
            short = int(torch.randint(c.train_resize[0], c.train_resize[1] + 1, (), generator=rng))
        else:
            short = c.resize
        with VideoReader(path) as reader:
            first, last, note = within(reader.info.duration, start, end)
            for _ in range(2):  # a damaged file found to end early: again, over the part that decodes
                span = last - first
                starts = [first + where * max(0.0, span - c.seconds)] if self.train else \
                    [first + s for s in uniform_starts(span, c.seconds, self.num_clips)]
                clips = reader.clips(clip_times(starts, c.frames, c.interval), max(short, c.crop))
                decodes_to = reader.decodable_end(c.seconds)
                if decodes_to >= last - 1e-9:
                    break
                if decodes_to <= first:
                    raise DecodeError(f"damaged: the video decodes to {decodes_to:.2f} s, before the segment starts")
                last = decodes_to
            warning = "; ".join(filter(None, (note, reader.warning())))
        video = torch.from_numpy(clips).permute(0, 4, 1, 2, 3)  # (N, T, H, W, C) -> (N, C, T, H, W)
        if not self.train:
            return spatial_crops(video, c.crop, self.num_crops), warning  # (N * crops, C, T, crop, crop)
        return self._maybe_flip(random_crop(video, c.crop, rng), rng), warning

    def _maybe_flip(self, video: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        return video.flip(-1) if self.hflip and torch.rand((), generator=rng) < 0.5 else video

    def _read_cached(self, path: str, start: Optional[float], end: Optional[float],
                     rng: torch.Generator) -> torch.Tensor:
        """A training clip from the frame cache: consecutive cached frames are `interval` apart;
        short-side jitter becomes a random crop window resized to the crop size."""
        c = self.clip
        blob, offsets, warning = self.cache.frames(path)
        count = len(offsets) - 1  # cached frames, `interval` apart from t = 0
        if warning and count * self.cache.interval < 0.5 * c.seconds:  # as uncached clips
            raise DecodeError(f"damaged: too little decodes for a {c.seconds:.2f} s clip ({warning})")
        low, high, note = within(count * self.cache.interval, start, end, tolerance=self.cache.interval)
        low, high = int(round(low / self.cache.interval)), max(int(round(high / self.cache.interval)), 1)
        first = low + int(torch.randint(0, max(0, high - low - c.frames) + 1, (), generator=rng))
        warning = "; ".join(filter(None, (note, warning)))
        frames = FrameCache.decode(blob, offsets, list(range(first, first + c.frames)))  # (T, C, H, W)
        short = max(c.crop, int(torch.randint(c.train_resize[0], c.train_resize[1] + 1, (), generator=rng)))
        window = min(min(frames.shape[-2:]), round(c.crop * self.cache.short_side / short))
        frames = random_crop(frames, window, rng)
        if window != c.crop:  # uint8 channels-last: torchvision's vectorised antialiased path, ~8x float's speed
            # (the crop is a view: the copy below takes only its pixels)
            frames = resize(frames.contiguous(memory_format=torch.channels_last), [c.crop, c.crop], antialias=True)
        return self._maybe_flip(frames.permute(1, 0, 2, 3)[None], rng), warning  # (1, C, T, H, W)


def within(duration: float, start: Optional[float], end: Optional[float],
           tolerance: float = 1e-3) -> tuple[float, float, str]:
    """(first, last, note): the part of a video of `duration` s a sample covers: all of it, or its
    segment clipped to the video (the note says so, unless it ends within `tolerance` after the
    video); a segment starting after the end is an error."""
    if start is None:
        return 0.0, duration, ""
    if start >= duration:
        raise DecodeError(f"the segment starts at {start:g} s, after the video ends ({duration:.2f} s)")
    if end > duration + tolerance:
        return start, duration, f"segment ends at {end:g} s, after the video ({duration:.2f} s): clipped to it"
    return start, min(end, duration), ""


class VideoWindows(Dataset):
    """Timeline items: consecutive windows of one video, `chunk` at a time, one centred clip each.

    A long video becomes many small items, so memory stays flat however long it is. An item is
    {"video": uint8 (W, C, T, crop, crop), "index": video, "starts": (W,) window starts} (plus
    "warning" for a damaged file), an error, or {"index", "past_end": True} for windows after the
    point where a damaged file stops decoding (they show nothing; the video's first item always
    keeps a window, so every video gets its row).
    """

    def __init__(self, paths: Sequence[str], clip: ClipSettings, window: float, stride: float, chunk: int = 16):
        self.paths, self.clip, self.window = list(paths), clip, window
        self.items: list[tuple[int, list[float], Optional[str]]] = []  # (video, window starts, error)
        self._first: dict[int, int] = {}  # video -> its first item (which always keeps a window)
        for index, sample in enumerate(self.paths):
            path, start, end = split(sample)
            try:
                with VideoReader(path) as reader:
                    first, last, _ = within(reader.info.duration, start, end)  # a segment: its own windows
            except Exception as err:  # any exception: the file gets its row
                self.items.append((index, [], failure(err)))
                continue
            count = max(1, int(np.floor((last - first - window) / stride + 1e-9)) + 1)
            starts = [first + i * stride for i in range(count)]
            self._first[index] = len(self.items)
            self.items += [(index, starts[i:i + chunk], None) for i in range(0, len(starts), chunk)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, item: int) -> dict:
        index, starts, error = self.items[item]
        if error is not None:
            return {"index": index, "error": error}
        c = self.clip
        offset = max(0.0, (self.window - c.seconds) / 2)  # the clip sits in the middle of its window
        try:
            with VideoReader(split(self.paths[index])[0]) as reader:
                clips = reader.clips(clip_times([s + offset for s in starts], c.frames, c.interval),
                                     max(c.resize, c.crop))
                end, warning = reader.decodable_end(c.seconds), reader.warning()
        except Exception as err:  # any exception: the file gets its row
            return {"index": index, "error": failure(err)}
        kept = max(sum(s < end for s in starts), int(item == self._first[index]))  # windows showing the video
        if not kept:  # a damaged file ends before these windows: they show nothing
            return {"index": index, "past_end": True}
        video = center_crop(torch.from_numpy(clips[:kept]).permute(0, 4, 1, 2, 3), self.clip.crop)
        return {"video": video, "label": -1, "index": index, "starts": torch.tensor(starts[:kept]),
                **({"warning": warning} if warning else {})}


class EpochSampler(Sampler):
    """Draws each epoch's training items from (seed, epoch) alone and yields (epoch, index, draw)
    keys, so the order and augmentation of every epoch are a function of the seed.

    `repeats` clips of every video per epoch, shuffled; or, with `weights` (one per video), as many
    draws with replacement in proportion to them (a class-balanced epoch). Under DDP, Lightning shards
    this order between processes; every process draws the same order, so their shares are disjoint.
    `epoch` is asked for when an epoch's iterator is made, which with worker processes happens
    before Lightning's set_epoch call.
    """

    def __init__(self, size: int, seed: int, epoch: Callable[[], int], repeats: int = 1,
                 weights: Optional[Sequence[float]] = None):
        self.size, self.seed, self.epoch, self.repeats = size, seed, epoch, repeats
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=torch.float64)

    def __len__(self) -> int:
        return self.size * self.repeats

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        epoch = self.epoch()
        rng = torch.Generator().manual_seed(self.seed + epoch)
        if self.weights is not None:
            order = torch.multinomial(self.weights, len(self), replacement=True, generator=rng).tolist()
        else:
            order = (torch.randperm(len(self), generator=rng) % self.size).tolist()
        return iter([(epoch, index, draw) for draw, index in enumerate(order)])


def spatial_crops(video: torch.Tensor, size: int, count: int) -> torch.Tensor:
    """`count` square crops (1: centre; 3: both ends and centre of the long side) of each clip,
    stacked clip by clip: (N, C, T, H, W) -> (N * count, C, T, size, size)."""
    if count == 1:
        return center_crop(video, size)
    h, w = video.shape[-2:]
    along = [0, (max(h, w) - size) // 2, max(h, w) - size]
    crops = [video[..., a:a + size, (w - size) // 2:(w - size) // 2 + size] if h > w
             else video[..., (h - size) // 2:(h - size) // 2 + size, a:a + size] for a in along]
    return torch.stack(crops, dim=1).flatten(0, 1)


def center_crop(video: torch.Tensor, size: int) -> torch.Tensor:
    h, w = video.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return video[..., top:top + size, left:left + size]


def random_crop(video: torch.Tensor, size: int, rng: torch.Generator) -> torch.Tensor:
    h, w = video.shape[-2:]
    top = int(torch.randint(0, h - size + 1, (), generator=rng))
    left = int(torch.randint(0, w - size + 1, (), generator=rng))
    return video[..., top:top + size, left:left + size]


def collate(items: list[dict]) -> dict:
    """Stack decodable items; list the others under "failed" as (index, reason), and the warnings of
    partly decoded ones under "warnings" as (index, text)."""
    ok = [it for it in items if "video" in it]
    batch = {
        "index": torch.tensor([it["index"] for it in ok], dtype=torch.long),
        "label": (torch.stack([it["label"] for it in ok]) if ok and isinstance(ok[0]["label"], torch.Tensor)
                  else torch.tensor([it["label"] for it in ok], dtype=torch.long)),
        "failed": [(it["index"], it["error"]) for it in items if "error" in it],
        "warnings": [(it["index"], it["warning"]) for it in ok if "warning" in it],
    }
    if ok:  # (B, N, C, T, H, W) uint8, channels innermost in memory as decoded: stacking is a plain
        # copy, and the float batch is already in the channels_last_3d layout the model runs in
        videos = torch.stack([it["video"].permute(0, 2, 3, 4, 1) for it in ok])
        batch["video"] = videos.permute(0, 1, 5, 2, 3, 4)
    if ok and "starts" in ok[0]:  # timeline items (batch size 1)
        batch["starts"] = torch.stack([it["starts"] for it in ok])
    return batch
