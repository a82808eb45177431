"""Why a video file cannot be used, as one status line: DecodeError for what vidclf recognises, failure() for any exception."""

from __future__ import annotations


class DecodeError(Exception):
    """The file could not be opened or decoded as video; the message says why."""


def failure(err: BaseException) -> str:
    """The status text for an exception raised while reading one file (any exception: a bad file
    must cost its own row, never the run)."""
    return str(err) if isinstance(err, DecodeError) else f"unexpected {type(err).__name__}: {reason(err)}"


def reason(err: BaseException) -> str:
    text = getattr(err, "strerror", None) or str(err)
    return " ".join(str(text).split()) or type(err).__name__
