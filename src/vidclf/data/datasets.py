"""Map-style clip datasets: one item per video, so every video is seen (or reported) exactly once.

An item is {"video": uint8 (N, C, T, H, W), "label": int (multi-label: a 0/1 float (K,) tensor),
"index": int} with N clips (N = 1 in training), plus "warning": str when only part of a damaged file decodes (its clips are then drawn
from that part), or {"index": int, "error": str} when the file cannot be used, whatever the
exception: the caller skips and reports it, nothing is substituted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional, Union

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision.transforms.v2.functional import resize

from vidclf.data.cache import FrameCache
from vidclf.data.clips import ClipSettings, clip_times, uniform_starts, within
from vidclf.data.decode import VideoReader
from vidclf.data.failures import DecodeError, failure
from vidclf.data.segments import split
from vidclf.data.transforms import center_crop, random_crop, spatial_crops
from vidclf.seeds import derived_seed


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
