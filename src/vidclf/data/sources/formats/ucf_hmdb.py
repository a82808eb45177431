"""UCF101 and HMDB51 split files.

UCF101 (ucfTrainTestlist/): `classInd.txt` (`1 ApplyEyeMakeup`), `trainlist0N.txt`
(`ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1`: path under UCF-101/ and class index) and
`testlist0N.txt` (path only: the class is its folder). HMDB51 (testTrainMulti_7030_splits/):
`<class>_test_splitN.txt` per class and split N, lines `<video>.avi 1|2|0` (1 train, 2 test,
0 unused), videos under `<videos_root>/<class>/`.
"""

from __future__ import annotations

import re
from pathlib import Path

from vidclf.errors import VidclfError

UCF_LIST = re.compile(r"^(train|test)list0\d\.txt$")
UCF_LINE = re.compile(r"^(\S+/v_\S+\.avi)(?:\s+(\d+))?$")
HMDB_FILE = re.compile(r"^(.+)_test_split(\d)\.txt$")


def looks_like_ucf(path: Path) -> bool:
    with open(path, encoding="utf-8", errors="replace") as f:
        first = f.readline().strip()
    return bool(UCF_LINE.match(first))


def read_ucf101(path: Path, root: Path, split_number: int) -> list[dict]:
    index_file = path.with_name("classInd.txt")
    if not index_file.is_file():
        raise VidclfError(f"{path}: a UCF101 list needs classInd.txt beside it (as ucfTrainTestlist/ ships); "
                          f"put it at {index_file}")
    classes = {}
    for number, line in enumerate(index_file.read_text().splitlines(), start=1):
        if line.strip():
            parts = line.split()
            if len(parts) != 2 or not parts[0].isdigit():
                raise VidclfError(f"{index_file}:{number}: expected `INDEX CLASS`, found {line.strip()!r}")
            classes[int(parts[0])] = parts[1]
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        found = UCF_LINE.match(line.strip())
        if not found:
            raise VidclfError(f"{path}:{number}: expected `Class/v_Class_gNN_cNN.avi [INDEX]`, found {line.strip()!r}")
        video, index = found.groups()
        folder = video.split("/")[0]
        label = classes.get(int(index)) if index else folder
        if label is None:
            raise VidclfError(f"{path}:{number}: class index {index} is not in {index_file}; fix the line or the index")
        if label not in classes.values():
            raise VidclfError(f"{path}:{number}: class {label!r} (the video's folder) is not in {index_file}")
        rows.append({"path": str(root / video), "label": label, "split": None, "line": number})
    return rows


def read_hmdb51(path: Path, root: Path, split_number: int) -> list[dict]:
    files = sorted(path.glob(f"*_test_split{split_number}.txt")) if path.is_dir() else [path]
    if not files:
        raise VidclfError(f"{path}: no HMDB51 split files *_test_split{split_number}.txt here; pass the "
                          f"testTrainMulti_7030_splits folder and --data.split 1, 2 or 3")
    if path.is_dir() and root == path:
        root = path.parent  # the split folder sits beside the class folders of videos by default
    rows = []
    for file in files:
        found = HMDB_FILE.match(file.name)
        if not found:
            raise VidclfError(f"{file}: not an HMDB51 split file name (<class>_test_split<N>.txt)")
        label = found[1]
        for number, line in enumerate(file.read_text().splitlines(), start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise VidclfError(f"{file}:{number}: expected `<video>.avi 0|1|2`, found {line.strip()!r}")
            if parts[1] != "0":  # 0: in neither split
                rows.append({"path": str(root / label / parts[0]), "label": label,
                             "split": "train" if parts[1] == "1" else "test", "line": f"{file.name}:{number}"})
    return rows
