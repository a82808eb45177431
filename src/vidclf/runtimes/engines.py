"""Open a model file in its runtime: a callable from a float32 array (B, C, T, H, W) to logits (B, K)."""

from __future__ import annotations

import threading
from typing import Optional

import numpy as np

OPENVINO_PRECISION = {"fp32": "f32", "fp16": "f32", "bf16": "bf16", "int8": "f32"}
"""OpenVINO's INFERENCE_PRECISION_HINT per vidclf precision. Its own default on a CPU with AVX-512 BF16 is
bf16, so fp32 must be asked for (results equal torch's); fp16 files hold fp16 weights computed in f32 on a
CPU; int8 files compute their quantized layers in int8 and the rest in f32."""


class OnnxRuntimeEngine:
    """An ONNX file in ONNX Runtime on the CPU (sessions are safe to call from several threads)."""

    def __init__(self, path: str, threads: Optional[int]):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.log_severity_level = 3  # its warnings about unused initialisers are not the user's business
        self.session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input: x})[0]


class OpenVinoEngine:
    """An OpenVINO IR (model.xml + model.bin) or ONNX file compiled for the CPU; one infer request per
    thread, since a request is not shared safely (serve scores timelines in threads)."""

    def __init__(self, path: str, threads: Optional[int], precision: str = "fp32"):
        import openvino as ov

        config = {"INFERENCE_PRECISION_HINT": OPENVINO_PRECISION[precision], "PERFORMANCE_HINT": "LATENCY"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        self.compiled = ov.Core().compile_model(path, "CPU", config)
        self.local = threading.local()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        request = getattr(self.local, "request", None)
        if request is None:
            request = self.local.request = self.compiled.create_infer_request()
        return request.infer({0: x})[0].copy()  # the request's buffer is reused by its next call


def open_engine(path: str, runtime: str, threads: Optional[int], precision: str = "fp32"):
    """The engine for `path` in `runtime` (onnxruntime or openvino)."""
    if runtime == "onnxruntime":
        return OnnxRuntimeEngine(path, threads)
    return OpenVinoEngine(path, threads, precision)
