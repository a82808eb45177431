"""The HTTP side of `vidclf serve`: an ASGI middleware in front of LitServe's app.

It serves the web page (GET /) and the model card (GET /info), answers unknown routes with 404, and
turns POST /predict uploads (a multipart form field `file`, or a raw body with a video content
type) into a file in the server's private upload folder, streamed to disk with a size limit (413)
and an idle timeout (408). The upload is decoded here, in a thread pool (the event loop stays free,
and decoding overlaps the model's work on other requests), into the views `vidclf predict` would
score, saved beside it; a file that cannot be decoded is answered 422 at once. LitServe's /predict
then gets only those files' names as JSON, so a client can never name a path on the server. The
files are deleted once the answer is sent; an answer whose status is an error becomes 422.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from typing import Optional
from urllib.parse import parse_qs

import numpy as np
import torch
from python_multipart import MultipartParser
from python_multipart.multipart import parse_options_header

from vidclf.commands.serve.asgi import answer, as_json, errors_422, once
from vidclf.commands.serve.streams import serve_events
from vidclf.commands.serve.studio import PREFIX as STUDIO_PREFIX
from vidclf.commands.serve.studio import Studio, serve_studio
from vidclf.data.clips import ClipSettings
from vidclf.data.datasets import VideoClips

ROUTES = ("/", "/info", "/health", "/predict", "/streams/events")
DRAIN_BYTES = 64 << 20  # an oversized upload is read (and dropped) this far, so the client sees the 413
HOW = "send the video as multipart form field `file`, or as the raw body with a video/* content type"


class UploadForm:
    """Streams a multipart body: the `file` part's bytes to `out`, other (small) fields kept."""

    def __init__(self, boundary: bytes, out):
        self.out, self.fields, self.filename, self.found = out, {}, None, False
        self._header, self._value, self._headers, self._part, self._data = b"", b"", {}, None, b""
        self.parser = MultipartParser(boundary, {
            "on_header_field": lambda d, s, e: self._add("_header", d[s:e]),
            "on_header_value": lambda d, s, e: self._add("_value", d[s:e]),
            "on_header_end": self._header_end, "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data, "on_part_end": self._part_end})

    def _add(self, name: str, data: bytes) -> None:
        setattr(self, name, getattr(self, name) + data)

    def _header_end(self) -> None:
        self._headers[self._header.lower()] = self._value
        self._header, self._value = b"", b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._part = options.get(b"name", b"").decode("utf-8", "replace")
        if self._part == "file" and not self.found:
            self.found = True
            self.filename = options.get(b"filename", b"upload").decode("utf-8", "replace")
        elif self._part == "file":
            self._part = "file (again)"  # one video per request: a second file part is ignored
        self._headers = {}

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._part == "file":
            self.out.write(data[start:end])
        elif len(self._data) < 4096:
            self._data += data[start:end]

    def _part_end(self) -> None:
        if self._part not in ("file", "file (again)"):
            self.fields[self._part] = self._data.decode("utf-8", "replace")
        self._part, self._data = None, b""

    def write(self, chunk: bytes) -> None:
        self.parser.write(chunk)


class VidclfHTTP:
    """ASGI middleware: page, info, uploads and limits around LitServe's FastAPI app."""

    def __init__(self, app, upload_dir: str, max_upload_bytes: int, read_timeout: float, info: dict,
                 clip: ClipSettings, num_clips: int, num_crops: int, decode_threads: int,
                 labelstudio_url: Optional[str] = None, streams: bool = False):
        self.app, self.upload_dir, self.max_bytes = app, upload_dir, max_upload_bytes
        self.read_timeout, self.info = read_timeout, info
        self.clip, self.num_clips, self.num_crops = clip, num_clips, num_crops
        self.page = resources.files("vidclf.commands.serve").joinpath("page.html").read_bytes()
        torch.set_num_threads(1)  # this HTTP server process decodes; each decoding thread needs one core
        self.pool = ThreadPoolExecutor(decode_threads, thread_name_prefix="vidclf-decode")
        self.studio = Studio(labelstudio_url, info, upload_dir, max_upload_bytes) if labelstudio_url else None
        self.streams = streams  # live sources configured: their rows are in the upload folder

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path, method = scope["path"], scope["method"]
        if self.studio is not None and path.startswith(STUDIO_PREFIX):
            return await serve_studio(self, scope, receive, send)
        if path not in ROUTES:
            return await answer(send, 404, {"status": f"error: no route {path}; the routes are {', '.join(ROUTES)}"})
        if path == "/" and method in ("GET", "HEAD"):
            return await answer(send, 200, self.page, "text/html; charset=utf-8")
        if path == "/info" and method == "GET":
            return await answer(send, 200, self.info)
        if path == "/predict" and method == "POST":
            return await self._predict(scope, receive, send)
        if path == "/streams/events" and method == "GET":
            if not self.streams:
                return await answer(send, 404, {"status": "error: no live sources; start the server with --streams URL"})
            return await serve_events(self.upload_dir, scope, receive, send)
        if path == "/health":
            return await self.app(scope, receive, send)
        return await answer(send, 405, {"status": f"error: {method} {path} is not allowed"})

    async def _predict(self, scope, receive, send) -> None:
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes + (1 << 20):
            return await self._too_large(receive, send, drain=int(declared) <= self.max_bytes + DRAIN_BYTES)
        kind, options = parse_options_header(headers.get(b"content-type", b""))
        if kind != b"multipart/form-data" and not kind.startswith(b"video/") and kind != b"application/octet-stream":
            return await answer(send, 415, {"status": f"error: content type {kind.decode('latin-1') or 'missing'}; "
                                                      f"{HOW}"})
        fd, upload = tempfile.mkstemp(dir=self.upload_dir, suffix=".upload")
        views = f"{upload}.npy"
        try:
            with os.fdopen(fd, "wb") as out:
                form = UploadForm(options.get(b"boundary", b""), out) if kind == b"multipart/form-data" else None
                failed = await self.read_body(receive, send, form or out, form is None)
            if failed is not False:
                return  # answered (408, 413) or the client left
            query = {k: v[-1] for k, v in parse_qs(scope.get("query_string", b"").decode("latin-1")).items()}
            given = {**(form.fields if form else {}), **query}
            name = (form.filename if form else None) or given.get("name") or "upload"
            if form is not None and not form.found:
                return await answer(send, 422, {"status": f"error: the form has no `file` field; {HOW}"})
            if os.path.getsize(upload) > self.max_bytes:
                return await self._too_large(receive, send, drain=False)
            if os.path.getsize(upload) == 0:
                return await answer(send, 422, {"file": name, "status": f"error: the upload is empty; {HOW}"})
            try:
                request = {"upload": os.path.basename(upload), "name": name,
                           "timeline": given.get("timeline", "0").lower() in ("1", "true", "yes", "on"),
                           "window": _seconds(given.get("window")), "stride": _seconds(given.get("stride"))}
            except ValueError as err:
                return await answer(send, 422, {"file": name, "status": f"error: {err}"})
            if not request["timeline"]:  # decoded here, in threads, while the model scores other batches
                item = await asyncio.get_running_loop().run_in_executor(self.pool, self._decode, upload, views)
                if "error" in item:  # not a video, or not decodable: the model is not needed to say so
                    return await answer(send, 422, {"file": name, "status": f"error: {item['error']}"})
                request.update(views=os.path.basename(views), warning=item.get("warning", ""))
            await self.app(as_json(scope, request), once(json.dumps(request).encode(), receive), errors_422(send))
        finally:
            for path in (upload, views):
                if os.path.exists(path):
                    os.unlink(path)

    async def read_body(self, receive, send, sink, raw: bool):
        """Stream the request body into `sink`; False when it all arrived, else None after answering
        408 (stalled) or 413 (too large), or when the client left."""
        size = 0
        while True:
            try:
                message = await asyncio.wait_for(receive(), self.read_timeout)
            except asyncio.TimeoutError:
                return await answer(send, 408, {"status": f"error: no data for {self.read_timeout:g} s; upload stalled"})
            if message["type"] == "http.disconnect":
                return None  # nobody to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes + (1 << 20) or (raw and size > self.max_bytes):
                return await self._too_large(receive, send, drain=message.get("more_body", False))
            sink.write(chunk)
            if not message.get("more_body"):
                return False

    def _decode(self, upload: str, views: str) -> dict:
        """The upload's views as `vidclf predict` decodes them, saved to `views` for the model worker."""
        item = VideoClips([upload], None, self.clip, num_clips=self.num_clips, num_crops=self.num_crops)[0]
        if "video" in item:
            np.save(views, item["video"].numpy())
        return item

    async def _too_large(self, receive, send, drain: bool) -> None:
        """413; with `drain`, first read (and drop) the rest of the body, up to a bound, so that a
        client that sends everything before reading the answer still gets it."""
        read = 0
        while drain and read < DRAIN_BYTES:
            try:
                message = await asyncio.wait_for(receive(), self.read_timeout)
            except asyncio.TimeoutError:
                break
            read += len(message.get("body", b""))
            drain = message["type"] == "http.request" and message.get("more_body", False)
        mb = self.max_bytes / (1 << 20)
        await answer(send, 413, {"status": f"error: the upload is larger than --max_upload_mb {mb:g}"})


def _seconds(value: Optional[str]) -> Optional[float]:
    if value in (None, ""):
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds < 1e6:
        raise ValueError(f"window and stride are seconds > 0, got {value!r}")
    return seconds
