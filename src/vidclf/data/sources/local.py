"""Videos on local disk: class folders, data set roots with split folders, folders to predict, annotation files."""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Optional

from vidclf.data.sources import formats
from vidclf.data.sources.kinds import VIDEO_EXTENSIONS, is_video_name, looks_like_video
from vidclf.data.sources.listing import LABELLED_HELP, Listing
from vidclf.data.sources.lists import LIST_SUFFIXES, from_rows, read_list
from vidclf.data.sources.splits import SPLIT_NAMES
from vidclf.errors import VidclfError
from vidclf.io.sniff import not_regular


def _format(root: Path, given: str) -> Optional[str]:
    """The annotation format of `root`: `given`, or recognised (None: vidclf's own forms)."""
    if given != "auto":
        return given
    return formats.recognise(root)


def _split_folders(root: Path) -> dict[str, Path]:
    """{split: folder} when every subfolder of `root` is named for a split (train/, val/, test/ ...)."""
    folders = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    named = {split: p for p in folders for split, names in SPLIT_NAMES.items() if p.name.lower() in names}
    return named if folders and len(named) == len(folders) else {}


def _unlabelled(source: str, videos_root: Optional[str], format: str = "auto") -> Listing:
    root = _existing(source, "pass a video file, a folder of videos, a glob or a CSV with a path column")
    fmt = _format(root, format)
    if fmt not in (None, "list"):  # a data set's annotation file: its videos (or segments), labels unused
        rows = formats.read(fmt, root, videos_root, 1)
        return Listing([r["path"] for r in rows if "missing" not in r], [(r["path"], r["missing"]) for r in rows
                                                                         if "missing" in r])
    if root.is_dir():
        videos, ignored = _walk(root)
        if not videos:
            raise VidclfError(f"{source}: no video files found (looked for {', '.join(sorted(VIDEO_EXTENSIONS))})")
        return Listing([str(p) for p in videos], ignored)
    if root.suffix.lower() in LIST_SUFFIXES:
        return Listing([r["path"] for r in read_list(root, need_label=False, videos_root=videos_root)])
    return Listing([str(root)])


def _walk(folder: Path) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files below `folder`, symlinked folders followed (each real folder once), sorted; split into
    videos and (path, reason) for hidden or non-video files."""
    videos, ignored, seen = [], [], set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            odd = not_regular(str(path))  # never opened: reading a named pipe or socket blocks forever
            if not odd and (is_video_name(path) or (not name.startswith(".") and looks_like_video(path))):
                videos.append(path)
            else:
                reason = odd or ("hidden file" if name.startswith(".") else
                                 f"not a video file name ({path.suffix or 'no extension'})")
                ignored.append((str(path), reason))
    return videos, ignored


def _existing(source: str, fix: str) -> Path:
    path = Path(source).expanduser()
    if not path.exists():
        raise VidclfError(f"{source}: no such file or folder; {fix}")
    return path


def _from_class_folders(root: Path) -> Listing:
    listing = Listing()
    for entry in sorted(root.iterdir()):
        if not entry.is_dir() or entry.name.startswith("."):
            listing.ignored.append((str(entry), "not inside a class folder"))
            continue
        videos, ignored = _walk(entry)
        if not videos:
            raise VidclfError(f"{entry}: class folder holds no videos; add videos or remove the folder")
        listing.items += [(str(v), entry.name) for v in videos]
        listing.ignored += ignored
    return listing


def labelled_videos(source: str, split: Optional[str], videos_root: Optional[str], multi_label: Optional[bool],
                    allow_empty: bool, format: str, split_number: int, split_column: str = "split") -> Listing:
    """As sources.labelled_videos, for a local class-per-folder tree, data set root, list or annotations."""
    root = _existing(source, LABELLED_HELP)
    fmt, missing = _format(root, format), []
    if fmt not in (None, "list"):
        rows = formats.read(fmt, root, videos_root, split_number)
        if split and any(r.get("split") for r in rows):
            rows = [r for r in rows if r.get("split") == split]
        missing = [(r["path"], r["missing"]) for r in rows if "missing" in r]
        listing = from_rows([r for r in rows if "missing" not in r], source, root, split, multi_label, allow_empty)
        if not listing.items and missing:
            raise VidclfError(f"{source}: none of the {len(missing)} videos it names{f' for {split}' if split else ''} "
                              f"is on disk ({missing[0][1]}); set --data.videos_root to the folder holding them")
    elif root.is_dir():
        splits = _split_folders(root)
        if splits:  # a data set root: ROOT/<split>/<class>/..., as Kinetics ships
            wanted = split or "train"
            if wanted not in splits:
                raise VidclfError(f"{source} holds split folders {sorted(p.name for p in splits.values())} but none "
                                  f"for {wanted} ({' or '.join(SPLIT_NAMES[wanted])}); pass --data.{wanted} PATH")
            root = splits[wanted]
        listing = _from_class_folders(root)
        if multi_label:
            listing.items = [(p, (label,)) for p, label in listing.items]
    else:
        listing = from_rows(read_list(root, need_label=True, videos_root=videos_root, split_column=split_column),
                            source, root, split, multi_label, allow_empty)
    listing.ignored += missing
    if not listing.items:
        loose = [p for p, reason in listing.ignored if reason == "not inside a class folder" and is_video_name(Path(p))]
        if loose:  # e.g. data/train/rising given instead of data/train
            raise VidclfError(f"{source}: the videos sit directly in this folder ({Path(loose[0]).name}, ...), so it "
                              f"holds no class folders; pass its parent folder (one subfolder per class), or a list")
        raise VidclfError(f"{source}: no videos found{f' for split {split!r}' if split else ''}; {LABELLED_HELP}")
    return listing


def has_split(source: str, split: str, format: str, videos_root: Optional[str], split_number: int,
              split_column: str = "split") -> bool:
    """Whether a local data set root, list or annotation file holds `split` videos."""
    path = Path(source).expanduser() if source else None
    if path is None or not path.exists():
        return False
    fmt = _format(path, format)
    if fmt not in (None, "list"):
        return any(r.get("split") == split for r in formats.read(fmt, path, videos_root, split_number))
    if path.is_dir():
        return split in _split_folders(path)
    if path.suffix.lower() not in LIST_SUFFIXES:
        return False
    return any(r.get("split") == split for r in read_list(path, need_label=False, split_column=split_column))


def unlabelled_videos(source: str, videos_root: Optional[str], format: str = "auto") -> Listing:
    """Videos to predict on at a local path: a glob pattern, else as `_unlabelled`."""
    if glob.has_magic(source) and not Path(source).exists():
        matches = sorted(glob.glob(source, recursive=True))
        if not matches:
            raise VidclfError(f"{source}: the pattern matches no files; check it, or quote it for the shell")
        return Listing([m for m in matches if Path(m).is_file()],
                       [(m, not_regular(m)) for m in matches if not Path(m).is_dir() and not_regular(m)])
    return _unlabelled(source, videos_root, format)
