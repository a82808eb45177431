"""Secrets never written: the keys of --data.storage_options, and the password and signed parts of URLs.

Videos, lists and checkpoints may be named by URLs that carry credentials (`https://user:pass@host/...`)
or presigned signatures (`X-Amz-Signature`, `X-Goog-Signature`, Azure SAS `sig`, `token`, CloudFront
`Signature`). vidclf reads with them and writes them nowhere: every file and console line shows the URL
with those parts as REDACTED, the same text for the same URL, so rows of one video still match.
"""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from contextlib import contextmanager
from urllib.parse import unquote

SECRET_WORDS = ("key", "secret", "token", "password", "credential", "sas", "signature", "auth")
# Query parameters holding a secret, by whole (lower-cased) name, or by a word inside the name.
SECRET_PARAMS = {"sig", "signature", "token", "key", "password", "secret", "auth", "code"}
SECRET_PARAM_WORDS = ("signature", "token", "secret", "password", "credential", "apikey", "api_key", "api-key",
                      "accesskey", "access_key")
REDACTED = "REDACTED"
# The password of `scheme://user:password@host`, and a query parameter's value (after ? & or ;), wherever
# they appear in a text; a value ends before white space, quotes and the punctuation that follows a URL.
USERINFO = re.compile(r"(://[^/\s:@'\"<>]*):([^/\s@'\"<>]*)@")
PARAM = re.compile(r"([?&;])([^=&#\s'\"<>?;]+)=([^&#\s'\"<>;,:)\]]*)")


def redact(options):
    """`options` with the value of every key naming a secret replaced by "<redacted>" (any depth)."""
    if isinstance(options, dict):
        return {k: "<redacted>" if any(w in str(k).lower() for w in SECRET_WORDS) and not isinstance(v, dict)
                else redact(v) for k, v in options.items()}
    return options


def redact_argv(argv: list[str]) -> list[str]:
    """A command line with the secrets of its --data.storage_options JSON and of its URLs redacted."""
    out, option = [], "--data.storage_options"
    for i, arg in enumerate(argv):
        name, eq, value = arg.partition("=")
        if (eq and name == option) or (i and argv[i - 1] == option):
            value = value if eq else arg
            try:
                value = json.dumps(redact(json.loads(value)))
            except ValueError:
                value = "<redacted>"
            arg = f"{option}={value}" if eq else value
        out.append(redact_text(arg))
    return out


def redact_url(url: str) -> str:
    """`url` with the password before its host and the values of secret query parameters as REDACTED."""
    return redact_text(url)


def _secret_param(name: str) -> bool:
    key = unquote(name).lower()
    return key in SECRET_PARAMS or any(word in key for word in SECRET_PARAM_WORDS)


def redact_text(text: str) -> str:
    """`text` with URL passwords and secret query values redacted, wherever they appear in it."""
    if "://" in text:
        text = USERINFO.sub(rf"\1:{REDACTED}@", text)
    if "=" not in text:
        return text
    return PARAM.sub(lambda m: f"{m[1]}{m[2]}={REDACTED}" if _secret_param(m[2]) else m[0], text)


def redact_values(value):
    """`value` (dicts, lists, strings at any depth) with every URL in its strings redacted."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: redact_values(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_values(v) for v in value)
    return value


class RedactingStream(io.TextIOBase):
    """A text stream that writes through to `stream` with URL secrets redacted (the console)."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> int:
        self.stream.write(redact_text(text))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self):
        return getattr(self.stream, "encoding", "utf-8")


@contextmanager
def redacted_console():
    """Standard output and error, and the log handlers writing to them, redact URL secrets while inside."""
    streams = sys.stdout, sys.stderr
    if any(isinstance(s, RedactingStream) for s in streams):  # already (a nested call)
        yield
        return
    wrapped = {id(s): RedactingStream(s) for s in streams}
    handlers = [h for name in [None, *logging.root.manager.loggerDict] for h in logging.getLogger(name).handlers
                if isinstance(h, logging.StreamHandler) and id(h.stream) in wrapped]
    sys.stdout, sys.stderr = (wrapped[id(s)] for s in streams)
    for handler in handlers:
        handler.setStream(wrapped[id(handler.stream)])
    try:
        yield
    finally:
        sys.stdout, sys.stderr = streams
        for handler in handlers:
            handler.setStream(handler.stream.stream)
