"""Where videos come from: a source (folder, list, annotations, glob, file; local or a URL) resolved once.

`labelled_videos` and `unlabelled_videos` ask once whether a source is local or remote and hand it to
`local` or `remote`, which list and read it their own way (local disk: os.walk with symlinks and
named pipes handled, files sniffed by content; remote: one listing of the bucket, sizes and ETags
kept); both read lists and annotations with the same readers (`lists`, `formats`). Pure functions,
no torch. Paths are returned as strings; labels as class-name strings.
"""

from __future__ import annotations

from typing import Optional, Union

from vidclf.data.sources import local, remote
from vidclf.data.sources.listing import Listing, no_duplicates
from vidclf.io import storage


def place(source: str):
    """The module that lists and reads `source`: `remote` for a URL, else `local`."""
    return remote if storage.is_remote(source) else local


def labelled_videos(source: str, split: Optional[str] = None, videos_root: Optional[str] = None,
                    multi_label: Optional[bool] = False, allow_empty: bool = False, format: str = "auto",
                    split_number: int = 1, split_column: str = "split") -> Listing:
    """(path, class name) pairs from a class-per-folder tree or a path,label list (CSV, TSV or
    JSON Lines). A list with a `split` column (or `split_column`) contributes its rows whose split is
    `split` (train, val, test, or their usual names: training, validation, testing ...).

    Multi-label (a `labels` column, or `multi_label` True): (path, sorted tuple of class names)
    pairs. A `labels` cell separates labels with `;` or `|` (one of them in the whole list); in JSON
    Lines it may be an array. `multi_label` None: decided by the list (a `labels` column).

    A data set's own annotation files (UCF101, HMDB51, Kinetics, Something-Something v2, ActivityNet,
    Charades, Label Studio; `format`, or recognised) give rows as a list does; videos they name that
    are missing are listed in `ignored` with the reason `missing: ...`.

    Example:
        >>> labelled_videos("data/train").items  # data/train/<class>/*.mp4
        [('data/train/jump/a.mp4', 'jump'), ...]
    """
    listing = place(source).labelled_videos(source, split, videos_root, multi_label, allow_empty, format,
                                            split_number, split_column)
    no_duplicates(source, [p for p, _ in listing.items])
    return listing


def has_split(source: Optional[str], split: str, format: str = "auto", videos_root: Optional[str] = None,
              split_number: int = 1, split_column: str = "split") -> bool:
    """Whether `source` (a data set root folder, a list with a split column, or annotations naming
    splits) holds `split` videos."""
    return bool(source) and place(source).has_split(source, split, format, videos_root, split_number, split_column)


def unlabelled_videos(sources: Union[str, list[str]], videos_root: Optional[str] = None,
                      format: str = "auto") -> Listing:
    """Video paths to predict on, in the order given: each source is a file, a folder searched
    recursively, a glob pattern (quoted, e.g. 'clips/**/*.mp4'), a CSV with a path column or a data
    set's annotation file (`format`, or recognised); any of them may be a URL (s3://...)."""
    listing = Listing()
    for source in [sources] if isinstance(sources, str) else sources:
        found = place(source).unlabelled_videos(source, videos_root, format)
        listing.items += found.items
        listing.ignored += found.ignored
    return listing
