"""Training data loading: vidclf (uncached and cached) vs the Flash path vs a decoding ceiling.

Builds a Kinetics-like corpus (10 s, 30 fps, H.264 with x264's default GOP, 340x256 / 1280x720 /
1920x1080) and times random training clips for x3d_s (13 frames, one every 6th of 30 fps, short
side 182-228, 160 px crop, flip), reporting clips/s per decoding process and peak RSS per worker.

    .venv/bin/python benchmarks/data_pipeline.py [--corpus DIR] [--clips 480] [--seconds 30] [--batch 8]
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import inspect
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from vidclf.data.cache import FrameCache
from vidclf.data.clips import ClipSettings
from vidclf.data.collate import collate
from vidclf.data.datamodule import VideoDataModule
from vidclf.data.datasets import VideoClips
from vidclf.data.sampler import EpochSampler
from vidclf.models.backbones import get_spec
from vidclf.synthetic import render_motion, write_video

SIZES = {"340x256": (340, 256, 8), "1280x720": (1280, 720, 4), "1920x1080": (1920, 1080, 2)}  # w, h, videos


def build_corpus(root: Path, sizes: list[str]) -> dict[str, list[str]]:
    corpus = {}
    rng = np.random.default_rng(0)
    for name in sizes:
        w, h, count = SIZES[name]
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        corpus[name] = []
        for i in range(count):
            path = folder / f"{i}.mp4"
            if not path.exists():
                small = render_motion(["rising", "falling", "sideways"][i % 3], rng, 300, 96)
                frames = np.stack([np.kron(f, np.ones((h // 96 + 1, w // 96 + 1, 1), np.uint8))[:h, :w] for f in small])
                noise = rng.integers(0, 24, frames.shape[1:], dtype=np.uint8)  # texture: not trivially compressible
                write_video(str(path), frames + noise, fps=30)  # libx264 defaults: GOP 250
            corpus[name].append(str(path))
    return corpus


def worker_peaks(loader_iter) -> list[int]:
    """Peak RSS (MB) of each DataLoader worker, from /proc. A forked worker counts the parent's
    pages it touches (the torch import alone is ~500 MB of them) as well as its own."""
    peaks = []
    for worker in getattr(loader_iter, "_workers", []):
        with open(f"/proc/{worker.pid}/status") as f:
            peaks += [int(line.split()[1]) // 1024 for line in f if line.startswith("VmHWM")]
    return peaks


class WorkerMemory:
    """Peak private memory (USS: the pages only this worker holds, sampled every 0.1 s from
    /proc/PID/smaps_rollup) of each DataLoader worker of `iterator`. Unlike the peak RSS it leaves out
    the parent's pages a forked worker shares, so it is what each extra worker costs."""

    def __init__(self, iterator):
        self.pids = [w.pid for w in getattr(iterator, "_workers", [])]
        self.peak = dict.fromkeys(self.pids, 0)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        while not self.stop.wait(0.1):
            for pid in self.pids:
                try:
                    with open(f"/proc/{pid}/smaps_rollup") as f:
                        kb = sum(int(line.split()[1]) for line in f if line.startswith(("Private_Clean", "Private_Dirty")))
                except OSError:
                    continue
                self.peak[pid] = max(self.peak[pid], kb // 1024)

    def close(self) -> list[int]:
        self.stop.set()
        self.thread.join()
        return list(self.peak.values())


def drain(loader: DataLoader, clips: int, workers: int, seconds: float) -> tuple[float, list[int], list[int]]:
    """Clips/s per decoding process over the first `clips` clips or `seconds`, whichever comes first
    (but at least a batch from every worker; worker start-up included), peak RSS and peak private
    memory per worker (the loader's dataset holds at least `clips` items)."""
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # workers fork from this process: hand back what earlier rows freed
    start, done, least = time.perf_counter(), 0, loader.batch_size * max(1, workers)
    iterator = iter(loader)
    memory = WorkerMemory(iterator)
    for batch in iterator:
        done += len(batch["label"])
        if done >= clips or time.perf_counter() - start > seconds and done >= least:
            break
    peaks = worker_peaks(iterator)
    return done / (time.perf_counter() - start) / max(1, workers), peaks, memory.close()


def time_loader(dataset, args, workers: int) -> tuple[float, list[int], list[int]]:
    sampler = EpochSampler(len(dataset), seed=0, epoch=lambda: 0)
    loader = DataLoader(dataset, batch_size=args.batch, sampler=sampler, num_workers=workers, collate_fn=collate)
    return drain(loader, args.clips, workers, args.seconds)


def flash_dataset(paths: list[str], spec):
    """Lightning Flash's path: pytorchvideo LabeledVideoDataset + EncodedVideo (PyAV) and its
    transforms (UniformTemporalSubsample, /255, Normalize, RandomShortSideScale, RandomCrop, flip),
    written with torch ops because pytorchvideo.transforms no longer imports."""
    from pytorchvideo.data import LabeledVideoDataset, make_clip_sampler

    mean, std = torch.tensor(spec.mean).view(3, 1, 1, 1), torch.tensor(spec.std).view(3, 1, 1, 1)

    def transform(sample):
        x = sample["video"]  # (C, T, H, W) float32 0..255, every frame of the clip
        x = x[:, torch.linspace(0, x.shape[1] - 1, spec.frames).long()] / 255.0
        x = (x - mean) / std
        short = int(torch.randint(spec.train_resize[0], spec.train_resize[1] + 1, ()))
        h, w = x.shape[-2:]
        x = F.interpolate(x, size=(round(h * short / min(h, w)), round(w * short / min(h, w))), mode="bilinear")
        top = int(torch.randint(0, x.shape[-2] - spec.crop + 1, ()))
        left = int(torch.randint(0, x.shape[-1] - spec.crop + 1, ()))
        x = x[..., top:top + spec.crop, left:left + spec.crop]
        sample["video"] = x.flip(-1) if torch.rand(()) < 0.5 else x
        return sample

    return LabeledVideoDataset([(p, {"label": 0}) for p in paths], make_clip_sampler("random", spec.clip_seconds),
                               torch.utils.data.RandomSampler, transform=transform, decode_audio=False)


def time_flash(paths: list[str], spec, args, workers: int) -> tuple[float, list[int], list[int]]:
    dataset = flash_dataset(paths * (args.clips // len(paths) + 1), spec)
    return drain(DataLoader(dataset, batch_size=args.batch, num_workers=workers), args.clips, workers, args.seconds)


def ceiling(paths: list[str], spec, repeats: int = 1) -> float:
    """Clips/s if decoding a whole video (one thread, no conversion) bought all its clips' frames:
    ffmpeg -threads 1 -f null, else PyAV with one thread. Videos/s x clips per video."""
    start = time.perf_counter()
    for path in paths * repeats:
        if shutil.which("ffmpeg"):
            subprocess.run(["ffmpeg", "-v", "quiet", "-threads", "1", "-i", path, "-an", "-f", "null", "-"], check=True)
        else:
            with av.open(path) as c:
                c.streams.video[0].thread_type, c.streams.video[0].codec_context.thread_count = "SLICE", 1
                for _ in c.decode(video=0):
                    pass
    clips_per_video = 10.0 / spec.clip_seconds  # a 10 s video holds this many disjoint clips
    return len(paths) * repeats * clips_per_video / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default=str(Path(tempfile.gettempdir()) / "vidclf-bench-corpus"))
    parser.add_argument("--sizes", default=",".join(SIZES), help="which corpora to time")
    parser.add_argument("--clips", type=int, default=480, help="clips timed per measurement (at most)")
    parser.add_argument("--seconds", type=float, default=30.0, help="time per measurement (at most)")
    parser.add_argument("--batch", type=int, default=inspect.signature(VideoDataModule).parameters["batch_size"].default,
                        help="clips per batch (default: vidclf's --data.batch_size default)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    spec = get_spec("x3d_s")
    clip = ClipSettings(spec.frames, spec.rate, spec.crop, spec.resize, spec.train_resize)
    corpus = build_corpus(Path(args.corpus), args.sizes.split(","))
    print(f"x3d_s train clips: {clip.frames} frames every {clip.interval:.3f} s, short side {clip.train_resize}, "
          f"crop {clip.crop}; batch {args.batch}; {args.clips} clips or {args.seconds:.0f} s per row; "
          f"ffmpeg: {bool(shutil.which('ffmpeg'))}")
    print(f"{'input':10s} {'method':28s} {'workers':>7s} {'clips/s/proc':>12s} {'vs Flash':>8s} "
          f"{'peak RSS/worker MB':>18s} {'peak private/worker MB':>22s}")
    with tempfile.TemporaryDirectory() as cache_dir:
        for name, paths in corpus.items():
            cache = FrameCache(cache_dir, clip.interval, max(clip.train_resize[1], clip.crop))
            for path in paths:
                cache.frames(path)  # warm: decoded once, as in a first epoch
            mb = sum(f.stat().st_size for f in Path(cache_dir).glob("*.bin")) / 1e6
            hours = len(paths) * 10 / 3600
            rows = []
            for workers in (0, 1, 2):
                flash = time_flash(paths, spec, args, workers)
                rows.append(("Flash (pytorchvideo)", workers, *flash, flash[0]))
                for label, c in (("vidclf uncached", None), ("vidclf cache warm", cache)):
                    dataset = VideoClips(paths * (args.clips // len(paths) + 1), [0] * len(paths) * (args.clips // len(paths) + 1),
                                         clip, train=True, cache=c)
                    rows.append((label, workers, *time_loader(dataset, args, workers), flash[0]))
            for label, workers, rate, peaks, private, flash_rate in rows:
                peak = f"{max(peaks)}" if peaks else "-"
                own = f"{max(private)}" if private else "-"
                print(f"{name:10s} {label:28s} {workers:7d} {rate:12.2f} {rate / flash_rate:7.1f}x {peak:>18s} {own:>22s}")
            print(f"{name:10s} {'decode ceiling (1 thread)':28s} {'':7s} {ceiling(paths, spec):12.2f}")
            print(f"{name:10s} cache size {mb / hours / 1000:.2f} GB per hour of video")
            for f in Path(cache_dir).iterdir():
                f.unlink()


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
