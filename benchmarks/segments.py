"""Labelled segments read in place vs the same segments cut into files first.

A 30-minute synthetic video (60 segments of 30 s, each a new scene with one motion; 320x240, 30 fps,
x264 with its default keyframe interval) is read as 60 `path,label,start,end` rows, against the
same 60 segments cut into files the two ways people cut them: stream copy (`ffmpeg -ss S -to E
-c copy`: no re-encoding, but the cut starts at the keyframe before S, so it holds frames from
the previous segment) and re-encoded (`ffmpeg -ss S -to E` with libx264: exact, slower to make,
another generation of compression). Cutting is done with ffmpeg's libraries through PyAV (what
the ffmpeg command runs). Training clips/s are measured single-process (`num_workers 0`, the
threads vidclf chooses) over the same number of random training clips, uncached and from the frame
cache (filled first, not timed), in one run; disk used by each form.

    python benchmarks/segments.py [--clips 120] [--out runs/bench_segments]
"""

from __future__ import annotations

import argparse
import shutil
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from vidclf.cores import compute_threads
from vidclf.data.cache import FrameCache
from vidclf.data.clips import ClipSettings
from vidclf.data.datasets import VideoClips
from vidclf.data.segments import segment
from vidclf.synthetic import MOTIONS, render_motion

SEGMENTS, SECONDS, FPS, HEIGHT, WIDTH = 60, 30.0, 30, 240, 320
CLIP = ClipSettings(frames=8, rate=4, crop=160, resize=182, train_resize=(182, 228))


def write_long(path: Path) -> list[tuple[str, float, float]]:
    """The long video, written segment by segment (memory stays small); returns (label, start, end)."""
    rng = np.random.default_rng(0)
    labels = [list(MOTIONS)[i % len(MOTIONS)] for i in range(SEGMENTS)]
    frames = int(SECONDS * FPS)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.height, stream.width, stream.pix_fmt = HEIGHT, WIDTH, "yuv420p"
        for label in labels:
            small = render_motion(label, rng, frames, size=HEIGHT // 2)  # (T, 120, 120, 3)
            for image in np.repeat(np.repeat(small, 2, axis=1), 2, axis=2):  # 240 x 240, letterboxed to 320
                canvas = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
                canvas[:, 40:280] = image
                container.mux(stream.encode(av.VideoFrame.from_ndarray(canvas, format="rgb24")))
        container.mux(stream.encode())
    return [(label, i * SECONDS, (i + 1) * SECONDS) for i, label in enumerate(labels)]


def cut_copy(source: Path, start: float, end: float, target: Path) -> None:
    """As `ffmpeg -ss START -to END -i SOURCE -c copy TARGET`: packets from the keyframe at or before
    START to END, timestamps shifted to start at 0."""
    with av.open(str(source)) as src, av.open(str(target), "w") as dst:
        video = src.streams.video[0]
        out = dst.add_stream_from_template(video)
        src.seek(int(start / video.time_base), stream=video, backward=True, any_frame=False)
        offset = None
        for packet in src.demux(video):
            if packet.pts is None or packet.dts is None:
                continue
            if packet.pts * video.time_base >= end:
                break
            offset = packet.dts if offset is None else offset
            packet.pts -= offset
            packet.dts -= offset
            packet.stream = out
            dst.mux(packet)


def cut_encode(source: Path, start: float, end: float, target: Path) -> None:
    """As `ffmpeg -ss START -to END -i SOURCE -c:v libx264 TARGET`: the exact frames, re-encoded."""
    with av.open(str(source)) as src, av.open(str(target), "w") as dst:
        video = src.streams.video[0]
        out = dst.add_stream("libx264", rate=FPS)
        out.height, out.width, out.pix_fmt = HEIGHT, WIDTH, "yuv420p"
        src.seek(int(start / video.time_base), stream=video, backward=True, any_frame=False)
        for frame in src.decode(video):
            t = frame.time
            if t < start - 1e-6:
                continue
            if t >= end - 1e-6:
                break
            frame.pts, frame.time_base = None, Fraction(1, FPS)
            dst.mux(out.encode(frame))
        dst.mux(out.encode())


def clips_per_second(samples: list[str], cache: FrameCache | None, count: int) -> float:
    dataset = VideoClips(samples, None, CLIP, train=True, seed=0, cache=cache)
    order = np.random.default_rng(1).integers(0, len(samples), count)
    if cache is not None:  # fill the cache first (not timed), for every sample: each form's cache then holds
        for i in range(len(samples)):  # the whole data set (filling only the drawn ones made the cut files'
            dataset[(0, i, 0)]  # caches look 17% smaller: 51 of their 60 entries, against the long video's one)
    start = time.perf_counter()
    for draw, i in enumerate(order):
        assert "video" in dataset[(1, int(i), draw)]
    return count / (time.perf_counter() - start)


def size_mb(paths) -> float:
    return sum(Path(p).stat().st_size for p in paths) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=120, help="training clips timed per form")
    parser.add_argument("--out", default="runs/bench_segments")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    threads = compute_threads()
    if threads:
        torch.set_num_threads(threads)
    long = out / "long.mp4"
    made = time.perf_counter()
    rows = write_long(long)
    print(f"wrote {long}: {SEGMENTS} segments x {SECONDS:g} s, {WIDTH}x{HEIGHT}, {size_mb([long]):.1f} MB "
          f"({time.perf_counter() - made:.0f} s)")
    forms = {"segments of the long video (vidclf)": [segment(str(long), start, end) for _, start, end in rows]}
    for name, cut in (("cut files, stream copy", cut_copy), ("cut files, re-encoded", cut_encode)):
        folder = out / name.split(", ")[1].replace(" ", "_")
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        start = time.perf_counter()
        paths = []
        for i, (_, a, b) in enumerate(rows):
            paths.append(str(folder / f"{i:02d}.mp4"))
            cut(long, a, b, Path(paths[-1]))
        print(f"{name}: cut in {time.perf_counter() - start:.1f} s")
        forms[name] = paths
    print(f"\n{'form':40} {'disk MB':>8} {'uncached clips/s':>17} {'cached clips/s':>15} {'cache MB':>9}")
    base = None
    for name, samples in forms.items():
        cache_dir = out / "cache" / name.split()[0]
        shutil.rmtree(cache_dir, ignore_errors=True)
        cache = FrameCache(str(cache_dir), CLIP.interval, CLIP.train_resize[1])
        uncached = clips_per_second(samples, None, args.clips)
        cached = clips_per_second(samples, cache, args.clips)
        disk = size_mb([long]) if samples[0].startswith(str(long)) else size_mb(samples) + size_mb([long])
        base = base or uncached
        print(f"{name:40} {disk:8.1f} {uncached:11.1f} ({uncached / base:.2f}x) {cached:9.1f} "
              f"{size_mb(cache_dir.iterdir()):9.1f}")
    print("disk MB of cut files includes the long original they were cut from (kept, as people keep it)")


if __name__ == "__main__":
    main()
