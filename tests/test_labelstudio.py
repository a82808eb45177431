"""Predictions as Label Studio tasks: every input a task, pre-annotations in Label Studio's documented
shape (choices for the video, timelinelabels ranges in frames), the matching config, and the round trip
back through vidclf's own Label Studio import."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from conftest import QUIET, read_csv, vidclf
from vidclf.data.segments import split
from vidclf.data.sources import labelled_videos


def test_predict_writes_label_studio_tasks_that_import_back_as_the_same_labels(trained, tiny_data, tmp_path, capsys):
    root = tmp_path / "media"  # Label Studio's local-files document root
    shutil.copytree(tiny_data / "val", root / "val")
    (root / "val" / "rising" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(100))
    ckpt = trained / "checkpoints" / "best.ckpt"
    tasks_file = tmp_path / "tasks.json"
    capsys.readouterr()
    assert vidclf("predict", *QUIET, "--ckpt_path", ckpt, "--data.predict", root / "val", "--output", tasks_file,
                  "--output_format", "labelstudio", "--labelstudio_root", root, "--window", "0.4",
                  "--runtime", "torch", "--data.num_workers", "0") == 0
    said = capsys.readouterr().err
    config = said[said.index("<View>"):said.index("</View>") + 7]
    for name in ("falling", "rising", "sideways"):
        assert f'<Choice value="{name}"/>' in config and f'<Label value="{name}"/>' in config
    tasks = json.loads(tasks_file.read_text())
    assert len(tasks) == 16  # every input has its task
    broken = [t for t in tasks if t["data"]["video"].endswith("broken.mp4")]
    assert broken[0]["data"]["status"].startswith("error") and broken[0]["predictions"] == []
    # the same labels as the CSV rows, with ranges in frames as Label Studio counts them
    assert vidclf("predict", *QUIET, "--ckpt_path", ckpt, "--data.predict", root / "val", "--output",
                  tmp_path / "rows.csv", "--timeline", tmp_path / "windows.csv", "--window", "0.4", "--runtime", "torch",
                  "--data.num_workers", "0") == 0
    labels = {r["path"]: r["label"] for r in read_csv(tmp_path / "rows.csv") if r["status"] == "ok"}
    ok = [t for t in tasks if t["predictions"]]
    assert len(ok) == 15
    for t in ok:
        video = t["data"]["video"]
        assert video.startswith("/data/local-files/?d=val/")
        path = str(root / video.split("?d=", 1)[1])
        prediction = t["predictions"][0]
        assert prediction["model_version"].startswith("best.ckpt@")
        choices = [r for r in prediction["result"] if r["type"] == "choices"]
        assert choices[0]["value"]["choices"] == [labels[path]]
        spans = sorted((r["value"]["ranges"][0]["start"], r["value"]["ranges"][0]["end"])
                       for r in prediction["result"] if r["type"] == "timelinelabels")
        assert spans[0][0] == 1 and all(a[1] + 1 == b[0] for a, b in zip(spans, spans[1:]))  # tiled, no overlap
        for r in prediction["result"]:
            assert {"from_name", "to_name", "type", "value"} <= set(r) and r["to_name"] == "video"
    # a person accepts the predictions; Label Studio exports them as annotations; vidclf reads that export
    export = [{"id": n, "data": t["data"], "annotations": [{"result": t["predictions"][0]["result"]}]}
              for n, t in enumerate(ok, start=1)]
    (tmp_path / "export.json").write_text(json.dumps(export))
    rows = labelled_videos(str(tmp_path / "export.json"), videos_root=str(root), format="labelstudio").items
    whole = {p: label for p, label in rows if split(p)[1] is None}
    assert whole == labels
    # each imported segment covers windows the timeline gave its label, from their start to the next's
    windows = {}
    for w in read_csv(tmp_path / "windows.csv"):
        windows.setdefault(w["path"], []).append((float(w["start"]), w["label"]))
    segments = [(split(p), label) for p, label in rows if split(p)[1] is not None]
    assert len(segments) >= 15
    for (path, start, end), label in segments:
        inside = [lab for s, lab in windows[path] if start - 1e-6 <= s < end - 1e-6]
        assert inside and set(inside) == {label}, (path, start, end, label, windows[path])


def test_an_export_with_several_choices_per_video_is_multi_label(tiny_data, tmp_path):
    root = tiny_data / "val"
    export = [{"id": 1, "data": {"video": "/data/local-files/?d=rising/rising.mp4"},
               "annotations": [{"result": [{"type": "choices", "value": {"choices": ["rising", "sideways"]}}]}]},
              {"id": 2, "data": {"video": "/data/local-files/?d=falling/falling.mp4"},
               "annotations": [{"result": [{"type": "choices", "value": {"choices": ["falling"]}}]}]}]
    (tmp_path / "export.json").write_text(json.dumps(export))
    rows = labelled_videos(str(tmp_path / "export.json"), videos_root=str(root), format="labelstudio",
                           multi_label=None).items
    assert [(Path(p).name, set(labels)) for p, labels in rows] == [("rising.mp4", {"rising", "sideways"}),
                                                                  ("falling.mp4", {"falling"})]


def test_select_proposes_uncertain_diverse_unlabelled_videos(trained, tiny_data, tmp_path, capsys):
    pool = tmp_path / "pool"
    shutil.copytree(tiny_data / "val", pool)
    known = tiny_data / "train" / "rising"
    labelled_copy = next(known.iterdir())
    shutil.copy(labelled_copy, pool / "rising" / "already.mp4")  # the same bytes, another name: still new
    (pool / "broken.mp4").write_bytes(b"\x00" * 64)
    ckpt = trained / "checkpoints" / "best.ckpt"
    out = tmp_path / "next.json"
    capsys.readouterr()
    assert vidclf("select", *QUIET, "--ckpt_path", ckpt, "--data.predict", pool, "--data.train", tiny_data / "train",
                  "--budget", "4", "--output", out, "--data.num_workers", "0") == 0
    assert "select: 4 of 16 unlabelled videos (0 already labelled left out, 1 that failed" in capsys.readouterr().err
    reasons = read_csv(tmp_path / "next.csv")
    tasks = json.loads(out.read_text())
    assert len(tasks) == len(reasons) == 4 and [int(r["rank"]) for r in reasons] == [1, 2, 3, 4]
    assert reasons[0]["uncertainty_rank"] == "1"  # the most uncertain first, then the farthest from those chosen
    distances = [float(r["distance_to_chosen"]) for r in reasons[1:]]
    assert distances == sorted(distances, reverse=True)
    # uncertainty = 1 - (top1 - top2), from the same probabilities predict gives
    assert vidclf("predict", *QUIET, "--ckpt_path", ckpt, "--data.predict", pool, "--output", tmp_path / "p.csv",
                  "--runtime", "torch", "--data.num_workers", "0") == 0
    rows = {r["path"]: r for r in read_csv(tmp_path / "p.csv") if r["status"] == "ok"}
    margins = sorted(1 - (float(r["top1_prob"]) - float(r["top2_prob"])) for r in rows.values())
    for reason, t in zip(reasons, tasks):
        row = rows[reason["path"]]
        assert float(reason["uncertainty"]) == pytest.approx(1 - (float(row["top1_prob"]) - float(row["top2_prob"])),
                                                             abs=1e-4)
        assert t["predictions"][0]["result"][0]["value"]["choices"] == [row["label"]]
    assert float(reasons[0]["uncertainty"]) == pytest.approx(margins[-1], abs=1e-4)
    # a video of --data.train is never proposed again
    assert vidclf("select", *QUIET, "--ckpt_path", ckpt, "--data.predict", tiny_data / "train", "--data.train",
                  tiny_data / "train", "--output", tmp_path / "none.json", "--data.num_workers", "0") == 2
    assert "no unlabelled video" in capsys.readouterr().err


def test_k_center_never_takes_two_near_copies_before_every_cluster_has_one():
    from vidclf.commands.select import k_center

    torch.manual_seed(0)
    centres = torch.nn.functional.normalize(torch.randn(4, 16), dim=-1)
    vectors = torch.cat([c + 0.01 * torch.randn(5, 16) for c in centres])  # 4 clusters of 5 near-copies
    chosen, _ = k_center(vectors, 4, list(range(20)))
    assert sorted(i // 5 for i in chosen) == [0, 1, 2, 3]


class FakeStudio:
    """Label Studio's file serving, as an ML backend meets it: /data/upload/... with a token required."""

    def __init__(self, folder: Path, token: str):
        import http.server
        import threading

        seen = self.seen = []

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(folder), **kwargs)

            def do_GET(self):
                seen.append((self.path, self.headers.get("Authorization")))
                if self.headers.get("Authorization") != f"Token {token}":
                    return self.send_error(401)
                return super().do_GET()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()


