"""A seeded mutational fuzzer for video files, and the damaged files it taught us to handle.

`seed_videos` writes one small real video per container; `mutate` applies one random edit of the
kinds that break real files (byte flips, truncation, shuffled or duplicated chunks, a changed
fourcc or box type, a wrong box size). `crashers` writes the minimised cases that once stopped or
hung a run, plus the damaged-but-decodable ones, so the fast suite keeps them fixed.
"""

from __future__ import annotations

import os
import socket
import struct
from pathlib import Path

import numpy as np

from vidclf.synthetic import render_motion, write_video

SEEDS = [(".mp4", "libx264"), (".webm", "libvpx-vp9"), (".avi", "mpeg4"), (".mkv", "libx264"),
         (".mov", "libx264"), (".gif", "gif")]
FOURCCS = [b"avc1", b"mp4v", b"stsd", b"moov", b"mdat", b"trak", b"mdia", b"minf", b"stbl", b"stco", b"stsz",
           b"stts", b"avcC", b"hdlr", b"vide", b"ftyp", b"RIFF", b"AVI ", b"movi", b"idx1", b"strh", b"strf",
           b"FMP4", b"XVID", b"V_VP9", b"V_MPEG4", b"GIF89a", b"NETSCAPE"]
NOT_UTF8 = b"\xff\xfe caf\xe9.mp4"  # Latin-1 bytes, as old cameras and Windows shares write them


def seed_videos(folder: Path, frames: int = 45, size: int = 48) -> list[Path]:
    """One short real video per container in SEEDS (mp4/webm/avi/mkv/mov/gif)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for ext, codec in SEEDS:
        path = folder / f"seed{ext}"
        if codec == "gif":
            write_video(str(path), render_motion("rising", rng, frames // 3, size), fps=10, codec="gif")
        else:
            write_video(str(path), render_motion("rising", rng, frames, size), codec=codec)
        paths.append(path)
    return paths


def mutate(data: bytes, rng: np.random.Generator) -> tuple[str, bytes]:
    """(kind, mutated bytes): one random edit of `data`."""
    kind = str(rng.choice(["flip", "truncate", "shuffle", "duplicate", "fourcc", "box_size"]))
    b = bytearray(data)
    n = len(b)
    if kind == "flip":  # a few to a few thousand flipped bytes, anywhere or in one region
        count = int(rng.integers(1, min(2000, n // 4) + 1))
        lo = int(rng.integers(0, n)) if rng.random() < 0.5 else 0
        hi = min(n, lo + int(rng.integers(count, 4 * count + 2))) if lo else n
        for i in rng.integers(lo, hi, count):
            b[i] ^= int(rng.integers(1, 256))
    elif kind == "truncate":
        del b[int(rng.integers(1, n)):]
    elif kind in ("shuffle", "duplicate"):
        size = int(rng.integers(16, max(17, n // 4)))
        a, c = (int(x) for x in rng.integers(0, max(1, n - size), 2))
        chunk = bytes(b[a:a + size])
        if kind == "shuffle":  # swap two chunks
            b[a:a + size], b[c:c + size] = b[c:c + size], chunk
        else:
            b[c:c] = chunk
    else:
        found = [(i, tag) for tag in FOURCCS for i in _find_all(data, tag)]
        if not found:
            return mutate(data, rng)
        i, tag = found[int(rng.integers(0, len(found)))]
        if kind == "fourcc":
            b[i:i + len(tag)] = bytes(rng.integers(32, 127, len(tag), dtype=np.uint8)) if rng.random() < 0.5 \
                else b"zzzzzzzz"[:len(tag)]
        elif i >= 4:  # the box (or RIFF chunk) size in front of the tag
            size = int(rng.choice([0, 1, 7, 8, 0xFFFFFFFF, int(rng.integers(0, 1 << 31)),
                                   struct.unpack(">I", bytes(b[i - 4:i]))[0] + int(rng.integers(-64, 65))]))
            b[i - 4:i] = struct.pack(">I", size % (1 << 32))
    return kind, bytes(b)


def _find_all(data: bytes, tag: bytes) -> list[int]:
    out, i = [], data.find(tag)
    while i >= 0 and len(out) < 8:
        out.append(i)
        i = data.find(tag, i + 1)
    return out


def write_mutants(seeds: list[Path], folder: Path, count: int, seed: int = 0) -> dict[str, str]:
    """`count` mutants of `seeds` into `folder` (round robin over the seeds); {file name: kind}."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    kinds = {}
    for i in range(count):
        source = seeds[i % len(seeds)]
        kind, data = mutate(source.read_bytes(), rng)
        name = f"m{i:04d}_{kind}{source.suffix}"
        (folder / name).write_bytes(data)
        kinds[name] = kind
    return kinds


def faststart_mp4(path: Path, frames: int = 300, size: int = 64) -> Path:
    """A 10 s mp4 with its index (moov) in front, keyframe every second, as web uploads are."""
    write_video(str(path), render_motion("rising", np.random.default_rng(0), frames, size), g="30",
                container_options={"movflags": "faststart"})
    return path


def crashers(folder: Path) -> dict[str, str]:
    """Files that once stopped, hung or were refused by a run, written into `folder`;
    {name: what must come of it}: 'error' (its own row), 'partly' (ok, with a warning),
    'decodes' (ok; a warning only if its views meet the damage), 'ignored' (listed, never opened) or 'ok'."""
    folder.mkdir(parents=True, exist_ok=True)
    good = faststart_mp4(folder / "good.mp4")
    data = good.read_bytes()
    stsd = data.find(b"stsd")
    (folder / "unknown_codec.mp4").write_bytes(data[:data.find(b"avc1", stsd)] + b"zzzz" +
                                               data[data.find(b"avc1", stsd) + 4:])
    (folder / "cut_at_50.mp4").write_bytes(data[:len(data) // 2])
    (folder / "cut_at_90.mp4").write_bytes(data[:len(data) * 9 // 10])
    flipped = bytearray(data)
    for i in np.random.default_rng(1).integers(len(data) // 2 - 3000, len(data) // 2 + 3000, 2000):
        flipped[i] ^= 0xFF
    (folder / "flipped_bytes.mp4").write_bytes(bytes(flipped))
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "text.mkv").write_text("not a video\n")
    moov = data.find(b"moov")
    (folder / "moov_size_huge.mp4").write_bytes(data[:moov - 4] + b"\xff\xff\xff\xf0" + data[moov:])
    os.mkfifo(folder / "pipe.mp4")
    os.mkfifo(folder / "pipe_no_extension")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(folder / "socket.webm"))
    server.close()  # the socket file stays
    os.link(good, os.path.join(os.fsencode(folder), NOT_UTF8))
    return {"good.mp4": "ok", "unknown_codec.mp4": "error", "cut_at_50.mp4": "partly", "cut_at_90.mp4": "partly",
            "flipped_bytes.mp4": "decodes", "empty.mp4": "error", "text.mkv": "error", "moov_size_huge.mp4": "decodes",
            "pipe.mp4": "ignored", "pipe_no_extension": "ignored", "socket.webm": "ignored",
            os.fsdecode(NOT_UTF8): "ok"}
