"""Data sets' own annotation files, each written in the layout the data set ships (copied from its
documentation) over our synthetic videos: recognised, read, trained on and predicted from as they are."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import QUIET, TINY, read_csv, vidclf
from vidclf.data.segments import split
from vidclf.data.sources import labelled_videos, unlabelled_videos
from vidclf.data.sources.formats import recognise
from vidclf.errors import VidclfError
from vidclf.synthetic import MOTIONS, render_long, render_motion, write_video

CLASSES = list(MOTIONS)  # falling, rising, sideways (as class names of every format)


def video(path: Path, motion: str, rng, seconds: float = 1.2, ext_codec=("libx264",)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    codec = "libvpx-vp9" if path.suffix == ".webm" else "mpeg4" if path.suffix == ".avi" else "libx264"
    write_video(str(path), render_motion(motion, rng, round(30 * seconds), 48), codec=codec)
    return path


def write_rows(path: Path, header: list[str], rows: list[list]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def layouts(tmp_path_factory) -> dict:
    """{format: (train file, eval file, videos root, expected training rows)} in each data set's layout."""
    root = tmp_path_factory.mktemp("formats")
    rng = np.random.default_rng(0)
    out = {}

    # UCF101: UCF-101/<Class>/v_<Class>_gGG_cCC.avi; ucfTrainTestlist/classInd.txt, trainlist01.txt, testlist01.txt
    ucf = root / "ucf101"
    names = {m: m.capitalize() for m in CLASSES}
    lists = ucf / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (lists / "classInd.txt").write_text("".join(f"{i} {names[m]}\n" for i, m in enumerate(CLASSES, start=1)))
    train, test = [], []
    for i, m in enumerate(CLASSES, start=1):
        for g in (8, 9, 1):
            rel = f"{names[m]}/v_{names[m]}_g{g:02d}_c01.avi"
            video(ucf / "UCF-101" / rel, m, rng)
            (train if g > 1 else test).append(f"{rel} {i}" if g > 1 else rel)
    (lists / "trainlist01.txt").write_text("\r\n".join(train) + "\r\n")  # the files ship with CRLF
    (lists / "testlist01.txt").write_text("\r\n".join(test) + "\r\n")
    out["ucf101"] = (lists / "trainlist01.txt", lists / "testlist01.txt", ucf / "UCF-101", 6)

    # HMDB51: <class>/<video>.avi; testTrainMulti_7030_splits/<class>_test_split1.txt (1 train, 2 test, 0 unused)
    hmdb = root / "hmdb51"
    splits = hmdb / "testTrainMulti_7030_splits"
    splits.mkdir(parents=True)
    for m in CLASSES:
        lines = []
        for k, role in enumerate((1, 1, 2, 0)):
            name = f"{m}_clip_u_nm_np1_fr_med_{k}.avi"
            video(hmdb / "videos" / m / name, m, rng)
            lines.append(f"{name} {role} ")
        (splits / f"{m}_test_split1.txt").write_text("\n".join(lines) + "\n")
    out["hmdb51"] = (splits, splits, hmdb / "videos", 6)

    # Kinetics: annotations CSV; trimmed <id>_<start:06d>_<end:06d>.mp4 in <split>/<class>/, one untrimmed
    # <id>.mp4 read from time_start to time_end, one row whose video is missing
    kin = root / "kinetics"
    rows = []
    for c, m in enumerate(CLASSES):
        for k, split_name in enumerate(("train", "train", "validate")):
            vid = f"yt{c}{k}abcdEF"[:11]
            folder = "train" if split_name == "train" else "val"
            if c == 0 and k == 0:  # the untrimmed download
                render_long(str(kin / "videos" / "raw" / f"{vid}.mp4"), [m, m], 1.0, rng, size=48)
                rows.append([m, vid, 0, 2, split_name])
                continue
            video(kin / "videos" / folder / m / f"{vid}_{10:06d}_{20:06d}.mp4", m, rng)
            rows.append([m, vid, 10, 20, split_name])
    rows.append([CLASSES[0], "missingXYZ1", 0, 10, "train"])
    annotations = write_rows(kin / "kinetics400" / "train.csv", ["label", "youtube_id", "time_start", "time_end",
                                                                  "split", "is_cc"], [r + [0] for r in rows])
    out["kinetics"] = (annotations, annotations, kin / "videos", 6)

    # Something-Something v2: labels.json, train.json, validation.json; videos <id>.webm
    ss = root / "ssv2"
    templates = {"falling": "Letting [something] fall down", "rising": "Lifting [something] up",
                 "sideways": "Pushing [something] from left to right"}
    labels = {t.replace("[", "").replace("]", ""): str(i) for i, t in enumerate(templates.values())}
    (ss / "annotations").mkdir(parents=True)
    (ss / "annotations" / "labels.json").write_text(json.dumps(labels, indent=1))
    items = {"train": [], "validation": []}
    n = 1000
    for m, template in templates.items():
        for part in ("train", "train", "validation"):
            n += 1
            video(ss / "20bn-something-something-v2" / f"{n}.webm", m, rng)
            items[part].append({"id": str(n), "label": template.replace("[something]", "a pen"), "template": template,
                                "placeholders": ["a pen"]})
    for part, entries in items.items():
        (ss / "annotations" / f"{part}.json").write_text(json.dumps(entries))
    out["ssv2"] = (ss / "annotations" / "train.json", ss / "annotations" / "validation.json",
                   ss / "20bn-something-something-v2", 6)

    # ActivityNet 1.3: database of videos with subset and segment annotations; videos v_<id>.mp4
    anet = root / "activitynet"
    database = {}
    for k, subset in enumerate(("training", "training", "validation")):
        vid = f"AbCdEfGh{k:03d}"
        order = CLASSES[k:] + CLASSES[:k]
        times = render_long(str(anet / "videos" / f"v_{vid}.mp4"), order, 1.5, rng, size=48)
        database[vid] = {"subset": subset, "duration": times[-1][1], "resolution": "48x48",
                         "url": f"https://www.youtube.com/watch?v={vid}",
                         "annotations": [{"segment": list(t), "label": m} for m, t in zip(order, times)]}
    database["NoAnnot0001"] = {"subset": "testing", "duration": 10.0, "url": "", "annotations": []}
    (anet / "activity_net.v1-3.min.json").write_text(json.dumps(
        {"version": "VERSION 1.3", "taxonomy": [], "database": database}))
    out["activitynet"] = (anet / "activity_net.v1-3.min.json", anet / "activity_net.v1-3.min.json", anet / "videos", 6)

    # Charades: Charades_v1_train.csv (id,...,actions "cNNN start end;..."), Charades_v1_classes.txt; <id>.mp4
    ch = root / "charades"
    codes = {m: f"c{i:03d}" for i, m in enumerate(CLASSES)}
    (ch / "annotations").mkdir(parents=True)
    (ch / "annotations" / "Charades_v1_classes.txt").write_text("".join(f"{codes[m]} {m}\n" for m in CLASSES))
    for part, count in (("train", 4), ("test", 2)):
        rows = []
        for k in range(count):
            vid = f"{part[:2].upper()}{k:03d}"
            order = [CLASSES[k % 3], CLASSES[(k + 1) % 3]]
            times = render_long(str(ch / "Charades_v1_480" / f"{vid}.mp4"), order, 1.5, rng, size=48)
            actions = ";".join(f"{codes[m]} {a:.2f} {b:.2f}" for m, (a, b) in zip(order, times))
            rows.append([vid, "HR43", "Kitchen", 6, 7, "Yes", "A person ...", "pen;table", "...", actions, 3.0])
        write_rows(ch / "annotations" / f"Charades_v1_{part}.csv",
                   ["id", "subject", "scene", "quality", "relevance", "verified", "script", "objects", "descriptions",
                    "actions", "length"], rows)
    out["charades"] = (ch / "annotations/Charades_v1_train.csv", ch / "annotations/Charades_v1_test.csv",
                       ch / "Charades_v1_480", 4)
    out["charades_segments"] = (*out["charades"][:3], 8)

    # Label Studio: JSON export of video tasks, files served from local storage (?d=...), 30 fps
    ls = root / "labelstudio"
    tasks = []
    for k in range(3):
        order = CLASSES[k:] + CLASSES[:k]
        times = render_long(str(ls / "media" / "clips" / f"walk {k}.mp4"), order, 1.5, rng, size=48)
        result = [{"id": f"r{k}{j}", "type": "timelinelabels", "from_name": "actions", "to_name": "video",
                   "origin": "manual", "value": {"ranges": [{"start": round(a * 30) + 1, "end": round(b * 30)}],
                                                 "timelinelabels": [m]}}
                  for j, (m, (a, b)) in enumerate(zip(order, times))]
        tasks.append({"id": 10 + k, "data": {"video": f"/data/local-files/?d=clips/walk%20{k}.mp4"},
                      "annotations": [{"id": 100 + k, "completed_by": 1, "was_cancelled": False, "result": result}],
                      "predictions": []})
    (ls / "project-1-at-2026-12-01.json").write_text(json.dumps(tasks))
    out["labelstudio"] = (ls / "project-1-at-2026-12-01.json", ls / "project-1-at-2026-12-01.json", ls / "media", 9)
    return out


