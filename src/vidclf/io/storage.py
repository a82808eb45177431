"""Videos, lists and checkpoints wherever fsspec reaches them (s3://, gs://, az://, https:// ...),
beside local paths.

Credentials and endpoints come from each filesystem's own environment and config files (for S3:
AWS_ACCESS_KEY_ID, AWS_ENDPOINT_URL, ~/.aws, AWS_PROFILE ...); `--data.storage_options` adds the
rest. Nothing here prints or stores them.

Videos are read through `remote_video`. Sizes and ETags come from the folder's listing, so opening
an object costs no HEAD request. Transient failures (connection errors, timeouts, 5xx, throttling) are retried with exponential backoff; a
missing or forbidden object raises at once with a one-line reason.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Optional, TypeVar

from vidclf.errors import VidclfError
from vidclf.io.secrets import redact_text, redact_url

RETRIES = 5  # tries of a transient failure; waits 0.5, 1, 2, 4 s between them
OPTIONS: dict = {}  # protocol (or "*": every one) -> --data.storage_options; forked workers inherit it
_INFO: dict[str, dict] = {}  # url -> {size, etag, mtime}, filled by listings so keys need no request
_LISTINGS: dict[str, list] = {}  # folder url -> files_below (a data set root serves train, val and test)
URL = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*)://.")
T = TypeVar("T")


def is_remote(path: str) -> bool:
    """Whether `path` is a URL of a remote filesystem (scheme://..., not file://)."""
    scheme = URL.match(str(path))
    return bool(scheme) and scheme.group(1).lower() != "file"


def configure(options: Optional[dict]) -> None:
    """Use `options` (a dict, or {protocol: dict} when every key names a protocol) for every remote
    filesystem opened from now on."""
    import fsspec

    known = set(fsspec.available_protocols())
    OPTIONS.clear()
    if options and all(k in known for k in options):
        OPTIONS.update(options)
    elif options:
        OPTIONS["*"] = options


def filesystem(url: str):
    """(fsspec filesystem, path inside it) for `url`, with the configured options of its protocol."""
    import fsspec

    protocol = url.split("://", 1)[0]
    options = OPTIONS.get("*") or OPTIONS.get(protocol, {})
    try:
        return fsspec.core.url_to_fs(url, **options)
    except (ImportError, ValueError) as err:
        raise OSError(f"cannot open {protocol}:// URLs ({err}); install the filesystem's package "
                      f"(s3fs, gcsfs, adlfs, aiohttp)") from None


def retrying(call: Callable[[], T]) -> T:
    """call(), retried with exponential backoff on transient failures; others raise at once."""
    for attempt in range(RETRIES - 1):
        try:
            return call()
        except Exception as err:  # noqa: BLE001 - sorted into transient or not
            if not transient(err):
                raise
            time.sleep(0.5 * 2**attempt)
    return call()


def transient(err: BaseException) -> bool:
    """Whether `err` may go away on its own: a dropped connection, a timeout, a 5xx or throttling."""
    if isinstance(err, (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)):
        return False
    status = getattr(err, "status", None) or getattr(err, "code", None)
    if isinstance(status, int):
        return status >= 500 or status in (408, 429)
    text = f"{type(err).__name__} {err}".lower()
    return any(word in text for word in ("timeout", "timed out", "connection", "throttl", "slowdown",
                                         "service unavailable", "internal error", "temporar", "503", "500"))


def reason(err: BaseException) -> str:
    """One line on why a remote object could not be read (never the credentials)."""
    if isinstance(err, FileNotFoundError):
        return "missing: no such object"
    if isinstance(err, PermissionError):
        return (f"forbidden: {str(err).splitlines()[0][:160] or 'access denied'}; check the credentials "
                f"(the filesystem's environment variables or config file, or --data.storage_options)")
    return f"cannot read: {type(err).__name__}: {str(err).splitlines()[0][:160] if str(err) else ''}".rstrip(": ")


def info(url: str) -> dict:
    """{size, etag, mtime} of a remote object (from its listing when there was one)."""
    if url not in _INFO:
        fs, path = filesystem(url)
        found = retrying(lambda: fs.info(path))
        if found.get("type") == "directory":
            raise IsADirectoryError(url)
        _remember(url, found)
    return _INFO[url]


def _remember(url: str, found: dict) -> None:
    etag = found.get("ETag") or found.get("etag") or found.get("md5Hash") or found.get("content_md5") or ""
    mtime = found.get("LastModified") or found.get("mtime") or found.get("last_modified") or found.get("updated")
    _INFO[url] = {"size": int(found.get("size") or 0), "etag": str(etag), "mtime": str(mtime or "")}


def identity(path: str) -> str:
    """What names this file's content: local realpath|size|mtime, remote url|etag|size|mtime.
    Raises OSError when the file or object does not exist."""
    if is_remote(path):
        found = info(path)
        return f"{redact_url(path)}|{found['etag'].strip(chr(34))}|{found['size']}|{found['mtime']}"
    stat = os.stat(path)
    return f"{os.path.realpath(path)}|{stat.st_size}|{stat.st_mtime_ns}"


def read_bytes(url: str, start: int = 0, end: Optional[int] = None) -> bytes:
    """Bytes [start, end) of a remote object (all by default)."""
    fs, path = filesystem(url)
    return retrying(lambda: fs.cat_file(path, start=start, end=end))


def read_text(url: str) -> str:
    return read_bytes(url).decode("utf-8-sig")


def kind(url: str) -> str:
    """'file', 'directory' or 'missing' for a remote URL (a prefix with objects below is a directory)."""
    try:
        info(url)
    except FileNotFoundError:
        return "missing"
    except IsADirectoryError:
        return "directory"
    return "file"


def files_below(url: str) -> list[tuple[tuple[str, ...], str]]:
    """(parts relative to `url`, url) of every object below the folder `url`, sorted; one listing
    (paged by the server, once per process), which also records each object's size and ETag."""
    if url in _LISTINGS:
        return _LISTINGS[url]
    fs, path = filesystem(url)
    found = retrying(lambda: fs.find(path, detail=True))
    base, prefix = path.rstrip("/"), url.rstrip("/")
    items = []
    for key, entry in sorted(found.items()):
        relative = key[len(base):].strip("/")
        if not relative or entry.get("type") == "directory":
            continue
        child = f"{prefix}/{relative}"
        _remember(child, entry)
        items.append((tuple(relative.split("/")), child))
    _LISTINGS[url] = items
    return items


def join(base: str, relative: str) -> str:
    """`relative` (a path in a list) resolved against the remote folder `base`; URLs stay as they are."""
    if is_remote(relative):
        return relative
    protocol, path = base.split("://", 1)
    return f"{protocol}://{posixpath.normpath(f'{path}/{relative}')}"


class UrlFolder(str):
    """A remote folder's URL that joins like a Path: UrlFolder("s3://b/videos") / "a.mp4"."""

    def __truediv__(self, relative) -> "UrlFolder":
        return UrlFolder(join(self, str(relative)))


def local_copy(url: str, cache: Optional[Path] = None) -> Path:
    """A local copy of a remote file or folder (a checkpoint, a save_pretrained folder), downloaded
    once per version of it (ETags and sizes) into ~/.cache/vidclf/remote."""
    cache = cache or Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "vidclf" / "remote"
    fs, path = filesystem(url)
    path = path.rstrip("/")
    found = retrying(lambda: fs.info(path))
    folder = found.get("type") == "directory"
    entries = retrying(lambda: fs.find(path, detail=True)) if folder else {path: found}
    stamp = sorted((k, str(e.get("ETag") or e.get("etag") or ""), e.get("size")) for k, e in entries.items())
    # named by the URL without its secrets (the ETags tell versions apart) and the file name without a query
    name = path.split("?", 1)[0].rsplit("/", 1)[-1]
    target = cache / hashlib.sha1(f"{redact_url(url)}|{redact_text(str(stamp))}".encode()).hexdigest()[:16] / name
    if not target.exists():
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        if folder:
            retrying(lambda: fs.get(path + "/", str(tmp) + "/", recursive=True))
        else:  # exactly to tmp (get() may take tmp for a folder when the URL has a query)
            retrying(lambda: fs.get_file(path, str(tmp)))
        os.replace(tmp, target)
    return target


@contextmanager
def written_locally(*paths: str) -> Iterator[list[str]]:
    """Local paths to write `paths` to: remote ones in a temporary folder, uploaded when the block
    ends without error (local paths are themselves). A failed upload is one line saying where the
    file is kept; a failed block leaves nothing behind."""
    if not any(is_remote(p) for p in paths):
        yield list(paths)
        return
    folder = tempfile.mkdtemp(prefix="vidclf-output-")
    local = [os.path.join(folder, f"{i}-{p.rsplit('/', 1)[-1]}") if is_remote(p) else p for i, p in enumerate(paths)]
    try:
        yield local
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    for path, there in zip(paths, local):
        if is_remote(path) and os.path.exists(there):
            fs, key = filesystem(path)
            try:
                retrying(lambda: fs.put_file(there, key))
            except OSError as err:  # the work is not lost: the file stays where it was written
                raise VidclfError(f"could not upload {path} ({reason(err)}); the file is kept at {there}") from None
    shutil.rmtree(folder, ignore_errors=True)
