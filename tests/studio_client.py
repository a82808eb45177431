"""The Label Studio side of tests/test_labelstudio_server.py, with label-studio-sdk as the client.

Runs with the Python of the environment that holds Label Studio (.venv-ls: its pins clash with vidclf's),
one step per call; prints what Label Studio holds afterwards as JSON.

    python studio_client.py URL TOKEN setup CONFIG.xml ROOT TASKS.json
    python studio_client.py URL TOKEN backend PROJECT BACKEND_URL
    python studio_client.py URL TOKEN correct PROJECT LABELS.json EXPORT.json
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
    # the Data Manager's "Retrieve predictions" (open source Label Studio: the backend's /predict per batch)
    client.actions.create(id="retrieve_tasks_predictions", project=project,
                          selected_items={"all": True, "excluded": []})
    deadline = time.time() + 120
    while time.time() < deadline:
        now = tasks(client, project)
        if all(len(t["predictions"]) > before[t["id"]] for t in now):
            return {"backend": ml.id, "tasks": now}
        time.sleep(1)
    return {"backend": ml.id, "tasks": tasks(client, project), "timed_out": True}


def correct(client: LabelStudio, project: int, labels: str, out: str) -> dict:
    """Each task annotated as a person correcting its pre-annotation would (its `choices` result set to the
    label LABELS gives its video); the project exported as JSON to OUT."""
    truth = json.loads(Path(labels).read_text())
    for task in tasks(client, project):
        result = [r for r in task["predictions"][0]["result"] if r["type"] == "choices"]
        result = [{**r, "value": {"choices": [truth[task["data"]["video"]]]}} for r in result]
        client.annotations.create(id=task["id"], result=result, project=project)
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
        result = correct(client, int(args[0]), args[1], args[2])
    print(json.dumps(result))


if __name__ == "__main__":
    main()
