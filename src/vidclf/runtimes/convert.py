"""Model files for the runtimes: ONNX from a torch network, OpenVINO IR from ONNX, and a cache of both
keyed by the weights' sha256 and the settings, so a checkpoint is converted once per machine."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

from vidclf.errors import VidclfError
from vidclf.version import __version__

FILE = {"onnxruntime": "model.onnx", "openvino": "model.xml"}


def write_onnx(net: nn.Module, example: torch.Tensor, path: str) -> None:
    """`net` traced on `example` (a batch of 2 or more, so the batch axis stays dynamic) as ONNX (opset 17)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and deprecation chatter; parity is checked by the callers
        try:
            torch.onnx.export(net, (example,), path, dynamo=False, opset_version=17, input_names=["video"],
                              output_names=["logits"], dynamic_axes={"video": {0: "batch"}, "logits": {0: "batch"}})
        except Exception as err:  # an operator ONNX cannot express: name it and the runtime that can run it
            raise VidclfError(f"this backbone does not convert to ONNX ({type(err).__name__}: "
                              f"{' '.join(str(err).split())[:200]}); run it with --runtime torch, or export "
                              f"--format torchscript / pt2") from None


def write_openvino(onnx_path: str, xml_path: str, fp16_weights: bool = False) -> None:
    """OpenVINO IR (`xml_path` and the .bin beside it) converted from an ONNX file; fp32 weights unless
    `fp16_weights` (OpenVINO's save_model compresses to fp16 by default: not here)."""
    import openvino as ov

    try:
        model = ov.convert_model(onnx_path)
    except Exception as err:
        raise VidclfError(f"OpenVINO cannot convert this backbone ({type(err).__name__}: "
                          f"{' '.join(str(err).split())[:200]}); run it with --runtime onnxruntime or torch") from None
    ov.save_model(model, xml_path, compress_to_fp16=fp16_weights)


def cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "vidclf" / "runtimes"


def cached_model(net: nn.Module, example: torch.Tensor, weights_sha256: str, runtime: str) -> str:
    """The model file of `runtime` for this network, converted on first use into the cache (one folder per
    weights sha256, runtime, input shape and vidclf/torch versions; written whole, then renamed)."""
    key = {"weights_sha256": weights_sha256, "runtime": runtime, "input": list(example.shape[1:]),
           "vidclf": __version__, "torch": torch.__version__}
    folder = cache_root() / hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
    target = folder / FILE[runtime]
    if target.is_file():
        return str(target)
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".tmp-", dir=folder.parent))
    try:
        net = net.float().eval()
        write_onnx(net, example.float(), str(work / FILE["onnxruntime"]))
        if runtime == "openvino":
            write_openvino(str(work / FILE["onnxruntime"]), str(work / FILE["openvino"]))
            (work / FILE["onnxruntime"]).unlink()
        (work / "key.json").write_text(json.dumps(key, indent=1))
        try:
            os.rename(work, folder)
        except OSError:  # another process converted it meanwhile
            pass
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return str(target)
