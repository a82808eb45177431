"""The model side of `vidclf serve`: a LitServe API that scores uploaded videos as `vidclf predict` does.

Runs in LitServe's inference worker processes. Requests arrive as {"upload": file name in the
server's private upload folder, "name": the client's file name, "timeline": bool, "window",
"stride"}; the HTTP side (vidclf.serve.http) wrote the file. A batch of requests is decoded in
parallel threads, then its videos go through the model in one forward pass.
"""

from __future__ import annotations

import os
import signal
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

import litserve as ls
import torch

from vidclf.data.dataset import ClipSettings, VideoClips, VideoWindows
from vidclf.reports.predictions import score_fields, timeline_fields
from vidclf.threads import compute_threads


class VideoAPI(ls.LitAPI):
    """Score one uploaded video per request: the predict row's fields, optionally its timeline."""

    def __init__(self, checkpoint: str, overrides: dict, clip: ClipSettings, num_clips: int, num_crops: int,
                 upload_dir: str, top_k: Optional[int], decode_threads: int, max_batch_size: int,
                 batch_timeout: float):
        super().__init__(max_batch_size=max_batch_size, batch_timeout=batch_timeout)
        self.checkpoint, self.overrides, self.clip = checkpoint, overrides, clip
        self.num_clips, self.num_crops, self.upload_dir, self.top_k = num_clips, num_crops, upload_dir, top_k
        self.decode_threads = decode_threads

    def setup(self, device) -> None:
        from vidclf.cli import quiet
        from vidclf.module import VideoClassifier

        quiet()

        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the main process stops the server gracefully
        threads = compute_threads(1)
        if threads:
            torch.set_num_threads(threads)
        self.device = torch.device(device)
        model = VideoClassifier.load_from_checkpoint(self.checkpoint, map_location="cpu", **self.overrides)
        self.model = model.eval().to(self.device)
        self.pool = ThreadPoolExecutor(self.decode_threads, thread_name_prefix="vidclf-decode")

    def decode_request(self, request: dict) -> dict:
        return request  # decoding the video happens for the whole batch at once, in parallel

    def batch(self, inputs: list[dict]) -> list[dict]:
        return list(inputs)

    def unbatch(self, output: list[dict]) -> list[dict]:
        return output

    def encode_response(self, output: dict) -> dict:
        return output

    def predict(self, x):
        requests = x if isinstance(x, list) else [x]  # max_batch_size 1: one request, not a list
        items = list(self.pool.map(self._decode, requests))
        results: list[Optional[dict]] = [None] * len(requests)
        views = [i for i, item in enumerate(items) if "video" in item]
        if views:
            with torch.inference_mode():
                logits = self.model.clip_logits(torch.stack([items[i]["video"] for i in views]).to(self.device))
                probs = self.model.video_probs(logits)
            for i, p in zip(views, probs):
                results[i] = {**score_fields(p, self.model, self.top_k), "warning": items[i].get("warning", "")}
        for i, item in enumerate(items):
            if "error" in item:
                results[i] = {"status": f"error: {item['error']}"}
            elif "windows" in item:
                results[i] = self._timeline(item)
        out = [{"file": r["name"], **result} for r, result in zip(requests, results)]
        return out if isinstance(x, list) else out[0]

    def _decode(self, request: dict) -> dict:
        """Views of the uploaded video as predict decodes them, or for a timeline its windows."""
        path = os.path.join(self.upload_dir, os.path.basename(request["upload"]))  # only the server's own files
        if not os.path.isfile(path):
            return {"error": "upload not found"}
        if request.get("timeline"):
            clip = self.clip
            window = request.get("window") or clip.seconds
            windows = VideoWindows([path], clip, window, request.get("stride") or window)
            items = [windows[i] for i in range(len(windows))]
            failed = next((it for it in items if "error" in it), None)
            return {"error": failed["error"]} if failed else {"windows": items, "length": window}
        item = VideoClips([path], None, self.clip, num_clips=self.num_clips, num_crops=self.num_crops)[0]
        return {k: v for k, v in item.items() if k in ("video", "error", "warning")}

    def _timeline(self, item: dict) -> dict:
        """The video's fields from all its windows, and one row per window."""
        windows, warning = [], ""
        with torch.inference_mode():
            for chunk in item["windows"]:
                if "video" not in chunk:  # past the end of a damaged file
                    continue
                warning = warning or chunk.get("warning", "")
                logits = self.model.clip_logits(chunk["video"][None].to(self.device))[0]  # as predict batches them
                windows += list(zip(chunk["starts"].tolist(), logits.float().cpu()))
        video, rows = timeline_fields(windows, item["length"], self.model, self.top_k)
        return {**video, "warning": warning, "timeline": rows}
