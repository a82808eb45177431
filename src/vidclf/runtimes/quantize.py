"""INT8 post-training quantization calibrated on the user's own clips: NNCF for OpenVINO IR, ONNX Runtime's
static QDQ quantization for ONNX. Calibration clips are float32 arrays (1, C, T, H, W), normalised."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence

import numpy as np

from vidclf.errors import VidclfError
from vidclf.runtimes import require


def openvino_int8(model, xml_path: str, clips: Sequence[np.ndarray]) -> None:
    """The OpenVINO model quantized by NNCF (weights and activations of convolutions and matrix products
    to int8, the rest as it was), saved as IR at `xml_path`."""
    require("nncf", "--precision int8 with --format openvino")
    import nncf
    import openvino as ov

    logging.getLogger("nncf").setLevel(logging.ERROR)  # its progress bars and notes are not the user's business
    try:
        quantized = nncf.quantize(model, nncf.Dataset(list(clips)), subset_size=len(clips))
    except Exception as err:
        raise VidclfError(f"NNCF could not quantize this backbone ({type(err).__name__}: "
                          f"{' '.join(str(err).split())[:200]}); export --precision fp32 or bf16") from None
    ov.save_model(quantized, xml_path, compress_to_fp16=False)


class _Clips:
    """ONNX Runtime's CalibrationDataReader: one {"video": clip} per call, None at the end."""

    def __init__(self, clips: Sequence[np.ndarray]):
        self.clips = iter(clips)

    def get_next(self):
        clip = next(self.clips, None)
        return None if clip is None else {"video": clip}


def onnx_int8(onnx_path: str, output: str, clips: Sequence[np.ndarray]) -> None:
    """The ONNX model with int8 weights (per channel) and activations (static, calibrated on `clips`) in
    QDQ form, which ONNX Runtime runs with its int8 kernels (VNNI where the CPU has it)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    reader = type("ClipReader", (_Clips, CalibrationDataReader), {})(clips)
    with tempfile.TemporaryDirectory() as work:
        prepared = os.path.join(work, "prepared.onnx")
        try:
            quant_pre_process(onnx_path, prepared, skip_symbolic_shape=True)
            quantize_static(prepared, output, reader, quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        except Exception as err:
            raise VidclfError(f"ONNX Runtime could not quantize this backbone ({type(err).__name__}: "
                              f"{' '.join(str(err).split())[:200]}); try --format openvino, or --precision fp32") from None
