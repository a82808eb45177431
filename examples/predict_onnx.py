"""Classify a video with an ONNX model exported by `vidclf export`, without vidclf installed.

Needs only numpy, PyAV and onnxruntime. Preprocessing is read from the sidecar JSON next to the
model, so the scores match `vidclf predict` on the same video. A single-label model prints the five
most probable classes; a multi-label one every class's probability, marking those at or above
their threshold (the labels `vidclf predict` gives).

    python examples/predict_onnx.py model.onnx video.mp4
"""

import json
import sys

import av
import numpy as np


def frames_at(path, times, short_side):
    """RGB frames (uint8, H x W x 3) on screen at each of the sorted `times` (seconds)."""
    with av.open(path) as container:
        stream = container.streams.video[0]
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        picked, previous = [], None
        for frame in container.decode(stream):
            t = float(frame.pts * frame.time_base) - start
            while len(picked) < len(times) and t > times[len(picked)] + 1e-6:
                picked.append(previous if previous is not None else frame)
            previous = frame
            if len(picked) == len(times):
                break
        picked += [previous] * (len(times) - len(picked))  # short video: repeat the last frame
    images = []
    for frame in picked:
        scale = short_side / min(frame.width, frame.height)
        image = frame.to_ndarray(width=max(1, round(frame.width * scale)), height=max(1, round(frame.height * scale)),
                                 format="rgb24", interpolation="BILINEAR")
        images.append(np.rot90(image, round((frame.rotation or 0) / 90) % 4))  # upright
    return images


def duration_of(path):
    with av.open(path) as container:
        stream = container.streams.video[0]
        return float(stream.duration * stream.time_base) if stream.duration else container.duration / av.time_base


def crops(clip, size, count):
    """(T, H, W, 3) -> list of `count` (T, size, size, 3): centre, or both ends + centre of the long side."""
    h, w = clip.shape[1:3]
    along = [(max(h, w) - size) // 2] if count == 1 else [0, (max(h, w) - size) // 2, max(h, w) - size]
    top, left = (h - size) // 2, (w - size) // 2
    return [clip[:, a:a + size, left:left + size] if h > w else clip[:, top:top + size, a:a + size] for a in along]


def softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def views_of(info, video_path):
    """The video's views (clips x crops) as the model takes them: float32 (views, C, T, H, W), normalised."""
    inp, video = info["input"], info["video"]
    slack = max(0.0, duration_of(video_path) - video["clip_seconds"])
    n = video["num_clips"]
    starts = [slack / 2] if n == 1 else [slack * i / (n - 1) for i in range(n)]
    times = [s + i * inp["frame_interval_seconds"] for s in starts for i in range(inp["frames"])]
    order = np.argsort(times, kind="stable")
    images = frames_at(video_path, [times[i] for i in order], max(inp["resize_short_side"], inp["crop"]))
    frames = [None] * len(times)
    for slot, image in zip(order, images):
        frames[slot] = image
    clips = np.stack(frames).reshape(n, inp["frames"], *images[0].shape)
    views = np.stack([c for clip in clips for c in crops(clip, inp["crop"], video["num_crops"])])
    x = (views.astype(np.float32) / 255 - np.array(inp["mean"], np.float32)) / np.array(inp["std"], np.float32)
    return np.ascontiguousarray(x.transpose(0, 4, 1, 2, 3))  # (views, T, H, W, C) -> (views, C, T, H, W)


def show(info, logits):
    """Print the video's classes from its views' logits (views, K), combined as `vidclf predict` does."""
    output = info["output"]
    activation = sigmoid if output.get("multi_label") else softmax
    probs = activation(logits.mean(0)) if info["video"]["aggregate"] == "logit" else activation(logits).mean(0)
    names = info["class_names"]
    if output.get("multi_label"):
        for k in np.argsort(-probs, kind="stable"):
            present = probs[k] >= output["thresholds"][names[k]]
            print(f"{names[k]}\t{probs[k]:.6f}\t{'present' if present else 'absent'}")
    else:
        for k in np.argsort(-probs)[:5]:
            print(f"{names[k]}\t{probs[k]:.6f}")


def main(model_path, video_path):
    import onnxruntime  # noqa: PLC0415  (here: predict_openvino.py reads videos with this file, without onnxruntime)

    info = json.load(open(model_path + ".json"))
    x = views_of(info, video_path)
    show(info, onnxruntime.InferenceSession(model_path).run(None, {info["input"]["name"]: x})[0])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
