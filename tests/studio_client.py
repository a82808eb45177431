"""The Label Studio side of tests/test_labelstudio_server.py, with label-studio-sdk as the client.

Runs with the Python of the environment that holds Label Studio (.venv-ls: its pins clash with vidclf's),
one step per call; prints what Label Studio holds afterwards as JSON.

    python studio_client.py URL TOKEN setup CONFIG.xml ROOT TASKS.json
    python studio_client.py URL TOKEN backend PROJECT BACKEND_URL
    python studio_client.py URL TOKEN accept PROJECT EXPORT.json
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from label_studio_sdk.client import LabelStudio


def tasks(client: LabelStudio, project: int) -> list[dict]:
    return [{"id": t.id, "data": t.data, "predictions": [{"model_version": p.model_version, "score": p.score,
                                                           "result": p.result} for p in t.predictions or []]}
            for t in client.tasks.list(project=project, fields="all")]


def setup(client: LabelStudio, config: str, root: str, tasks_file: str) -> dict:
    """A project with `config`, a local-files storage at ROOT/videos, the tasks vidclf wrote imported."""
    project = client.projects.create(title="vidclf round trip", label_config=Path(config).read_text())
    client.import_storage.local.create(project=project.id, path=str(Path(root) / "videos"), use_blob_urls=False)
    client.projects.import_tasks(id=project.id, request=json.loads(Path(tasks_file).read_text()))
    return {"project": project.id, "tasks": tasks(client, project.id)}


def backend(client: LabelStudio, project: int, url: str) -> dict:
    """vidclf serve as the project's ML backend; Label Studio asks it for every task's prediction."""
    ml = client.ml.create(project=project, url=url, title="vidclf")
    before = {t["id"]: len(t["predictions"]) for t in tasks(client, project)}
    client.ml.predict_all_tasks(id=ml.id)
    deadline = time.time() + 120
    while time.time() < deadline:
        now = tasks(client, project)
        if all(len(t["predictions"]) > before[t["id"]] for t in now):
            return {"backend": ml.id, "tasks": now}
        time.sleep(1)
    return {"backend": ml.id, "tasks": tasks(client, project), "timed_out": True}


def accept(client: LabelStudio, project: int, out: str) -> dict:
    """Each task's first prediction accepted as its annotation; the project exported as JSON to OUT."""
    for task in tasks(client, project):
        client.annotations.create(id=task["id"], result=task["predictions"][0]["result"], project=project)
    Path(out).write_bytes(b"".join(client.projects.exports.download_sync(id=project, export_type="JSON")))
    return {"exported": out}


def main() -> None:
    url, token, step, *args = sys.argv[1:]
    client = LabelStudio(base_url=url, api_key=token)
    if step == "setup":
        result = setup(client, *args)
    elif step == "backend":
        result = backend(client, int(args[0]), args[1])
    else:
        result = accept(client, int(args[0]), args[1])
    print(json.dumps(result))


if __name__ == "__main__":
    main()
