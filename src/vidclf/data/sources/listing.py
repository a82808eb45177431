"""What listing a source gives: the videos found, and the files passed over with the reason."""

from __future__ import annotations

from dataclasses import dataclass, field

from vidclf.errors import VidclfError

LABELLED_HELP = ("pass a folder with one subfolder per class, or a CSV/TSV/JSONL list with path,label "
                 "(or path,labels) columns")


@dataclass
class Listing:
    """Videos found in a source, and the files passed over with the reason (for the data report)."""

    items: list = field(default_factory=list)  # (path, label) or paths
    ignored: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


def no_duplicates(source: str, paths: list[str]) -> None:
    seen: set[str] = set()
    for path in paths:
        if path in seen:
            raise VidclfError(f"{source}: {path} is listed twice; keep one entry per video")
        seen.add(path)
