"""Export a trained classifier for deployment: TorchScript or ONNX, a preprocessing sidecar, a parity check.

Pure functions; nothing here imports Lightning. The exported model takes float32 clips (B, C, T, H, W)
normalised as the sidecar says and returns logits (B, K).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import Literal, Optional

import numpy as np
import torch
from torch import nn

from vidclf.backbones import get_spec
from vidclf.data import storage
from vidclf.data.dataset import ClipSettings

Format = Literal["onnx", "torchscript", "pt2"]
SUFFIX = {"onnx": ".onnx", "torchscript": ".pt", "pt2": ".pt2"}


def export_model(net: nn.Module, example: torch.Tensor, output: str, fmt: Format) -> None:
    """Write `net` traced on `example` (batch of 2 or more) to `output` (temporary name, then renamed)."""
    tmp = str(Path(output).with_name(f".tmp-{Path(output).name}"))  # same suffix: torch.export checks it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and deprecation chatter; parity is checked below
        if fmt == "torchscript":
            torch.jit.trace(net, example).save(tmp)
        elif fmt == "pt2":
            batch = torch.export.Dim("batch", min=1, max=1024)
            program = torch.export.export(net, (example,), dynamic_shapes=({0: batch},))
            torch.export.save(program, tmp)
        else:
            torch.onnx.export(net, (example,), tmp, dynamo=False, opset_version=17,
                              input_names=["video"], output_names=["logits"],
                              dynamic_axes={"video": {0: "batch"}, "logits": {0: "batch"}})
    os.replace(tmp, output)


def run_exported(path: str, fmt: Format, x: torch.Tensor) -> np.ndarray:
    """Logits of the exported file at `path`, run by its own runtime (onnxruntime for ONNX)."""
    if fmt in ("torchscript", "pt2"):
        loaded = torch.jit.load(path) if fmt == "torchscript" else torch.export.load(path).module()
        with torch.no_grad():
            return loaded(x).numpy()
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    return session.run(None, {"video": x.numpy()})[0]


def sidecar(backbone: str, class_names: list[str], clip: ClipSettings, checkpoint: str, fmt: Format,
            views: dict, thresholds: Optional[list[float]] = None) -> dict:
    """Everything a deployment needs to preprocess a video and read the output, without vidclf.
    `thresholds`: a multi-label model's per-class decision thresholds."""
    from vidclf import __version__

    spec = get_spec(backbone)
    return {
        "vidclf_version": __version__,
        "format": fmt,
        "backbone": backbone,
        "class_names": list(class_names),
        "input": {
            "name": "video", "layout": "BCTHW", "dtype": "float32", "color": "RGB",
            "frames": clip.frames,
            "sampling_rate": clip.rate,
            "frame_interval_seconds": clip.interval,  # frames are taken by timestamp, this far apart
            "resize_short_side": clip.resize, "crop": clip.crop, "crop_mode": "center",
            "scale": 1 / 255, "mean": list(spec.mean), "std": list(spec.std),
            "formula": "((rgb_uint8 / 255) - mean) / std per channel",
        },
        "output": output_info(class_names, thresholds),
        # how `vidclf predict` scores a whole video: clips spread evenly over it (start times
        # (duration - clip_seconds) * i / (num_clips - 1)), crops per clip, views combined by `aggregate`
        "video": {**views, "clip_seconds": clip.seconds},
        "source_checkpoint": {"path": str(checkpoint), "sha256": sha256(checkpoint)},
    }


def output_info(class_names: list[str], thresholds: Optional[list[float]]) -> dict:
    """How to read the logits: softmax, or for multi-label a sigmoid per class and its threshold."""
    if thresholds is None:
        return {"name": "logits", "layout": "BK", "multi_label": False, "activation": "softmax gives probabilities"}
    return {"name": "logits", "layout": "BK", "multi_label": True,
            "activation": "sigmoid per class gives probabilities; a class is present when its probability "
                          ">= its threshold",
            "thresholds": {name: round(float(t), 6) for name, t in zip(class_names, thresholds)}}


def sha256(path: str) -> str:
    """Of a file (a URL: of its local copy)."""
    digest = hashlib.sha256()
    with open(storage.local_copy(path) if storage.is_remote(path) else path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
