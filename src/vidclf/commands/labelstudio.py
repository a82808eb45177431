"""Predictions as Label Studio tasks (`vidclf predict --output_format labelstudio`): pre-annotations a
person corrects instead of labelling from scratch, and the labelling config that matches them.

Each video is a task whose `data.video` Label Studio can open (a `/data/local-files/?d=` path under
`--labelstudio_root`, else the path or URL as given) with one prediction: `choices` for the whole video
(multi-label: every class at or above its threshold) and `timelinelabels` ranges from the timeline
windows, runs of the same label merged, in frames as Label Studio counts them (from 1, both ends
included: the inverse of what vidclf's import reads). A video that failed keeps its task, with
`data.status` saying why and no prediction.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional
from urllib.parse import quote
from xml.sax.saxutils import quoteattr

import torch

from vidclf.io import storage

VIDEO, CHOICES, TIMELINE = "video", "label", "timeline"  # the names the config gives its tags


def config(class_names: list[str], multi_label: bool, frame_rate: float) -> str:
    """The labelling config whose tags the tasks' predictions name."""
    labels = "\n".join(f"    <Choice value={quoteattr(name)}/>" for name in class_names)
    spans = "\n".join(f"    <Label value={quoteattr(name)}/>" for name in class_names)
    return (f'<View>\n  <Video name="{VIDEO}" value="${VIDEO}" frameRate="{frame_rate:g}"/>\n'
            f'  <Choices name="{CHOICES}" toName="{VIDEO}" choice="{"multiple" if multi_label else "single"}">\n'
            f'{labels}\n  </Choices>\n  <TimelineLabels name="{TIMELINE}" toName="{VIDEO}">\n{spans}\n'
            f'  </TimelineLabels>\n</View>')


def video_url(path: str, root: Optional[str]) -> str:
    """What Label Studio opens: under `root` (its local-files document root) a local-files path."""
    if root and not storage.is_remote(path):
        try:
            relative = Path(path).resolve().relative_to(Path(root).expanduser().resolve())
            return f"/data/local-files/?d={quote(relative.as_posix())}"
        except ValueError:
            pass
    return path


def task(path: str, root: Optional[str], status: str, probs: Optional[torch.Tensor], windows: list, module,
         model_version: str, frame_rate: Optional[float]) -> dict:
    """One task: the video, and for an ok one its prediction (`probs`: the video's (K,); `windows`:
    (start seconds, end seconds, probs (K,)) of its timeline)."""
    data = {VIDEO: video_url(path, root)}
    if status != "ok" or probs is None:
        return {"data": {**data, "status": status}, "predictions": []}
    names = module.class_names
    chosen = [names[i] for i in _present(probs[None], module)[0].nonzero().flatten().tolist()]
    marked = [(start, end, {names[k]: float(p[k]) for k in _present(p[None], module)[0].nonzero().flatten().tolist()})
              for start, end, p in windows]
    return {"data": data, "predictions": [prediction(chosen, float(probs.max()), marked, frame_rate, model_version)]}


def prediction(chosen: list[str], score: float, windows: list, frame_rate: Optional[float], model_version: str) -> dict:
    """A Label Studio prediction: `choices` for the video, and `timelinelabels` ranges from `windows`
    ((start, end, {class present: its score})) when the frame rate is known."""
    results = [{"id": "video", "from_name": CHOICES, "to_name": VIDEO, "type": "choices", "origin": "prediction",
                "value": {"choices": chosen}, "score": round(score, 6)}]
    if windows and frame_rate:
        results += _ranges(windows, frame_rate)
    return {"model_version": model_version, "score": round(score, 6), "result": results}


def _present(probs: torch.Tensor, module) -> torch.Tensor:
    """(N, K) booleans: the classes each row predicts (single-label: its top class)."""
    if module.hparams.multi_label:
        return probs >= module.active_thresholds().cpu()
    return torch.nn.functional.one_hot(probs.argmax(-1), probs.shape[-1]).bool()


def _ranges(windows: list, frame_rate: float) -> list[dict]:
    """Timeline results: for each class, its runs of consecutive windows merged into one range of frames
    (a window spans from its start to the next window's, the last to its own end)."""
    windows = sorted(windows, key=lambda w: w[0])
    spans = [(start, windows[i + 1][0] if i + 1 < len(windows) else end) for i, (start, end, _) in enumerate(windows)]
    names = list(dict.fromkeys(name for _, _, present in windows for name in present))
    results = []
    for name in names:
        i = 0
        while i < len(windows):
            if name not in windows[i][2]:
                i += 1
                continue
            j = i
            while j + 1 < len(windows) and name in windows[j + 1][2]:
                j += 1
            first, last = round(spans[i][0] * frame_rate) + 1, max(round(spans[j][1] * frame_rate), 1)
            score = sum(windows[k][2][name] for k in range(i, j + 1)) / (j + 1 - i)
            results.append({"id": f"{name}-{i}", "from_name": TIMELINE, "to_name": VIDEO, "type": "timelinelabels",
                            "origin": "prediction", "score": round(score, 6),
                            "value": {"ranges": [{"start": first, "end": max(first, last)}], "timelinelabels": [name]}})
            i = j + 1
    return results


def frame_rate_of(path: str) -> Optional[float]:
    """The video's own frame rate (what its Label Studio Video tag should say); None if it cannot open."""
    from vidclf.data.decode import VideoReader

    try:
        with VideoReader(path) as reader:
            return 1.0 / reader.frame_step
    except Exception:  # noqa: BLE001 - a video that does not open has no ranges to count
        return None


def say_config(class_names: list[str], multi_label: bool, rates: list[float], output: str) -> None:
    """Print the labelling config for the tasks at `output` (the most common frame rate in its Video tag)."""
    rate = max(set(rates), key=rates.count) if rates else 30.0
    mixed = len({round(r, 3) for r in rates}) > 1
    print(f"vidclf: Label Studio tasks -> {output}; the labelling config for them"
          + (" (the videos' frame rates differ: a project per rate keeps the timeline frames exact)" if mixed else "")
          + f":\n{config(class_names, multi_label, rate)}", file=sys.stderr)
