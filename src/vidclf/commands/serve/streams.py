"""`vidclf serve --streams URL ...`: live sources the operator names at start-up, scored as they play and
streamed to clients as server-sent events (GET /streams/events; the web page shows them).

A `vidclf predict` of the sources runs beside the server (its own process and model: a stream that
misbehaves never touches the answers to uploads) and writes its window rows and events as JSON Lines into
the server's private folder; each HTTP server process tails those files for its clients. A client can
only watch the configured sources: no request makes the server open a URL (no server-side request forgery).

Each event's id is where it ends in the two files; a browser's EventSource sends it back when it
reconnects (every connection ends after CONNECTION_SECONDS, so a server stopping never waits long on
watchers), and the rows go on from there: none lost, none twice.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from typing import Optional

from vidclf.io.secrets import redact_url

FILES = ("streams.jsonl", "events.jsonl")  # window and gap rows, events
BACKLOG = 50  # rows of each file a new watcher gets first
CONNECTION_SECONDS = 15.0
POLL_SECONDS = 0.1


def start_scoring(streams: list[str], folder: str, model: list[str], runtime: str, precision: str) -> subprocess.Popen:
    """The `vidclf predict` of `streams` (as live sources) writing into `folder`; `model`: its model options."""
    names = [os.path.join(folder, name) for name in FILES]
    return subprocess.Popen([sys.executable, "-m", "vidclf", "predict", *model, "--data.predict", json.dumps(streams),
                             "--live", "true", "--timeline", names[0], "--events", names[1],
                             "--output", os.path.join(folder, "streams.csv"), "--reconnect", "1000000",
                             "--runtime", runtime, "--precision", precision, "--trainer.enable_progress_bar", "false",
                             "--trainer.enable_model_summary", "false"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)


def stop_scoring(process: Optional[subprocess.Popen]) -> None:
    """SIGTERM (its rows flushed), then wait."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def names(streams: list[str]) -> list[str]:
    """The sources as clients see them: without passwords or secret parameters."""
    return [redact_url(s) for s in streams]


def _start(folder: str, last_id: str) -> list[int]:
    """Byte offsets to go on from: after `last_id` (a reconnection), else BACKLOG rows before each file's end."""
    try:
        return [int(part) for part in last_id.split(",")][:len(FILES)]
    except ValueError:
        pass
    offsets = []
    for name in FILES:
        try:
            with open(os.path.join(folder, name), "rb") as f:
                data = f.read()
        except OSError:
            offsets.append(0)
            continue
        lines = [line for line in data.splitlines(keepends=True) if line.endswith(b"\n")]  # a last partial one out
        offsets.append(sum(map(len, lines)) - sum(map(len, lines[-BACKLOG:])))
    return offsets


def _new_rows(folder: str, offsets: list[int]) -> list[bytes]:
    """Complete lines written since `offsets` (advanced past them), each a JSON row with its `kind`."""
    rows = []
    for i, name in enumerate(FILES):
        try:
            with open(os.path.join(folder, name), "rb") as f:
                f.seek(offsets[i])
                data = f.read()
        except OSError:
            continue
        complete = data[:data.rfind(b"\n") + 1]
        offsets[i] += len(complete)
        for line in complete.splitlines():
            if line.strip():
                row = json.loads(line)
                kind = "event" if name == "events.jsonl" else "gap" if str(row.get("status")).startswith("gap") else "window"
                rows.append(json.dumps({"kind": kind, **row}, ensure_ascii=False).encode())
    return rows


async def serve_events(folder: str, scope, receive, send) -> None:
    """GET /streams/events: the rows as server-sent events (`data:` one JSON row; `kind` window, gap or event)."""
    headers = {k.lower(): v for k, v in scope["headers"]}
    offsets = _start(folder, headers.get(b"last-event-id", b"").decode("latin-1"))
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"),
                            (b"x-accel-buffering", b"no")]})
    await send({"type": "http.response.body", "body": b"retry: 500\n\n", "more_body": True})
    left = asyncio.ensure_future(receive())  # the client going away
    loop = asyncio.get_running_loop()
    ends = loop.time() + CONNECTION_SECONDS
    try:
        while loop.time() < ends and not left.done():
            rows = _new_rows(folder, offsets)
            if rows:
                ident = ",".join(map(str, offsets))
                body = b"".join(b"data: " + row + b"\n\n" for row in rows[:-1])
                body += b"id: " + ident.encode() + b"\ndata: " + rows[-1] + b"\n\n"
                await send({"type": "http.response.body", "body": body, "more_body": True})
            await asyncio.sleep(POLL_SECONDS)
        await send({"type": "http.response.body", "body": b"", "more_body": False})  # (to no one if it left)
    finally:
        left.cancel()
