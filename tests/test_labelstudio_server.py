"""The Label Studio loop against a real Label Studio (its own package, SQLite, on 127.0.0.1), with
label-studio-sdk as the client: the tasks vidclf writes import with every prediction as written, `vidclf
serve` answers as the project's ML backend through Label Studio, and the project's export trains.

Label Studio's pins clash with vidclf's, so it lives in an environment of its own (`make studio` makes
.venv-ls; VIDCLF_LABEL_STUDIO_VENV names another); tests/studio_client.py runs there."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import torch

from conftest import QUIET, REPO, TINY, free_port, vidclf
from vidclf.data.sources import labelled_videos

VENV = Path(os.environ.get("VIDCLF_LABEL_STUDIO_VENV", REPO / ".venv-ls"))
TOKEN = "0123456789abcdef0123456789abcdef01234567"  # the test user's API token (a legacy token, set at start)


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    """(URL, ROOT): a Label Studio serving local files under ROOT, stopped after the module."""
    if not (VENV / "bin" / "label-studio").exists():
        if os.environ.get("VIDCLF_REQUIRE_STUDIO"):
            pytest.fail(f"no Label Studio in {VENV}; make studio installs it")
        pytest.skip(f"no Label Studio in {VENV} (make studio)")
    root, data = tmp_path_factory.mktemp("studio_root"), tmp_path_factory.mktemp("studio_data")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "HOST"}  # (Label Studio reads HOST as its public URL)
    env.update(LABEL_STUDIO_USERNAME="vidclf@example.com", LABEL_STUDIO_PASSWORD="vidclf-test-password",
               LABEL_STUDIO_USER_TOKEN=TOKEN, LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN="true",
               LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED="true", LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=str(root),
               SENTRY_DSN="", FRONTEND_SENTRY_DSN="",
               # the ML backend listens on 127.0.0.1 too (tests listen on loopback only)
               SSRF_PROTECTION_ENABLED="false", ML_BLOCK_LOCAL_IP="false")
    server = subprocess.Popen([str(VENV / "bin" / "label-studio"), "start", "--no-browser", "--internal-host",
                               "127.0.0.1", "--port", str(port), "--data-dir", str(data)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 300  # the first start migrates its database
    while True:
        try:
            if urllib.request.urlopen(f"{url}/health", timeout=2).status == 200:
                break
        except OSError:
            assert time.time() < deadline and server.poll() is None, "Label Studio did not start"
            time.sleep(1)
    yield url, root
    server.terminate()
    server.wait(30)


def client(url: str, *step: str) -> dict:
    done = subprocess.run([str(VENV / "bin" / "python"), str(REPO / "tests" / "studio_client.py"), url, TOKEN,
                           *map(str, step)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.mark.slow
def test_tasks_backend_and_export_through_a_real_label_studio(studio, trained, tiny_data, tmp_path, capsys,
                                                              tmp_path_factory, monkeypatch):
    from test_serve import Server

    url, root = studio
    for motion in ("falling", "rising", "sideways"):
        (root / "videos").mkdir(exist_ok=True)
        for ext in (".mp4", ".mkv"):
            shutil.copy(tiny_data / "val" / motion / f"{motion}{ext}", root / "videos" / f"{motion}{ext}")
    ckpt = trained / "checkpoints" / "best.ckpt"
    capsys.readouterr()
    assert vidclf("predict", *QUIET, "--ckpt_path", ckpt, "--data.predict", root / "videos", "--output",
                  tmp_path / "tasks.json", "--output_format", "labelstudio", "--labelstudio_root", root,
                  "--window", "0.4", "--runtime", "torch", "--data.num_workers", "0") == 0
    said = capsys.readouterr().err
    (tmp_path / "config.xml").write_text(said[said.index("<View>"):said.index("</View>") + 7])
    written = {t["data"]["video"]: t["predictions"] for t in json.loads((tmp_path / "tasks.json").read_text())}

    # the tasks and their predictions, imported and read back through the API
    project = client(url, "setup", tmp_path / "config.xml", root, tmp_path / "tasks.json")
    assert len(project["tasks"]) == 6
    for task in project["tasks"]:
        (ours,) = written[task["data"]["video"]]
        (theirs,) = task["predictions"]
        assert theirs["result"] == ours["result"] and theirs["model_version"] == ours["model_version"]
        assert theirs["score"] == pytest.approx(ours["score"])

    # vidclf serve as the project's ML backend: Label Studio sends the tasks, fetches nothing itself
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", TOKEN)
    server = Server(ckpt, tmp_path_factory.mktemp("ls"), "--labelstudio_url", url, "--data.num_workers", "0",
                    "--runtime", "torch")
    try:
        asked = client(url, "backend", project["project"], f"{server.url}/labelstudio")
    finally:
        code, output = server.stop()
    assert code == 0 and TOKEN not in output, output[-2000:]
    assert not asked.get("timed_out"), asked
    for task in asked["tasks"]:
        (ours,) = written[task["data"]["video"]]
        backend = task["predictions"][-1]
        assert backend["model_version"].startswith("vidclf x3d_xs ")  # the server's, not the imported one's
        choice = [r["value"] for r in backend["result"] if r["type"] == "choices"]
        assert choice == [r["value"] for r in ours["result"] if r["type"] == "choices"]  # (windows of the clip's length)

    # a person corrects the pre-annotations (the true motion of each video); the export trains
    truth = {video: Path(video).stem for video in written}
    (tmp_path / "labels.json").write_text(json.dumps(truth))
    client(url, "correct", project["project"], tmp_path / "labels.json", tmp_path / "export.json")
    exported = json.loads((tmp_path / "export.json").read_text())
    assert len(exported) == 6 and all(t["annotations"] for t in exported)
    assert vidclf("fit", *TINY, *QUIET, "--data.train", tmp_path / "export.json", "--data.val", "null",
                  "--data.videos_root", root, "--trainer.max_epochs", "1", "--trainer.default_root_dir",
                  tmp_path / "runs") == 0
    read = labelled_videos(str(tmp_path / "export.json"), videos_root=str(root), format="labelstudio").items
    assert {Path(p).name: label for p, label in read} == {Path(video).name: label for video, label in truth.items()}
    trained_on = torch.load(tmp_path / "runs/version_0/checkpoints/last.ckpt", map_location="cpu", weights_only=False)
    assert trained_on["hyper_parameters"]["class_names"] == ["falling", "rising", "sideways"]
