"""Render small labelled videos whose classes differ only in how things move.

Used by `make demo` and the tests. Every frame shows the same kind of scene (a random texture and a
few coloured squares at random places); only the direction of motion tells the classes apart, so a
single frame cannot give the class away. The classes are invariant to a horizontal flip.

The multi-label set (--multi-label) tags each video with any subset of TAGS, independently: one
square per tag rises, moves sideways or blinks among two still ones, so the tags co-occur freely.

The harder set (--six) has six classes (SIX: the three motions, zooming in and out, pulsing) carried
by two squares among three wandering ones, under a panning camera; each file has its own size,
frame rate, length and container.

Example:
    python -m vidclf.synthetic data/demo --per-class 24
    python -m vidclf.synthetic data/six --six --per-class 60 --val-per-class 20
    python -m vidclf.synthetic data/tags --multi-label   # data/tags/{train,val}.csv, path,labels
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import av
import numpy as np

MOTIONS = {"rising": (0.0, -1.0), "falling": (0.0, 1.0), "sideways": (1.0, 0.0)}
TAGS = ("blinking", "rising", "sideways")
# The harder set (--six): six motions, and files as they come (sizes, frame rates, containers vary).
SIX = ("rising", "falling", "sideways", "zoom_in", "zoom_out", "blinking")
SIZES = ((80, 80), (72, 96), (96, 72), (90, 120), (64, 80))  # (height, width)
FORMATS = ((".mp4", "libx264"), (".mkv", "libx264"), (".webm", "libvpx-vp9"), (".avi", "mpeg4"))


def write_video(path: str, frames: np.ndarray, fps: int = 30, codec: str = "libx264",
                container_options: dict | None = None, **options: str) -> None:
    """Encode uint8 frames (T, H, W, 3) into `path` (container from the extension); `options` go to
    the encoder (e.g. g="30"), `container_options` to the muxer (e.g. {"movflags": "faststart"})."""
    pix_fmt = {"mjpeg": "yuvj420p", "libx264rgb": "rgb24", "gif": "rgb8"}.get(codec, "yuv420p")
    with av.open(path, "w", options=container_options or {}) as container:
        stream = container.add_stream(codec, rate=fps, options=options)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = pix_fmt
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())


def render_motion(motion: str, rng: np.random.Generator, frames: int = 60, size: int = 80) -> np.ndarray:
    """(frames, size, size, 3) uint8: squares drifting in direction MOTIONS[motion] over a texture."""
    dx, dy = MOTIONS[motion]
    if motion == "sideways" and rng.random() < 0.5:
        dx = -dx
    coarse = rng.integers(0, 120, (size // 8, size // 8, 3), dtype=np.uint8)
    background = np.kron(coarse, np.ones((8, 8, 1), dtype=np.uint8))
    speed = rng.uniform(1.2, 2.0)  # pixels per frame
    squares = [(rng.uniform(0, size, 2), int(rng.integers(10, 18)), rng.integers(150, 256, 3))
               for _ in range(3)]
    video = np.empty((frames, size, size, 3), dtype=np.uint8)
    for t in range(frames):
        image = background.copy()
        for (x0, y0), side, colour in squares:
            x = int(x0 + dx * speed * t) % size
            y = int(y0 + dy * speed * t) % size
            rows, cols = np.arange(y, y + side) % size, np.arange(x, x + side) % size
            image[np.ix_(rows, cols)] = colour
        video[t] = image
    return video


def render_six(motion: str, rng: np.random.Generator, seconds: float, fps: int, height: int,
               width: int) -> np.ndarray:
    """(frames, height, width, 3) uint8 of one of SIX. Every video: a textured background the camera
    pans across in a random direction, three distractor squares wandering at random, and two squares
    that carry the class: they rise, fall, move sideways (either way), zoom in or out (move away from /
    towards the centre while growing / shrinking), or stay put while pulsing between dim and bright.
    Speeds are per second, so every frame rate shows the same motion; sizes and colours vary."""
    frames = max(2, round(seconds * fps))
    coarse = rng.integers(0, 120, (height // 8 + 2, width // 8 + 2, 3), dtype=np.uint8)
    texture = np.kron(coarse, np.ones((8, 8, 1), dtype=np.uint8))
    pan = rng.normal(0, 10, 2) / fps  # camera drift, pixels per frame
    speed = rng.uniform(24, 40) / fps
    dx, dy = MOTIONS.get(motion, (0.0, 0.0))
    if motion == "sideways" and rng.random() < 0.5:
        dx = -dx
    growth = {"zoom_in": 1.0, "zoom_out": -1.0}.get(motion, 0.0) * rng.uniform(0.3, 0.45) / fps  # log-scale per frame
    cx, cy = width / 2, height / 2

    def square() -> list:
        return [rng.uniform(0, width), rng.uniform(0, height), rng.uniform(6, 12), rng.integers(140, 256, 3)]

    carriers, wanderers = [square() for _ in range(2)], [square() for _ in range(3)]
    steps = rng.normal(0, 1.0, (frames, 3, 2)).cumsum(0) * 12 / fps  # random walks, no net direction
    phase = rng.uniform(0, 2 * np.pi, 2)
    video = np.empty((frames, height, width, 3), dtype=np.uint8)

    def paint(image, x, y, side, colour) -> None:
        size = max(2, int(side))
        rows = np.arange(int(y) - size // 2, int(y) + (size + 1) // 2) % height
        cols = np.arange(int(x) - size // 2, int(x) + (size + 1) // 2) % width
        image[np.ix_(rows, cols)] = colour

    for t in range(frames):
        ox, oy = pan * t
        shift = (int(oy) % 8, int(ox) % 8)
        image = texture[shift[0]:shift[0] + height, shift[1]:shift[1] + width].copy()
        scale = np.exp(growth * (t - frames / 2))  # zooms pass through scale 1 mid-video
        for (x0, y0, side, colour), (sx, sy) in zip(wanderers, steps[t]):
            paint(image, x0 + sx - ox, y0 + sy - oy, side, colour)
        for k, (x0, y0, side, colour) in enumerate(carriers):
            gain = 0.65 + 0.35 * np.sin(2 * np.pi * 1.5 * t / fps + phase[k]) if motion == "blinking" else 1.0
            x = cx + (x0 - cx) * scale + dx * speed * t - ox
            y = cy + (y0 - cy) * scale + dy * speed * t - oy
            paint(image, x, y, side * scale, (colour * gain).astype(np.uint8))
        video[t] = image
    return video


def render_six_dataset(root: str, per_class: int, seed: int = 0) -> list[str]:
    """ROOT/<motion>/<i>.<ext> for every class of SIX, each file with its own size, frame rate
    (24, 25 or 30), length (2-3 s) and container/codec; returns the paths."""

    def render(motion: str, rng: np.random.Generator, name: Path) -> str:
        height, width = SIZES[int(rng.integers(len(SIZES)))]
        fps = int(rng.choice([24, 25, 30]))
        ext, codec = FORMATS[int(rng.integers(len(FORMATS)))]
        write_video(f"{name}{ext}", render_six(motion, rng, rng.uniform(2, 3), fps, height, width), fps=fps,
                    codec=codec)
        return f"{name}{ext}"

    return _class_folders(root, SIX, per_class, seed, render)


def _class_folders(root: str, classes, per_class: int, seed: int, render) -> list[str]:
    """ROOT/<class>/<class>_<seed>_<i> files made by render(class, rng, name without extension)."""
    rng = np.random.default_rng(seed)
    paths = []
    for motion in classes:
        folder = Path(root) / motion
        folder.mkdir(parents=True, exist_ok=True)
        paths += [render(motion, rng, folder / f"{motion}_{seed}_{i:03d}") for i in range(per_class)]
    return paths


def render_long(path: str, motions: list[str], seconds: float, rng: np.random.Generator, size: int = 80,
                fps: int = 30) -> list[tuple[float, float]]:
    """One video of consecutive segments, each `seconds` long showing a new scene with the motion of
    MOTIONS named in turn; returns each segment's (start, end) in seconds."""
    frames = round(seconds * fps)
    video = np.concatenate([render_motion(m, rng, frames, size) for m in motions])
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_video(path, video, fps=fps)
    return [(i * frames / fps, (i + 1) * frames / fps) for i in range(len(motions))]


