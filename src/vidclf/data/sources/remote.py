"""Where videos come from when the source is a URL (s3://, gs://, https:// ...): remote class folders,
data set roots, lists and globs, read with one listing of the folder (see `storage`)."""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Optional

from vidclf.data.sources.kinds import VIDEO_EXTENSIONS, is_video_name
from vidclf.data.sources.listing import LABELLED_HELP, Listing
from vidclf.data.sources.lists import LIST_SUFFIXES, from_rows, read_list
from vidclf.data.sources.splits import SPLIT_NAMES
from vidclf.errors import VidclfError
from vidclf.io import storage


def _tree(url: str, fix: str) -> Optional[list[tuple[tuple[str, ...], str]]]:
    """The objects below the remote folder `url` (None: `url` is one object), or one line saying why not."""
    try:
        what = storage.kind(url)
        if what == "missing":
            raise VidclfError(f"{url}: no such object or folder; {fix}")
        return storage.files_below(url) if what == "directory" else None
    except OSError as err:
        raise VidclfError(f"{url}: {storage.reason(err)}") from None


def labelled_videos(source: str, split: Optional[str], videos_root: Optional[str], multi_label: Optional[bool],
                    allow_empty: bool, format: str = "auto", split_number: int = 1,
                    split_column: str = "split") -> Listing:
    """As sources.labelled_videos, for a remote class-per-folder tree, data set root or list."""
    tree = _tree(source, LABELLED_HELP)
    if tree is None:
        rows = read_list(source, need_label=True, videos_root=videos_root, split_column=split_column)
        listing = from_rows(rows, source, Path(source), split, multi_label, allow_empty)
    else:
        split_of = {name: s for s, names in SPLIT_NAMES.items() for name in names}
        if tree and all(len(parts) > 1 and parts[0].lower() in split_of for parts, _ in tree):
            splits = {split_of[parts[0].lower()] for parts, _ in tree}  # a data set root: ROOT/<split>/<class>/...
            wanted = split or "train"
            if wanted not in splits:
                raise VidclfError(f"{source} holds split folders {sorted(splits)} but none for {wanted} "
                                  f"({' or '.join(SPLIT_NAMES[wanted])}); pass --data.{wanted} PATH")
            tree = [(parts[1:], url) for parts, url in tree if parts[0].lower() in SPLIT_NAMES[wanted]]
        listing = Listing()
        for parts, url in tree:
            if len(parts) < 2 or parts[0].startswith("."):
                listing.ignored.append((url, "not inside a class folder"))
            elif any(p.startswith(".") for p in parts) or not is_video_name(Path(parts[-1])):
                listing.ignored.append((url, "hidden file" if parts[-1].startswith(".") else
                                        f"not a video file name ({Path(parts[-1]).suffix or 'no extension'})"))
            else:
                listing.items.append((url, (parts[0],) if multi_label else parts[0]))
    if not listing.items:
        raise VidclfError(f"{source}: no videos found{f' for split {split!r}' if split else ''}; {LABELLED_HELP}")
    return listing


def has_split(source: str, split: str, format: str = "auto", videos_root: Optional[str] = None,
              split_number: int = 1, split_column: str = "split") -> bool:
    """Whether a remote data set root or list holds `split` videos."""
    try:
        tree = _tree(source, LABELLED_HELP)
    except VidclfError:
        return False
    if tree is None:
        return Path(source).suffix.lower() in LIST_SUFFIXES and any(
            r.get("split") == split for r in read_list(source, need_label=False, split_column=split_column))
    return any(len(parts) > 1 and parts[0].lower() in SPLIT_NAMES[split] for parts, _ in tree)


def _is_glob(source: str) -> bool:
    """Whether a URL is a pattern (`*`, `[...]`; a `?` too, except where it opens an http(s) query)."""
    rest = source.split("://", 1)[1]
    if source.lower().startswith(("http://", "https://")):
        rest = rest.split("?", 1)[0]
    return glob.has_magic(rest)


def unlabelled_videos(source: str, videos_root: Optional[str], format: str = "auto") -> Listing:
    """Videos to predict on at a remote URL: one video, every video below a folder, a list, or a glob
    (a data set's annotation `format` is read from local files only)."""
    fix = "pass a video, a folder of videos, a glob or a CSV with a path column"
    if _is_glob(source):
        try:
            fs, path = storage.filesystem(source)
            protocol = source.split("://", 1)[0]
            matches = sorted(f"{protocol}://{m}" for m in fs.glob(path))
        except OSError as err:
            raise VidclfError(f"{source}: {storage.reason(err)}") from None
        if not matches:
            raise VidclfError(f"{source}: the pattern matches no objects; check it")
        return Listing(matches)
    tree = _tree(source, fix)
    if tree is None:
        if Path(source).suffix.lower() in LIST_SUFFIXES:
            return Listing([r["path"] for r in read_list(source, need_label=False, videos_root=videos_root)])
        return Listing([source])
    videos = [url for parts, url in tree if is_video_name(Path(parts[-1])) and not
              any(p.startswith(".") for p in parts)]
    if not videos:
        raise VidclfError(f"{source}: no video files found (looked for {', '.join(sorted(VIDEO_EXTENSIONS))})")
    kept = set(videos)
    return Listing(videos, [(url, "not a video file name") for _, url in tree if url not in kept])
