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


def openvino_model(net: nn.Module, example: torch.Tensor, work: str):
    """An OpenVINO model of `net`: converted from its ONNX file (written into the folder `work`), else by
    OpenVINO's PyTorch frontend from the network itself (torchvision's MViT, whose ONNX holds sequence ops
    OpenVINO does not read); the batch axis stays dynamic."""
    import openvino as ov

    onnx = os.path.join(work, "model.onnx")
    try:
        write_onnx(net, example, onnx)
        return ov.convert_model(onnx)
    except Exception as onnx_err:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tracer chatter
                return ov.convert_model(net, example_input=example, input=[ov.PartialShape([-1, *example.shape[1:]])])
        except Exception as err:
            raise VidclfError(f"OpenVINO cannot convert this backbone (from ONNX: {_short(onnx_err)}; from torch: "
                              f"{_short(err)}); run it with --runtime onnxruntime or torch") from None


def _short(err: Exception) -> str:
    return f"{type(err).__name__}: {' '.join(str(err).split())[:160]}"


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
        net, example = net.float().eval(), example.float()
        if runtime == "openvino":
            import openvino as ov

            ov.save_model(openvino_model(net, example, str(work)), str(work / FILE["openvino"]), compress_to_fp16=False)
            (work / FILE["onnxruntime"]).unlink(missing_ok=True)
        else:
            write_onnx(net, example, str(work / FILE["onnxruntime"]))
        (work / "key.json").write_text(json.dumps(key, indent=1))
        try:
            os.rename(work, folder)
        except OSError:  # another process converted it meanwhile
            pass
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return str(target)