def render_tags(tags: set[str], rng: np.random.Generator, frames: int = 60, size: int = 80) -> np.ndarray:
    """(frames, size, size, 3) uint8: two still squares, plus for each tag in `tags` one square that
    rises, moves sideways (either way) or blinks (on and off every 4 frames), over a texture."""
    coarse = rng.integers(0, 120, (size // 8, size // 8, 3), dtype=np.uint8)
    background = np.kron(coarse, np.ones((8, 8, 1), dtype=np.uint8))
    speed = rng.uniform(1.2, 2.0)  # pixels per frame
    moves = {"still": (0.0, 0.0), "blinking": (0.0, 0.0), "rising": (0.0, -1.0),
             "sideways": (1.0 if rng.random() < 0.5 else -1.0, 0.0)}
    squares = [(kind, rng.uniform(0, size, 2), int(rng.integers(10, 16)), rng.integers(150, 256, 3))
               for kind in ["still", "still", *sorted(tags)]]
    phase = int(rng.integers(0, 8))
    video = np.empty((frames, size, size, 3), dtype=np.uint8)
    for t in range(frames):
        image = background.copy()
        for kind, (x0, y0), side, colour in squares:
            if kind == "blinking" and (t + phase) // 4 % 2:
                continue
            dx, dy = moves[kind]
            x, y = int(x0 + dx * speed * t) % size, int(y0 + dy * speed * t) % size
            image[np.ix_(np.arange(y, y + side) % size, np.arange(x, x + side) % size)] = colour
        video[t] = image
    return video


def render_tagged(root: str, name: str, count: int, seed: int = 0, frames: int = 60, size: int = 80,
                  ext: str = ".mp4", codec: str = "libx264") -> str:
    """Write `count` videos under ROOT/videos/, each with every tag of TAGS independently at
    probability 1/2 (some with none), and the list ROOT/<name>.csv (path,labels; `;` between labels)."""
    rng = np.random.default_rng(seed)
    (Path(root) / "videos").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(count):
        tags = {tag for tag in TAGS if rng.random() < 0.5}
        path = f"videos/{name}_{i:03d}{ext}"
        write_video(str(Path(root) / path), render_tags(tags, rng, frames, size), codec=codec)
        rows.append({"path": path, "labels": ";".join(sorted(tags))})
    listing = Path(root) / f"{name}.csv"
    with open(listing, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["path", "labels"])
        writer.writeheader()
        writer.writerows(rows)
    return str(listing)


def render_dataset(root: str, per_class: int = 24, seed: int = 0, frames: int = 60, size: int = 80,
                   ext: str = ".mp4", codec: str = "libx264") -> list[str]:
    """Write ROOT/<motion>/<i>.mp4 for every motion class; returns the paths."""

    def render(motion: str, rng: np.random.Generator, name: Path) -> str:
        write_video(f"{name}{ext}", render_motion(motion, rng, frames, size), codec=codec)
        return f"{name}{ext}"

    return _class_folders(root, MOTIONS, per_class, seed, render)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", help="output folder; train/ and val/ are written inside")
    parser.add_argument("--per-class", type=int, default=24, help="training videos per class")
    parser.add_argument("--val-per-class", type=int, default=10, help="validation videos per class")
    parser.add_argument("--multi-label", action="store_true",
                        help=f"write the multi-label set instead: tags {', '.join(TAGS)}; train.csv and val.csv")
    parser.add_argument("--videos", type=int, default=120, help="--multi-label: training videos (val: a third)")
    parser.add_argument("--six", action="store_true",
                        help=f"write the harder set instead: {', '.join(SIX)}; varied sizes, frame rates, containers")
    args = parser.parse_args()
    if args.six:
        render_six_dataset(f"{args.root}/train", args.per_class, seed=0)
        render_six_dataset(f"{args.root}/val", args.val_per_class, seed=1)
        print(f"vidclf: wrote {len(SIX) * (args.per_class + args.val_per_class)} videos ({', '.join(SIX)}) "
              f"under {args.root}")
        return
    if args.multi_label:
        render_tagged(args.root, "train", args.videos, seed=0)
        render_tagged(args.root, "val", args.videos // 3, seed=1)
        print(f"vidclf: wrote {args.videos + args.videos // 3} videos tagged with any of {', '.join(TAGS)} "
              f"and {args.root}/train.csv, {args.root}/val.csv")
        return
    render_dataset(f"{args.root}/train", args.per_class, seed=0)
    render_dataset(f"{args.root}/val", args.val_per_class, seed=1)
    print(f"vidclf: wrote {len(MOTIONS) * (args.per_class + args.val_per_class)} videos "
          f"({', '.join(MOTIONS)}) under {args.root}")


if __name__ == "__main__":
    main()
