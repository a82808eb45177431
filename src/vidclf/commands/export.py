"""`vidclf export`: a trained classifier as ONNX, TorchScript or torch.export, a sidecar, a parity check.

Nothing here imports Lightning. The exported model takes float32 clips (B, C, T, H, W) normalised as
the sidecar says and returns logits (B, K).
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

from vidclf.commands.predict import views
from vidclf.data.clips import ClipSettings
from vidclf.data.datasets import VideoClips
from vidclf.data.sources import unlabelled_videos
from vidclf.errors import VidclfError
from vidclf.io import storage
from vidclf.io.checkpoints import load_weights
from vidclf.io.files import check_output, write_json
from vidclf.models.backbones import get_spec

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
    from vidclf.version import __version__

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


def export(model, datamodule, ckpt_path: Optional[str], fmt: Format, output: Optional[str], tolerance: float,
           overwrite: bool) -> dict:
    """Write the model of `ckpt_path` as `fmt` with its sidecar, run it at another batch size and
    compare with the checkpoint's logits; returns the sidecar."""
    if not ckpt_path:
        raise VidclfError("export needs a trained model; pass --ckpt_path RUN/checkpoints/best.ckpt")
    run = ckpt_path.rsplit("/", 2)[0] if storage.is_remote(ckpt_path) else str(Path(ckpt_path).parent.parent)
    output = output or f"{run}/model{SUFFIX[fmt]}"
    info_path = f"{output}.json"
    check_output(output, overwrite)
    check_output(info_path, overwrite)
    load_weights(model, ckpt_path)
    clip_x, source = _sample_clip(model, datamodule)
    x = torch.cat([clip_x, clip_x.flip(-1)])  # a batch of 2, so the batch axis stays dynamic
    with torch.no_grad():
        expected = model(x).numpy()
    thresholds = model.active_thresholds().tolist() if model.hparams.multi_label else None
    info = sidecar(model.hparams.backbone, model.class_names, datamodule.clip, ckpt_path, fmt,
                   views(model, datamodule), thresholds)
    with storage.written_locally(output, info_path) as (local, local_info):  # URLs: uploaded after
        export_model(model.net, x, local, fmt)
        got = run_exported(local, fmt, torch.cat([x, x[:1]]))  # run at another batch size
        diff = float(np.abs(got - np.concatenate([expected, expected[:1]])).max())
        info["check"] = {"sample": source, "max_abs_diff": diff, "tolerance": tolerance}
        write_json(local_info, info)
    print(f"vidclf: exported {fmt} -> {output} (sidecar {info_path}); "
          f"max abs difference vs checkpoint on {source}: {diff:.2e}")
    if not diff <= tolerance:
        raise VidclfError(f"exported model differs from the checkpoint by {diff:.2e} > tolerance {tolerance}; "
                          f"try the other --format")
    return info


def _sample_clip(model, datamodule) -> tuple[torch.Tensor, str]:
    """A clip decoded from the first --data.predict video as predict would (else seeded noise),
    normalised, (1, C, T, H, W)."""
    clip = datamodule.clip
    if datamodule.hparams.predict:
        hp = datamodule.hparams
        path = unlabelled_videos(hp.predict, hp.videos_root, getattr(hp, "format", "auto")).items[0]
        item = VideoClips([path], None, clip, num_clips=1)[0]
        if "error" in item:
            raise VidclfError(f"{path}: cannot decode a sample clip for the export check ({item['error']})")
        return model.normalize(item["video"]), path
    generator = torch.Generator().manual_seed(0)
    noise = torch.randint(0, 256, (1, 3, clip.frames, clip.crop, clip.crop), generator=generator)
    return model.normalize(noise), "a random clip"
