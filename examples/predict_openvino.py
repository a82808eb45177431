"""Classify a video with an OpenVINO model exported by `vidclf export --format openvino`, without vidclf.

Needs only numpy, PyAV and openvino (and predict_onnx.py beside this file, for reading the video as
the sidecar says). The sidecar `model.xml.json` says how to preprocess and at which precision to
compute: OpenVINO's CPU default is bf16 on CPUs that have it, so an fp32 export asks for f32, and the
scores then match `vidclf predict` on the same video.

    python examples/predict_openvino.py model.xml video.mp4
"""

import json
import os
import sys

import openvino as ov

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from predict_onnx import show, views_of  # noqa: E402  (the same video reading and output as the ONNX example)


def main(model_path, video_path):
    info = json.load(open(model_path + ".json"))
    hint = info.get("runtime", {}).get("INFERENCE_PRECISION_HINT", "f32")
    model = ov.Core().compile_model(model_path, "CPU", {"INFERENCE_PRECISION_HINT": hint})
    show(info, model(views_of(info, video_path))[0])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
