"""Render small labelled videos whose classes differ only in how things move.

Used by `make demo` and the tests. Every frame shows the same kind of scene (a random texture and a
few coloured squares at random places); only the direction of motion tells the classes apart, so a
single frame cannot give the class away. The classes are invariant to a horizontal flip.

The multi-label set (--multi-label) tags each video with any subset of TAGS, independently: one
square per tag rises, moves sideways or blinks among two still ones, so the tags co-occur freely.

Example:
    python -m vidclf.synthetic data/demo --per-class 24
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
    rng = np.random.default_rng(seed)
    paths = []
    for motion in MOTIONS:
        folder = Path(root) / motion
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            path = str(folder / f"{motion}_{seed}_{i:03d}{ext}")
            write_video(path, render_motion(motion, rng, frames, size), codec=codec)
            paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", help="output folder; train/ and val/ are written inside")
    parser.add_argument("--per-class", type=int, default=24, help="training videos per class")
    parser.add_argument("--val-per-class", type=int, default=10, help="validation videos per class")
    parser.add_argument("--multi-label", action="store_true",
                        help=f"write the multi-label set instead: tags {', '.join(TAGS)}; train.csv and val.csv")
    parser.add_argument("--videos", type=int, default=120, help="--multi-label: training videos (val: a third)")
    args = parser.parse_args()
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
