"""`--model_file`: an exported model (ONNX or OpenVINO IR) and its sidecar in place of a checkpoint, so a
deployment box needs neither the checkpoint nor the training code's weights: the sidecar states the
classes, the clip settings, the views, the thresholds and the normalisation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import torch

from vidclf.errors import VidclfError
from vidclf.models.normalize import Normalize
from vidclf.runtimes import require
from vidclf.runtimes.engines import open_engine
from vidclf.runtimes.swap import RuntimeNet

RUNTIME = {".onnx": "onnxruntime", ".xml": "openvino"}


def read_sidecar(path: str) -> dict:
    """The sidecar `path`.json of an exported ONNX or OpenVINO file, checked against the file; one line
    naming the file and the fix otherwise."""
    suffix = Path(path).suffix
    if suffix not in RUNTIME:
        raise VidclfError(f"--model_file {path}: runs an ONNX (.onnx) or OpenVINO (.xml) export; export one with "
                          f"vidclf export --format onnx|openvino (or pass --ckpt_path)")
    if not Path(path).is_file():
        raise VidclfError(f"--model_file {path}: no such file")
    try:
        info = json.loads(Path(f"{path}.json").read_text())
    except FileNotFoundError:
        raise VidclfError(f"--model_file {path}: its sidecar {path}.json is missing; keep the JSON vidclf export "
                          f"wrote beside the model") from None
    except (OSError, ValueError) as err:
        raise VidclfError(f"--model_file {path}: its sidecar {path}.json does not read ({err}); export again") from None
    wanted = {".onnx": "onnx", ".xml": "openvino"}[suffix]
    if not isinstance(info, dict) or info.get("format") != wanted or "input" not in info or "class_names" not in info:
        raise VidclfError(f"--model_file {path}: {path}.json is not the sidecar of a vidclf {wanted} export; export "
                          f"again with vidclf export --format {wanted}")
    return info


def options(info: dict) -> tuple[dict, dict]:
    """(model options, data options) the sidecar states."""
    inp, output = info["input"], info["output"]
    model = {"backbone": info["backbone"], "class_names": info["class_names"], "pretrained": False,
             "multi_label": bool(output.get("multi_label")), "aggregate": info["video"]["aggregate"]}
    data = {"frames": inp["frames"], "rate": inp["sampling_rate"], "crop": inp["crop"],
            "resize": inp["resize_short_side"], "num_clips": info["video"]["num_clips"],
            "num_crops": info["video"]["num_crops"], "classes": info["class_names"],
            "multi_label": bool(output.get("multi_label"))}
    return model, data


def take_sidecar(model, path: str) -> str:
    """The sidecar's normalisation and thresholds on the classifier (what the server's model card shows,
    without compiling the file); returns the file's runtime."""
    info = read_sidecar(path)
    model.normalize = Normalize(tuple(info["input"]["mean"]), tuple(info["input"]["std"]))
    thresholds = info["output"].get("thresholds")
    if thresholds and model.hparams.threshold is None:
        model.thresholds = torch.tensor([thresholds[name] for name in model.class_names], dtype=torch.float)
    return RUNTIME[Path(path).suffix]


def take_file(model, path: str, threads: Optional[int]) -> str:
    """Put the exported file in the classifier's place: its network, normalisation and thresholds as the
    sidecar says; returns the runtime."""
    runtime = take_sidecar(model, path)
    require(runtime, f"--model_file {path}")
    precision = read_sidecar(path).get("precision", "fp32")
    model.net = RuntimeNet(open_engine(path, runtime, threads or torch.get_num_threads(), precision), runtime)
    return runtime