@pytest.mark.slow
def test_serve_is_a_label_studio_ml_backend(trained, tiny_data, tmp_path, tmp_path_factory, monkeypatch):
    import urllib.request

    from test_serve import Server

    token = "ls-secret-token-4417"
    media = tmp_path / "media"
    (media / "data" / "upload" / "1").mkdir(parents=True)
    video = media / "data" / "upload" / "1" / "rising.mp4"
    shutil.copy(tiny_data / "val" / "rising" / "rising.mp4", video)
    studio = FakeStudio(media, token)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", token)
    ckpt = trained / "checkpoints" / "best.ckpt"
    server = Server(ckpt, tmp_path_factory.mktemp("ls"), "--labelstudio_url", studio.url, "--data.num_workers", "0",
                    "--runtime", "torch")

    def call(route: str, body=None) -> dict:
        request = urllib.request.Request(f"{server.url}/labelstudio/{route}", data=None if body is None else
                                         json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read())

    try:
        assert call("health")["status"] == "UP"
        version = call("setup", {"project": "1.1", "schema": "<View/>", "hostname": studio.url})["model_version"]
        tasks = [{"id": 1, "data": {"video": "/data/upload/1/rising.mp4"}},
                 {"id": 2, "data": {"video": "http://elsewhere.invalid/x.mp4"}},
                 {"id": 3, "data": {"video": "/data/upload/1/missing.mp4"}},
                 {"id": 4, "data": {"text": "no video"}}]
        results = call("predict", {"tasks": tasks, "project": "1.1", "label_config": "<View/>"})["results"]
        assert call("webhook", {"action": "ANNOTATION_CREATED"}) == {"status": "ok"}
    finally:
        code, output = server.stop()
        studio.stop()
    assert code == 0, output[-2000:]
    assert len(results) == 4 and [bool(r["result"]) for r in results] == [True, False, False, False]
    assert results[0]["model_version"] == version
    # the same pre-annotation predict writes for that video
    assert vidclf("predict", *QUIET, "--ckpt_path", ckpt, "--data.predict", video, "--output", tmp_path / "t.json",
                  "--output_format", "labelstudio", "--runtime", "torch", "--data.num_workers", "0") == 0
    expected = json.loads((tmp_path / "t.json").read_text())[0]["predictions"][0]["result"]
    got = results[0]["result"]
    assert [(r["type"], r["value"]) for r in got] == [(r["type"], r["value"]) for r in expected]
    for mine, theirs in zip(got, expected):
        assert mine["score"] == pytest.approx(theirs["score"], abs=1e-4)
    # only Label Studio's host was asked, always with the token; the token is in no output
    assert [path for path, _ in studio.seen] == ["/data/upload/1/rising.mp4", "/data/upload/1/missing.mp4"]
    assert {auth for _, auth in studio.seen} == {f"Token {token}"}
    assert token not in output and "elsewhere.invalid/x.mp4 is not on Label Studio" in output
