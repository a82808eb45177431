"""The model side of `vidclf serve`: a LitServe API that scores uploaded videos as `vidclf predict` does.

Runs in LitServe's inference worker processes. Requests arrive as {"upload": file name in the
server's private upload folder, "name": the client's file name, "views": the file of its decoded
views, "warning", "timeline": bool, "window", "stride"}; the HTTP side (vidclf.commands.serve.http) wrote
and decoded the upload. The views of a batch of requests go through the model in one forward pass;
timelines (decoded here, window chunk by window chunk, so memory stays flat) run in threads.
"""

from __future__ import annotations

import os
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

import litserve as ls
import numpy as np
import torch

from vidclf.commands.predict import score_fields, timeline_fields
from vidclf.cores import share_threads
from vidclf.data.clips import ClipSettings
from vidclf.data.datasets import VideoWindows

MAX_WINDOWS = 20_000  # timeline windows per request


class VideoAPI(ls.LitAPI):
    """Score one uploaded video per request: the predict row's fields, optionally its timeline."""

    def __init__(self, checkpoint: str, overrides: dict, clip: ClipSettings, upload_dir: str, top_k: Optional[int],
                 timeline_threads: int, max_batch_size: int, batch_timeout: float, runtime: str = "torch",
                 precision: str = "fp32", workers: int = 1, model_file: Optional[str] = None,
                 options: Optional[dict] = None):
        super().__init__(max_batch_size=max_batch_size, batch_timeout=batch_timeout)
        self.workers = workers  # model worker processes on this machine's cores
        self.model_file, self.options = model_file, options  # an export in place of the checkpoint
        self.checkpoint, self.overrides, self.clip = checkpoint, overrides, clip
        self.runtime, self.precision = runtime, precision
        self.upload_dir, self.top_k, self.timeline_threads = upload_dir, top_k, timeline_threads

    def setup(self, device) -> None:
        from vidclf.chatter import quiet
        from vidclf.models.classifier import VideoClassifier

        quiet()

        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the main process stops the server gracefully
        threads = share_threads(self.workers)
        if threads:
            torch.set_num_threads(threads)
        if self.model_file:  # the classes and settings the sidecar gave, the export's file as the network
            from vidclf.runtimes.model_file import take_file

            model = VideoClassifier(**self.options).eval()
            take_file(model, self.model_file, threads)
            self.model = model
        else:
            model = VideoClassifier.load_from_checkpoint(self.checkpoint, map_location="cpu", **self.overrides)
            self.model = model.eval().to(torch.device(device))  # (LitServe keeps `device` itself, as a string)
        if self.runtime != "torch" and not self.model_file:  # the file the main process converted, from the cache
            from vidclf.runtimes.swap import runtime_net

            clip = self.clip
            self.model.net = runtime_net(self.model.net, (3, clip.frames, clip.crop, clip.crop), self.runtime,
                                         self.precision)
        self.pool = ThreadPoolExecutor(self.timeline_threads, thread_name_prefix="vidclf-timeline")
        print(f"vidclf: model worker ready on {device} ({self.runtime} at {self.precision}, "
              f"{torch.get_num_threads()} threads)", file=sys.stderr, flush=True)

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
        # timelines run window chunk by window chunk in pool threads; the other views are scored meanwhile
        timelines = {i: self.pool.submit(self._timeline, r) for i, r in enumerate(requests) if r.get("timeline")}
        plain = [i for i in range(len(requests)) if i not in timelines]
        items = {i: self._views(requests[i]) for i in plain}
        results: dict[int, dict] = {}
        # On a GPU the batch is one forward pass. On a CPU a forward pass costs more per clip the more
        # clips it holds (X3D-S: 90 ms/clip for one video's 3 clips, 174 ms for 8 videos' 24, on 2 cores),
        # so there each video's views are one pass.
        step = max(1, len(plain)) if self.model.device.type == "cuda" else 1
        for first in range(0, len(plain), step):
            chunk = plain[first:first + step]
            with torch.inference_mode():
                logits = self.model.clip_logits(torch.stack([items[i]["video"] for i in chunk]).to(self.model.device))
                probs = self.model.video_probs(logits)
            for i, p in zip(chunk, probs):
                results[i] = {**score_fields(p, self.model, self.top_k), "warning": items[i].get("warning", "")}
        results.update({i: future.result() for i, future in timelines.items()})
        out = [{"file": r["name"], **results[i]} for i, r in enumerate(requests)]
        return out if isinstance(x, list) else out[0]

    def _own_file(self, name: str) -> str:
        """A file the HTTP side wrote: always inside the server's own upload folder."""
        return os.path.join(self.upload_dir, os.path.basename(name))

    def _views(self, request: dict) -> dict:
        """The upload's views, decoded by the HTTP side as predict decodes them."""
        return {"video": torch.from_numpy(np.load(self._own_file(request["views"]))),
                "warning": request.get("warning", "")}

    def _timeline(self, request: dict) -> dict:
        """The video's fields from all its windows (as predict --timeline combines them) and one row
        per window; or an error."""
        window = request.get("window") or self.clip.seconds
        chunks = VideoWindows([self._own_file(request["upload"])], self.clip, window, request.get("stride") or window)
        count = sum(len(starts) for _, starts, _ in chunks.items)
        if count > MAX_WINDOWS:
            return {"status": f"error: {count} timeline windows, over {MAX_WINDOWS}; pass a larger stride"}
        windows, warning = [], ""
        for i in range(len(chunks)):
            chunk = chunks[i]
            if "error" in chunk:
                return {"status": f"error: {chunk['error']}"}
            if "video" not in chunk:  # past the end of a damaged file
                continue
            warning = warning or chunk.get("warning", "")
            with torch.inference_mode():
                logits = self.model.clip_logits(chunk["video"][None].to(self.model.device))[0]  # as predict batches them
            windows += list(zip(chunk["starts"].tolist(), logits.float().cpu()))
        video, rows = timeline_fields(windows, window, self.model, self.top_k)
        return {**video, "warning": warning, "timeline": rows}