FORMATS = ["ucf101", "hmdb51", "kinetics", "ssv2", "activitynet", "charades", "charades_segments", "labelstudio"]


@pytest.mark.parametrize("name", FORMATS)
def test_each_format_is_recognised_and_read(layouts, name):
    train, evaluation, root, count = layouts[name]
    assert recognise(train) == (name if name != "charades_segments" else "charades")
    listing = labelled_videos(str(train), split="train", videos_root=str(root), format=name, multi_label=None)
    assert len(listing.items) == count
    labels = {label for _, labels in listing.items for label in (labels if isinstance(labels, tuple) else [labels])}
    expected = {"falling", "rising", "sideways"}
    if name == "ucf101":
        expected = {c.capitalize() for c in expected}
    elif name == "ssv2":
        expected = {"Letting something fall down", "Lifting something up", "Pushing something from left to right"}
    assert labels == expected
    for path, _ in listing.items:
        assert Path(split(path)[0]).is_file(), path
    to_predict = unlabelled_videos(str(evaluation), str(root))  # the evaluation file, as predict reads it
    assert to_predict.items and all(Path(split(p)[0]).is_file() for p in to_predict.items)
    if name == "kinetics":  # the untrimmed download is read from time_start to time_end; the missing one listed
        assert any(p.endswith("#t=0,2") for p, _ in listing.items)
        assert [p for p, _ in listing.ignored if "missingXYZ1" in p]
    if name in ("activitynet", "charades_segments", "labelstudio"):
        assert all(split(p)[1] is not None for p, _ in listing.items)
    if name == "labelstudio":  # frames 1..45 at 30 fps are 0-1.5 s
        assert sorted(split(p)[1:] for p, _ in listing.items)[:3] == [(0.0, 1.5)] * 3


