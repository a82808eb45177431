"""`vidclf export`: a trained classifier as ONNX, OpenVINO IR, TorchScript or torch.export, a sidecar, a check.

Nothing here imports Lightning. The exported model takes float32 clips (B, C, T, H, W) normalised as
the sidecar says and returns logits (B, K).
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Optional

import numpy as np
import torch
from torch import nn

from vidclf.commands.export_check import calibration_set, compare_on_val
from vidclf.commands.predict import views
from vidclf.data.clips import ClipSettings
from vidclf.data.datasets import VideoClips
from vidclf.data.sources import unlabelled_videos
from vidclf.errors import VidclfError
from vidclf.io import storage
from vidclf.io.checkpoints import load_weights, sha256
from vidclf.io.files import check_output, write_json
from vidclf.models.backbones import get_spec
from vidclf.models.features import class_vectors
from vidclf.runtimes.convert import openvino_model, write_onnx
from vidclf.runtimes.engines import OPENVINO_PRECISION, open_engine
from vidclf.runtimes.quantize import onnx_int8, openvino_int8
from vidclf.runtimes.swap import RuntimeNet

Format = Literal["onnx", "openvino", "torchscript", "pt2"]
SUFFIX = {"onnx": ".onnx", "openvino": ".xml", "torchscript": ".pt", "pt2": ".pt2"}
PRECISIONS = {"onnx": ("fp32", "int8"), "openvino": ("fp32", "fp16", "bf16", "int8"), "torchscript": ("fp32",),
              "pt2": ("fp32",)}


def export_model(net: nn.Module, example: torch.Tensor, output: str, fmt: Format, precision: str = "fp32",
                 calibration: Sequence[np.ndarray] = ()) -> None:
    """Write `net` traced on `example` (batch of 2 or more) to `output` (its final name: the caller writes
    under a temporary one). int8 is calibrated on `calibration` clips; fp16 keeps fp16 weights."""
    if fmt == "openvino":
        import openvino as ov

        with tempfile.TemporaryDirectory() as work:
            model = openvino_model(net, example, work)
            if precision == "int8":
                openvino_int8(model, output, calibration)
            else:
                ov.save_model(model, output, compress_to_fp16=precision == "fp16")
        return
    if fmt == "onnx" and precision == "int8":
        with tempfile.TemporaryDirectory() as work:
            write_onnx(net, example, os.path.join(work, "model.onnx"))
            onnx_int8(os.path.join(work, "model.onnx"), output, calibration)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and deprecation chatter; parity is checked below
        if fmt == "torchscript":
            torch.jit.trace(net, example).save(output)
        elif fmt == "pt2":
            batch = torch.export.Dim("batch", min=1, max=1024)
            program = torch.export.export(net, (example,), dynamic_shapes=({0: batch},))
            torch.export.save(program, output)
        else:
            write_onnx(net, example, output)


def load_exported(path: str, fmt: Format, precision: str = "fp32") -> nn.Module:
    """The exported file at `path` as a network run by its own runtime (onnxruntime for ONNX)."""
    if fmt == "torchscript":
        return torch.jit.load(path)
    if fmt == "pt2":
        return torch.export.load(path).module()
    return RuntimeNet(open_engine(path, RUNTIME[fmt], None, precision), RUNTIME[fmt])


def run_exported(path: str, fmt: Format, x: torch.Tensor, precision: str = "fp32") -> np.ndarray:
    """Logits of the exported file at `path`, run by its own runtime."""
    with torch.no_grad():
        return load_exported(path, fmt, precision)(x).numpy()


RUNTIME = {"onnx": "onnxruntime", "openvino": "openvino"}


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
        # zero-shot (no checkpoint): the video-text model and its words
        "source_checkpoint": {"path": str(checkpoint), "sha256": sha256(checkpoint)} if checkpoint else
        {"path": backbone, "sha256": None, "zero_shot": True},
    }


def output_info(class_names: list[str], thresholds: Optional[list[float]]) -> dict:
    """How to read the logits: softmax, or for multi-label a sigmoid per class and its threshold."""
    if thresholds is None:
        return {"name": "logits", "layout": "BK", "multi_label": False, "activation": "softmax gives probabilities"}
    return {"name": "logits", "layout": "BK", "multi_label": True,
            "activation": "sigmoid per class gives probabilities; a class is present when its probability "
                          ">= its threshold",
            "thresholds": {name: round(float(t), 6) for name, t in zip(class_names, thresholds)}}


def export(model, datamodule, ckpt_path: Optional[str], fmt: Format, output: Optional[str], tolerance: float,
           overwrite: bool, precision: str = "fp32", calibration_clips: int = 64, max_accuracy_drop: float = 1.0) -> dict:
    """Write the model of `ckpt_path` as `fmt` at `precision` with its sidecar, run it at another batch
    size and compare with the checkpoint's logits; a reduced precision is also measured against the
    checkpoint on --data.val. Nothing is written when a check fails. Returns the sidecar."""
    if not ckpt_path and class_vectors(model.net) is None:  # a video-text model's words wrote its head
        raise VidclfError("export needs a trained model; pass --ckpt_path RUN/checkpoints/best.ckpt")
    check_export_precision(fmt, precision, datamodule)
    if ckpt_path:
        run = ckpt_path.rsplit("/", 2)[0] if storage.is_remote(ckpt_path) else str(Path(ckpt_path).parent.parent)
    output = output or (f"{run}/model{SUFFIX[fmt]}" if ckpt_path else f"model{SUFFIX[fmt]}")
    info_path = f"{output}.json"
    check_output(output, overwrite)
    check_output(info_path, overwrite)
    if ckpt_path:
        load_weights(model, ckpt_path)
    model.eval()
    clip_x, source = _sample_clip(model, datamodule)
    x = torch.cat([clip_x, clip_x.flip(-1)])  # a batch of 2, so the batch axis stays dynamic
    with torch.no_grad():
        expected = model(x).numpy()
    thresholds = model.active_thresholds().tolist() if model.hparams.multi_label else None
    info = sidecar(model.hparams.backbone, model.class_names, datamodule.clip, ckpt_path, fmt,
                   views(model, datamodule), thresholds)
    info["precision"] = precision
    if fmt == "openvino":  # what to compile it with: OpenVINO's CPU default is bf16 where the CPU has it
        info["runtime"] = {"name": "openvino", "INFERENCE_PRECISION_HINT": OPENVINO_PRECISION[precision]}
    calibration = calibration_set(model, datamodule, calibration_clips) if precision == "int8" else None
    if calibration:
        info["calibration"] = calibration[1]
    with storage.written_locally(output, info_path) as (local, local_info):  # URLs: uploaded after
        tmp = str(Path(local).with_name(f".tmp-{Path(local).name}"))  # same suffix: torch.export checks it
        try:
            export_model(model.net.float(), x, tmp, fmt, precision, calibration[0] if calibration else ())
            exported = load_exported(tmp, fmt, precision)  # compiled once: checked, then measured
            with torch.no_grad():
                got = exported(torch.cat([x, x[:1]])).numpy()  # run at another batch size
            diff = float(np.abs(got - np.concatenate([expected, expected[:1]])).max())
            info["check"] = {"sample": source, "max_abs_diff": diff, "tolerance": tolerance if precision == "fp32" else None}
            print(f"vidclf: exported {fmt} at {precision}; max abs difference vs checkpoint on {source}: {diff:.2e}")
            if precision == "fp32" and not diff <= tolerance:
                raise VidclfError(f"exported model differs from the checkpoint by {diff:.2e} > tolerance {tolerance}; "
                                  f"nothing written; try the other --format")
            if precision != "fp32":
                info["accuracy"] = compare_on_val(model, datamodule, exported, f"{fmt} {precision}", max_accuracy_drop)
            os.replace(tmp, local)
            if fmt == "openvino":  # IR: model.xml and its weights model.bin
                os.replace(Path(tmp).with_suffix(".bin"), Path(local).with_suffix(".bin"))
        finally:
            for left in Path(tmp).parent.glob(f"{Path(tmp).stem}.*"):
                left.unlink()
        write_json(local_info, info)
    print(f"vidclf: exported {fmt} -> {output} (sidecar {info_path})")
    return info


def check_export_precision(fmt: str, precision: str, datamodule) -> None:
    """One line for a precision the format has not, or a reduced one with nothing to measure it on."""
    if precision not in PRECISIONS[fmt]:
        formats = [f for f, kinds in PRECISIONS.items() if precision in kinds]
        raise VidclfError(f"--format {fmt} exports at {' or '.join(PRECISIONS[fmt])}; --precision {precision} "
                          f"needs --format {' or '.join(formats)}")
    if precision != "fp32" and not datamodule.hparams.val:
        raise VidclfError(f"--precision {precision} is measured against the checkpoint on labelled videos before it "
                          f"is written; pass --data.val (a folder of class folders or a list with labels)")


def _sample_clip(model, datamodule) -> tuple[torch.Tensor, str]:
    """A clip decoded from the first --data.predict video that decodes, as predict would (else seeded noise),
    normalised, (1, C, T, H, W)."""
    clip = datamodule.clip
    if datamodule.hparams.predict:
        hp = datamodule.hparams
        paths = unlabelled_videos(hp.predict, hp.videos_root, getattr(hp, "format", "auto")).items
        videos = VideoClips(paths, None, clip, num_clips=1)
        for path, item in zip(paths, map(videos.__getitem__, range(len(paths)))):  # the first that decodes
            if "error" not in item:
                return model.normalize(item["video"]), path
        raise VidclfError(f"--data.predict {hp.predict}: none of its {len(paths)} videos decodes (the first: "
                          f"{paths[0]}), so there is no sample clip for the export check; pass videos that "
                          f"`vidclf data` reads")
    generator = torch.Generator().manual_seed(0)
    noise = torch.randint(0, 256, (1, 3, clip.frames, clip.crop, clip.crop), generator=generator)
    return model.normalize(noise), "a random clip"
