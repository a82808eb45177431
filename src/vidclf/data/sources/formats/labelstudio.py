"""Label Studio's JSON export of video tasks: `[{"data": {"video": ...}, "annotations": [{"result":
[...]}]}]`. `timelinelabels` results ({"ranges": [{"start": 1, "end": 61}], "timelinelabels":
["run"]}, frames counted from 1, both ends included) become segments, frames turned into seconds
through the task's frame rate (framesCount / duration of a result that states them, else the video
file's own rate: the rate Label Studio's Video tag should be given); `choices` results label the
whole video (an export where any video has several choices is multi-label: every choice counts). The
first annotation that was not cancelled counts. Video paths: `/data/local-files/
?d=REL` and `/data/upload/...` are taken under the videos root (Label Studio's document root /
media folder), other paths as they are (relative ones under the videos root)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from vidclf.data.segments import segment
from vidclf.data.sources.formats.common import load_json, shape_error
from vidclf.errors import VidclfError


def read(path: Path, root: Path, split_number: int) -> list[dict]:
    tasks = load_json(path)
    if not isinstance(tasks, list) or not all(isinstance(t, dict) for t in tasks):
        raise shape_error(path, "Label Studio", "the JSON export: an array of tasks")
    rows, videos = [], 0
    several = any(len((r.get("value") or {}).get("choices") or []) > 1 for t in tasks
                  for a in t.get("annotations") or [] for r in a.get("result") or [] if r.get("type") == "choices")
    for number, task in enumerate(tasks, start=1):
        url = next((v for k, v in (task.get("data") or {}).items() if k in ("video", "video_url", "url")
                    and isinstance(v, str)), None)
        if url is None:
            continue
        videos += 1
        video = _local(url, root)
        done = [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]
        results = done[0].get("result", []) if done else []
        if not Path(video).is_file():
            rows.append({"path": video, "missing": f"missing: task {task.get('id', number)}'s video {url} is not at "
                         f"{video}", "split": None, "line": f"task {task.get('id', number)}"})
            continue
        where, fps = f"task {task.get('id', number)}", None
        for result in results:
            value = result.get("value") or {}
            if result.get("type") == "choices" and value.get("choices"):
                named = {"labels": list(value["choices"])} if several else {"label": value["choices"][0]}
                rows.append({"path": video, **named, "split": None, "line": where})
            elif result.get("type") == "timelinelabels":
                fps = fps or _frame_rate(results, video)  # once per task: it may open the video
                for span in value.get("ranges", []):
                    start, end = (span["start"] - 1) / fps, span["end"] / fps
                    rows += [{"path": segment(video, start, end), **({"labels": [label]} if several else {"label": label}),
                              "split": None, "line": where} for label in value.get("timelinelabels", [])]
    if not videos:
        raise VidclfError(f"{path}: a Label Studio export with no video tasks (no task has data.video); export the "
                          f"video project, or check the task field holding the video")
    return rows


def _local(url: str, root: Path) -> str:
    parsed = urlparse(url)
    if parsed.path.startswith("/data/local-files"):
        return str(root / unquote(parse_qs(parsed.query).get("d", [""])[0]))
    if parsed.path.startswith("/data/"):
        return str(root / unquote(parsed.path[len("/data/"):]))
    return str(root / unquote(parsed.path)) if not Path(parsed.path).is_absolute() else unquote(parsed.path)


def _frame_rate(results: list[dict], video: str) -> float:
    for result in results:
        value = result.get("value") or {}
        if value.get("framesCount") and value.get("duration"):
            return float(value["framesCount"]) / float(value["duration"])
    from vidclf.data.decode import VideoReader

    with VideoReader(video) as reader:
        return 1.0 / reader.frame_step