# One end-to-end run per kind of input the readers give (every reader is checked above, and past the
# reader every format is the same rows): whole videos with the data set's own validation split and a
# missing video (kinetics), a folder of split files with a split number (hmdb51), several labels per
# video (charades), segments of longer videos holding their own validation split (labelstudio).
END_TO_END = ["kinetics", "hmdb51", "charades", "labelstudio"]


@pytest.mark.parametrize("name", END_TO_END)
def test_each_kind_of_format_trains_and_predicts_as_shipped(layouts, name, tmp_path):
    train, evaluation, root, _ = layouts[name]
    runs = tmp_path / "runs"
    args = ["fit", *TINY, *QUIET, "--data.train", train, "--data.videos_root", root, "--trainer.max_epochs", "1",
            "--trainer.limit_train_batches", "2", "--trainer.default_root_dir", runs, "--data.num_clips", "1"]
    if name == "charades_segments":
        args += ["--data.format", name]
    if name == "hmdb51":
        args += ["--data.split", "1"]  # its training rows (1); its test rows (2) serve `test`
    elif name not in ("kinetics", "activitynet", "labelstudio"):  # those two hold their validation split
        args += ["--data.val", evaluation]
    assert vidclf(*args) == 0
    ckpt = runs / "version_0/checkpoints/last.ckpt"
    out = tmp_path / "predictions.csv"
    assert vidclf("predict", "--ckpt_path", ckpt, "--data.predict", evaluation, "--data.videos_root", root,
                  "--output", out) == 0
    rows = read_csv(out)
    assert [r for r in rows if r["status"] == "ok"]
    assert all(r["status"] == "ok" or r["status"].startswith("missing: ") for r in rows)  # Kinetics: one missing


def test_the_format_given_applies_to_predict_inputs_too(layouts, trained, tmp_path):
    _, evaluation, root, _ = layouts["charades"]
    ckpt = trained / "checkpoints" / "best.ckpt"
    rows = {}
    for fmt in ("auto", "charades_segments"):  # recognised: whole videos; given: one row per action
        out = tmp_path / f"{fmt}.csv"
        assert vidclf("predict", *QUIET, "--ckpt_path", ckpt, "--data.predict", evaluation, "--data.videos_root", root,
                      "--data.format", fmt, "--data.num_clips", "1", "--output", out) == 0
        rows[fmt] = read_csv(out)
    assert "start" not in rows["auto"][0] and all(r["status"] == "ok" for r in rows["auto"])
    segments = rows["charades_segments"]
    assert len(segments) > len(rows["auto"]) and all(float(r["end"]) > float(r["start"]) for r in segments)
    assert {r["path"] for r in segments} == {r["path"] for r in rows["auto"]}


