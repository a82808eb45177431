"""Something-Something v2: `labels.json` ({"Holding something": "0", ...}) beside `train.json` /
`validation.json` ([{"id": "78687", "template": "Holding [something] next to [something]", ...}]);
the label is the template without brackets; videos `<videos_root>/<id>.webm`. `test.json` ([{"id": ...}])
lists videos without labels: rows with label None, for predict."""

from __future__ import annotations

from pathlib import Path

from vidclf.data.sources.formats.common import load_json, shape_error
from vidclf.errors import VidclfError


def labels_beside(path: Path) -> bool:
    return path.with_name("labels.json").is_file()


def read(path: Path, root: Path, split_number: int) -> list[dict]:
    data = load_json(path)
    labels_file = path.with_name("labels.json")
    known = load_json(labels_file) if labels_file.is_file() else None
    if not isinstance(data, list) or not all(isinstance(d, dict) and "id" in d for d in data):
        raise shape_error(path, "Something-Something v2", "a JSON array of objects with id and template")
    rows = []
    for number, item in enumerate(data, start=1):
        if "template" not in item:  # the test set's file: videos without labels, for predict
            rows.append({"path": str(root / f"{item['id']}.webm"), "label": None, "split": None,
                         "line": f"item {number}"})
            continue
        label = item["template"].replace("[", "").replace("]", "")
        if known is not None and label not in known:
            raise VidclfError(f"{path}: item {number} (id {item['id']}): label {label!r} is not in {labels_file}")
        rows.append({"path": str(root / f"{item['id']}.webm"), "label": label, "split": None, "line": f"item {number}"})
    return rows
