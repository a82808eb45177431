"""Inference runtimes behind predict, validate, test, serve and export: torch, ONNX Runtime and OpenVINO.

A classifier's network is converted once (ONNX, then OpenVINO IR) into a cache keyed by the weights'
sha256 and the settings, and stands in for the torch network (`RuntimeNet`): the same normalised clips
(B, C, T, H, W) in, the same logits (B, K) out, so every row, timeline and report is made as before.
"""

from __future__ import annotations

import importlib.util
from typing import Literal

from vidclf.errors import VidclfError

Runtime = Literal["auto", "torch", "onnxruntime", "openvino"]
Precision = Literal["fp32", "fp16", "bf16", "int8"]
INSTALL = {"onnxruntime": "pip install onnxruntime", "openvino": "pip install openvino",
           "nncf": "pip install nncf"}
PACKAGE = {"onnxruntime": "onnxruntime", "openvino": "openvino", "nncf": "nncf"}


def installed(name: str) -> bool:
    """Whether the runtime (or tool) `name` can be imported here."""
    return importlib.util.find_spec(PACKAGE[name]) is not None


def require(name: str, option: str) -> None:
    """One line with the install command when `name` is missing."""
    if not installed(name):
        raise VidclfError(f"{option} needs {name}, which is not installed here; install it with: {INSTALL[name]}")


def choose(runtime: str, device: str, option: str = "--runtime") -> str:
    """The runtime that will run: `auto` is torch on a GPU and on a CPU the fastest installed (OpenVINO,
    then ONNX Runtime, then torch); a named one must be installed and, but for torch, runs on the CPU."""
    if runtime == "auto":
        if device != "cpu":
            return "torch"
        return next((name for name in ("openvino", "onnxruntime") if installed(name)), "torch")
    if runtime != "torch":
        require(runtime, f"{option} {runtime}")
        if device != "cpu":
            raise VidclfError(f"{option} {runtime} runs on the CPU; pass --trainer.accelerator cpu, or --runtime torch "
                              f"for the GPU")
    return runtime


def check_precision(runtime: str, precision: str) -> None:
    """bf16 and fp16 are OpenVINO's here: one line for another runtime."""
    if precision != "fp32" and runtime in ("torch", "onnxruntime"):
        raise VidclfError(f"--precision {precision} is OpenVINO's; pass --runtime openvino (or auto), or --precision fp32")
