"""MkDocs hook: fill the CLI reference page with each subcommand's `vidclf <sub> --help`, made at build time."""

from __future__ import annotations

import contextlib
import io
import os
import sys

MARKER = "<!-- vidclf-help -->"
SUBCOMMANDS = ("fit", "validate", "test", "predict", "embed", "search", "select", "export", "serve", "pretrain", "data")


def help_text(*args: str) -> str:
    """What `vidclf ARGS --help` prints, from the vidclf installed beside MkDocs (so the page documents it)."""
    from vidclf.cli import main

    os.environ["COLUMNS"] = "120"  # the width help is wrapped to, whatever the terminal building the site
    out, argv, sys.argv = io.StringIO(), sys.argv, ["vidclf"]  # as the command line would have it
    try:
        with contextlib.redirect_stdout(out):
            main([*args, "--help"])
    except SystemExit as done:
        if done.code:
            raise RuntimeError(f"vidclf {' '.join(args)} --help exited {done.code}") from None
    finally:
        sys.argv = argv
    return out.getvalue()


def on_page_markdown(markdown: str, page, config, files) -> str:
    if MARKER not in markdown:
        return markdown
    parts = [f"## vidclf\n\n```text\n{help_text()}```\n"]
    parts += [f"## vidclf {sub}\n\n```text\n{help_text(sub)}```\n" for sub in SUBCOMMANDS]
    return markdown.replace(MARKER, "\n".join(parts))
