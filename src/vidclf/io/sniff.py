"""What a file is from its first bytes: one table of magic numbers for videos, checkpoints and ONNX models."""

from __future__ import annotations

import os
import stat
from pathlib import Path

HEAD = 192  # bytes read: enough for every signature below (MPEG-TS needs 189)
VIDEO_MAGIC = (b"\x1a\x45\xdf\xa3",  # Matroska / WebM
               b"GIF87a", b"GIF89a", b"FLV",
               b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3",  # MPEG program stream, MPEG video
               b"\x30\x26\xb2\x75\x8e\x66\xcf\x11")  # ASF / WMV
CHECKPOINT_MAGIC = (b"PK\x03\x04", b"\x80")  # torch.save: a zip archive, or a legacy pickle


def missing(path: str) -> str:
    """Why a local `path` cannot be read because nothing is there ("" when something is), naming the
    folder looked in (for a list's relative paths that folder is the usual mistake)."""
    if os.path.lexists(path):
        return ""
    return f"missing: no such file {Path(path).name} in {Path(path).parent}"


def head(path: str | Path, size: int = HEAD) -> bytes:
    """The first `size` bytes of a local file (b"" when it cannot be read)."""
    try:
        with open(path, "rb") as f:
            return f.read(size)
    except OSError:
        return b""


def is_video(data: bytes) -> bool:
    """Whether `data` (a file's first bytes) starts a video container: MP4/MOV (ftyp), Matroska, AVI,
    FLV, GIF, MPEG-PS, ASF, or an MPEG-TS stream (sync byte every 188 bytes)."""
    return (data[4:8] == b"ftyp" or data.startswith(VIDEO_MAGIC)
            or (data[:4] == b"RIFF" and data[8:12] == b"AVI ") or (len(data) > 188 and data[0] == data[188] == 0x47))


def is_checkpoint(data: bytes) -> bool:
    """Whether `data` starts a file torch.save wrote."""
    return data.startswith(CHECKPOINT_MAGIC)


def describe(data: bytes) -> str:
    """What a file whose first bytes are `data` is, in words (for an error that names the file)."""
    if not data:
        return "an empty file"
    if is_video(data):
        return "a video file"
    if data.startswith(b"\x08") or b"onnx" in data[:64].lower():
        return "an ONNX model (export output, for onnxruntime)"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return f"a binary file starting with {data[:8].hex(' ')}"
    return "a text file"


NOT_REGULAR = {stat.S_ISFIFO: "a named pipe", stat.S_ISSOCK: "a socket", stat.S_ISCHR: "a device",
               stat.S_ISBLK: "a device", stat.S_ISDIR: "a folder"}


def not_regular(path: str) -> str:
    """Why `path` must not be opened ("" for a regular file, or one that cannot be looked at):
    opening a named pipe, socket or device can block forever."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return ""  # opening it says what is wrong
    if stat.S_ISREG(mode):
        return ""
    kind = next((name for test, name in NOT_REGULAR.items() if test(mode)), "not a file")
    return f"not a regular file ({kind}); only video files can be read"
