"""`vidclf serve --labelstudio_url URL`: the server is also a Label Studio ML backend, under /labelstudio
(give Label Studio `http://HOST:PORT/labelstudio` as the backend's URL). It answers /health, /setup,
/webhook, and /predict with a prediction per task in Label Studio's format (`choices` for the video,
`timelinelabels` ranges from its timeline, as `predict --output_format labelstudio` writes them).

A task's video is fetched only from the Label Studio at URL (its /data/... paths, or absolute URLs on
that same host), with the API token from the environment (LABEL_STUDIO_API_KEY); the token is sent to
that host alone and never printed. A task whose video cannot be fetched or decoded gets an empty
prediction, and the server says why in one line."""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
import tempfile
import urllib.error
import urllib.request
from typing import Optional
from urllib.parse import urljoin, urlparse

from vidclf.commands.labelstudio import frame_rate_of, prediction
from vidclf.commands.serve.asgi import answer, as_json, never, once

TOKEN_ENV = "LABEL_STUDIO_API_KEY"
PREFIX = "/labelstudio"
ROUTES = tuple(f"{PREFIX}/{name}" for name in ("health", "setup", "predict", "webhook"))


class Studio:
    """What the ML backend needs: where Label Studio is, its token, and what the model is."""

    def __init__(self, url: str, info: dict, upload_dir: str, max_bytes: int):
        self.url = url.rstrip("/") + "/"
        self.token = os.environ.get(TOKEN_ENV)
        self.info, self.upload_dir, self.max_bytes = info, upload_dir, max_bytes
        self.version = f"vidclf {info.get('backbone')} {str(info.get('checkpoint_sha256') or info.get('model_file_sha256') or '')[:12]}"

    def health(self) -> dict:
        return {"status": "UP", "model_class": "vidclf", "model_version": self.version}

    def setup(self) -> dict:
        return {"model_version": self.version}

    def source(self, video: str) -> str:
        """The URL to fetch a task's video from: Label Studio's own host only."""
        absolute = urljoin(self.url, video)
        mine, theirs = urlparse(self.url), urlparse(absolute)
        if (theirs.scheme, theirs.netloc) != (mine.scheme, mine.netloc):
            raise ValueError(f"the video {video} is not on Label Studio at {self.url} (only its videos are fetched)")
        return absolute

    def fetch(self, video: str) -> str:
        """The task's video, downloaded into the upload folder (size-limited); its path."""
        request = urllib.request.Request(self.source(video), headers={"Authorization": f"Token {self.token}"}
                                         if self.token else {})
        fd, path = tempfile.mkstemp(dir=self.upload_dir, suffix=".task")
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(request, timeout=60) as response:
                copied = 0
                while chunk := response.read(1 << 20):
                    copied += len(chunk)
                    if copied > self.max_bytes:
                        raise ValueError(f"the video {video} is larger than --max_upload_mb")
                    out.write(chunk)
        except urllib.error.HTTPError as err:
            os.unlink(path)
            raise ValueError(f"Label Studio answered {err.code} for {video}"
                             + ("; set LABEL_STUDIO_API_KEY to its API token" if err.code in (401, 403) else "")) from None
        except (OSError, ValueError) as err:
            if os.path.exists(path):
                os.unlink(path)
            raise ValueError(str(err) if isinstance(err, ValueError) else f"cannot fetch {video}: {type(err).__name__}") \
                from None
        return path

    def prediction_for(self, reply: Optional[dict], path: Optional[str]) -> dict:
        """Label Studio's prediction for one task from the model's answer (a timeline answer); empty when
        there is none."""
        if not reply or str(reply.get("status", "")).startswith("error"):
            return {"model_version": self.version, "score": 0.0, "result": []}
        multi = self.info.get("multi_label")
        chosen = list(reply.get("labels") or []) if multi else [reply["label"]]
        score = max([float(v) for k, v in reply.items() if k.startswith("prob")] or [0.0])
        windows = []
        for row in reply.get("timeline") or []:
            present = ({name: float(row.get(f"prob_{name}", 1.0)) for name in row.get("labels") or []} if multi
                       else {row["label"]: float(row["prob"])})
            windows.append((float(row["start"]), float(row["end"]), present))
        return prediction(chosen, score, windows, frame_rate_of(path) if path else None, self.version)


def say(line: str) -> None:
    print(f"vidclf: labelstudio: {line}", file=sys.stderr, flush=True)



async def serve_studio(http, scope, receive, send) -> None:
    """Label Studio's ML backend API (vidclf.commands.serve.studio)."""
    path, method = scope["path"], scope["method"]
    if path not in ROUTES:
        return await answer(send, 404, {"status": f"error: no route {path}; the routes are {', '.join(ROUTES)}"})
    if path.endswith("/health"):
        return await answer(send, 200, http.studio.health())
    if method != "POST":
        return await answer(send, 405, {"status": f"error: {method} {path} is not allowed"})
    body = io.BytesIO()
    if await http.read_body(receive, send, body, True) is not False:
        return
    try:
        request = json.loads(body.getvalue() or b"{}")
    except ValueError:
        return await answer(send, 422, {"status": "error: the body is not JSON"})
    if path.endswith("/setup"):
        return await answer(send, 200, http.studio.setup())
    if path.endswith("/webhook"):
        return await answer(send, 200, {"status": "ok"})
    tasks = request.get("tasks") if isinstance(request, dict) else None
    if not isinstance(tasks, list):
        return await answer(send, 422, {"status": "error: Label Studio sends {\"tasks\": [...]}; no tasks list"})
    results = []
    for task in tasks:
        data = (task or {}).get("data") if isinstance(task, dict) else None
        video = next((v for k, v in (data or {}).items() if k in ("video", "video_url", "url") and isinstance(v, str)),
                     None)
        file, reply = None, None
        try:
            if video is None:
                raise ValueError("the task has no data.video")
            file = await asyncio.get_running_loop().run_in_executor(http.pool, http.studio.fetch, video)
            reply = await ask_model(http, scope, {"upload": os.path.basename(file), "name": os.path.basename(video),
                                                  "timeline": True, "window": None, "stride": None})
            if str(reply.get("status", "")).startswith("error"):
                say(f"task {task.get('id')}: {reply['status']}")
            results.append(http.studio.prediction_for(reply, file))
        except ValueError as err:
            say(f"task {task.get('id') if isinstance(task, dict) else '?'}: {err}")
            results.append(http.studio.prediction_for(None, None))
        finally:
            if file and os.path.exists(file):
                os.unlink(file)
    return await answer(send, 200, {"results": results})


async def ask_model(http, scope, request: dict) -> dict:
    """The model's JSON answer to `request`, asked of LitServe's /predict as an upload would ask it."""
    chunks: list[bytes] = []

    async def collect(message):
        if message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    inner = {**as_json(scope, request), "path": "/predict", "raw_path": b"/predict", "method": "POST",
             "query_string": b""}
    await http.app(inner, once(json.dumps(request).encode(), never), collect)
    try:
        return json.loads(b"".join(chunks) or b"{}")
    except ValueError:
        return {"status": "error: the model gave no answer"}