def test_hmdb51_held_out_validation_keeps_each_source_film_whole(tmp_path):
    """HMDB51 clips are cut from films and named `<film>_<action>_<tags>_<n>.avi`; its split files have no
    validation split, so --data.val_split holds out whole films (clips of one film in two splits would
    let validation measure memory)."""
    rng = np.random.default_rng(3)
    splits = tmp_path / "testTrainMulti_7030_splits"
    splits.mkdir()
    for m in CLASSES:
        lines = []
        for film in range(4):
            for n in range(3):
                name = f"Film{film}_{m}_u_nm_np1_fr_med_{n}.avi"
                video(tmp_path / "videos" / m / name, m, rng, seconds=0.3)
                lines.append(f"{name} 1 ")
        (splits / f"{m}_test_split1.txt").write_text("\n".join(lines) + "\n")
    assert vidclf("data", "--data.train", splits, "--data.videos_root", tmp_path / "videos", "--data.val_split", "0.5",
                  "--output", tmp_path / "look") == 0
    films = {}
    for row in read_csv(tmp_path / "look" / "files.csv"):
        films.setdefault((Path(row["path"]).parent.name, Path(row["path"]).name.split("_")[0]), set()).add(row["split"])
    assert len(films) == 12 and all(len(splits) == 1 for splits in films.values()), films
    assert {s for splits in films.values() for s in splits} == {"train", "val"}


def test_bad_annotations_are_one_line(layouts, tmp_path):
    lists = layouts["ucf101"][0].parent
    bad = tmp_path / "ucfTrainTestlist"
    bad.mkdir()
    (bad / "classInd.txt").write_text((lists / "classInd.txt").read_text())
    (bad / "trainlist01.txt").write_text("Falling/v_Falling_g08_c01.avi 7\n")
    with pytest.raises(VidclfError, match=r"trainlist01.txt:1: class index 7 is not in .*classInd.txt"):
        labelled_videos(str(bad / "trainlist01.txt"))
    (bad / "testlist01.txt").write_text("Jumping/v_Jumping_g01_c01.avi\n")
    with pytest.raises(VidclfError, match=r"testlist01.txt:1: class 'Jumping' \(the video's folder\) is not in"):
        labelled_videos(str(bad / "testlist01.txt"))
    shape = tmp_path / "anet.json"
    shape.write_text(json.dumps({"version": "1.3", "database": {"abc": ["not", "an", "object"]}}))
    with pytest.raises(VidclfError, match=r"anet.json: not the ActivityNet layout vidclf reads"):
        labelled_videos(str(shape))
    empty = tmp_path / "export.json"
    empty.write_text(json.dumps([{"id": 1, "data": {"image": "/data/upload/1/a.jpg"}, "annotations": []}]))
    with pytest.raises(VidclfError, match=r"export.json: a Label Studio export with no video tasks"):
        labelled_videos(str(empty))
    broken = tmp_path / "train.json"
    broken.write_text('[{"id": "1", "template": "x"')
    with pytest.raises(VidclfError, match=r"train.json: not valid JSON"):
        labelled_videos(str(broken), format="ssv2")


def test_missing_videos_are_reported_and_too_many_stop_the_run(layouts, tmp_path, capsys):
    train, _, root, _ = layouts["kinetics"]
    runs = tmp_path / "runs"
    assert vidclf("fit", *TINY, *QUIET, "--data.train", train, "--data.videos_root", root, "--trainer.max_epochs", "1",
                  "--trainer.limit_train_batches", "1", "--trainer.default_root_dir", runs) == 0
    assert "1 of 7 train videos named in" in capsys.readouterr().out
    report = read_csv(runs / "version_0/data_report.csv")
    assert [r["status"] for r in report if "missingXYZ1" in r["path"]][0].startswith("missing: no missingXYZ1_000000")
    assert vidclf("fit", *TINY, "--data.train", train, "--data.videos_root", tmp_path,
                  "--trainer.default_root_dir", runs) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "none of the 7 videos it names for train is on disk" in err and "--data.videos_root" in err


def test_the_unlabelled_ssv2_test_file_predicts_and_refuses_training(layouts):
    train, _, root, _ = layouts["ssv2"]
    test = train.with_name("test.json")
    test.write_text(json.dumps([{"id": p.stem} for p in sorted(root.glob("*.webm"))[:2]]))
    assert recognise(test) == "ssv2"
    assert unlabelled_videos(str(test), str(root)).items == [str(p) for p in sorted(root.glob("*.webm"))[:2]]
    with pytest.raises(VidclfError, match=r"test.json:item 1: .* has no label; a file without labels can be predicted"):
        labelled_videos(str(test), videos_root=str(root))
