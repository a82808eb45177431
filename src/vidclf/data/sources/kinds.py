"""Which files are videos: by name (extension) or, lacking a video extension, by their first bytes."""

from __future__ import annotations

from pathlib import Path

from vidclf.io import sniff

VIDEO_EXTENSIONS = frozenset(
    ".mp4 .m4v .mov .avi .mkv .webm .mpg .mpeg .ts .wmv .flv .3gp .gif".split())


def is_video_name(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTENSIONS and not path.name.startswith(".")


def looks_like_video(path: Path) -> bool:
    """Whether the first bytes are those of a video container (for files without a video extension)."""
    return sniff.is_video(sniff.head(path))
