"""Where videos come from: class folders, CSV lists, prediction inputs."""

from __future__ import annotations

import pytest

from conftest import QUIET, TINY, read_csv, vidclf, write_csv
from vidclf.data.sources import has_split, labelled_videos, unlabelled_videos
from vidclf.errors import VidclfError


def touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_class_folders_sorted_and_non_videos_ignored(tmp_path):
    touch(tmp_path / "b" / "2.MP4")
    touch(tmp_path / "a" / "1.avi")
    touch(tmp_path / "a" / "notes.txt")
    touch(tmp_path / "a" / ".hidden.mp4")
    listing = labelled_videos(str(tmp_path))
    assert [(p.split("/")[-1], label) for p, label in listing.items] == [("1.avi", "a"), ("2.MP4", "b")]
    assert sorted((p.split("/")[-1], why) for p, why in listing.ignored) == [
        (".hidden.mp4", "hidden file"), ("notes.txt", "not a video file name (.txt)")]


def test_csv_paths_are_relative_to_the_csv(tmp_path):
    listing = write_csv(tmp_path / "list.csv", [{"path": "v/1.mp4", "label": "run", "split": "train"}])
    assert labelled_videos(str(listing)).items == [(str(tmp_path / "v/1.mp4"), "run")]
    assert unlabelled_videos(str(listing)).items == [str(tmp_path / "v/1.mp4")]


def test_predict_accepts_file_and_recursive_folder(tmp_path):
    video = touch(tmp_path / "x" / "y" / "deep.webm")
    touch(tmp_path / "x" / "readme.md")
    assert unlabelled_videos(str(video)).items == [str(video)]
    assert unlabelled_videos(str(tmp_path / "x")).items == [str(video)]


@pytest.mark.parametrize("rows, message", [
    ([{"file": "a.mp4", "label": "x"}], "needs ['path', 'label']"),
    ([{"path": "a.mp4", "label": ""}], "list.csv:2: empty path or label"),
])
def test_bad_csv_names_the_problem(tmp_path, rows, message):
    with pytest.raises(VidclfError, match=message.replace("[", r"\[").replace("]", r"\]")):
        labelled_videos(str(write_csv(tmp_path / "list.csv", rows)))


def test_tsv_jsonl_split_column_and_videos_root(tmp_path):
    (tmp_path / "list.tsv").write_text("path\tlabel\tsplit\na.mp4\tjump\ttrain\nb.mp4\trun\tval\nc.mp4\trun\ttrain\n")
    assert [p.split("/")[-1] for p, _ in labelled_videos(str(tmp_path / "list.tsv"), split="train").items] == [
        "a.mp4", "c.mp4"]
    assert labelled_videos(str(tmp_path / "list.tsv"), split="val", videos_root="/videos").items == [
        ("/videos/b.mp4", "run")]
    (tmp_path / "list.jsonl").write_text('{"path": "x y.mp4", "label": "café"}\n\n{"path": "z.mp4", "label": "b"}\n')
    assert labelled_videos(str(tmp_path / "list.jsonl")).items == [
        (str(tmp_path / "x y.mp4"), "café"), (str(tmp_path / "z.mp4"), "b")]


def test_duplicates_and_leaks_are_refused(tmp_path):
    listing = write_csv(tmp_path / "l.csv", [{"path": "a.mp4", "label": "x"}, {"path": "a.mp4", "label": "y"}])
    with pytest.raises(VidclfError, match="a.mp4 is listed twice; keep one entry per video"):
        labelled_videos(str(listing))
    from vidclf.data.sources.splits import check_disjoint

    with pytest.raises(VidclfError, match="v.mp4 is in both train and val"):
        check_disjoint({"train": ["/d/v.mp4", "/d/w.mp4"], "val": ["/d/v.mp4"]})


def test_val_split_is_stratified_and_seeded():
    from vidclf.data.sources.splits import stratified_split

    items = [(f"{label}{i}.mp4", label) for label, n in (("a", 10), ("b", 5), ("c", 1)) for i in range(n)]
    train, val = stratified_split(items, 0.2, seed=3)
    assert sorted(train + val) == sorted(items)
    assert sorted(label for _, label in val) == ["a", "a", "b"]  # 20% of each class, a singleton stays
    assert stratified_split(items, 0.2, seed=3) == (train, val)
    assert stratified_split(items, 0.2, seed=4) != (train, val)


def test_scan_finds_bad_videos_and_remembers(tmp_path, monkeypatch):
    import numpy as np

    from vidclf.data import scan as scan_module
    from vidclf.synthetic import render_motion, write_video

    good, bad = tmp_path / "good.mp4", tmp_path / "bad.mp4"
    write_video(str(good), render_motion("rising", np.random.default_rng(0), 10, 32))
    bad.write_text("not a video")
    store = tmp_path / "scan.json"
    assert list(scan_module.scan([str(good), str(bad)], store)) == [str(bad)]
    calls = []
    monkeypatch.setattr(scan_module, "probe", lambda p: calls.append(p) or {"error": ""})
    assert list(scan_module.scan([str(good), str(bad)], store)) == [str(bad)]  # remembered
    assert calls == []
    good.write_bytes(good.read_bytes() + b"\0")  # changed size: checked again
    scan_module.scan([str(good)], store)
    assert calls == [str(good)]


def test_a_run_scanning_meanwhile_keeps_its_entries_in_the_shared_store(tmp_path, monkeypatch):
    """Run B finishes its scan while run A is still checking: A's save keeps B's entries (it reads the
    store again under a lock), so neither run checks the other's videos again next time."""
    from vidclf.data import scan as scan_module

    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    a.write_bytes(b"a" * 100)
    b.write_bytes(b"b" * 100)
    store = tmp_path / "scan.json"

    def probe(path):
        if path == str(a):  # run A is checking a.mp4 when run B scans b.mp4 and saves
            scan_module.facts([str(b)], store)
        return {"error": ""}

    monkeypatch.setattr(scan_module, "probe", probe)
    scan_module.facts([str(a)], store)
    checked = []
    monkeypatch.setattr(scan_module, "probe", lambda p: checked.append(p) or {"error": ""})
    scan_module.facts([str(a), str(b)], store)
    assert checked == []


def test_containers_found_by_content_whatever_their_name(tmp_path):
    import numpy as np

    from vidclf.synthetic import render_motion, write_video

    for ext, codec in ((".mp4", "libx264"), (".mkv", "libx264"), (".avi", "mpeg4"), (".ts", "libx264")):
        write_video(str(tmp_path / f"clip{ext}"), render_motion("rising", np.random.default_rng(0), 8, 32), codec=codec)
        (tmp_path / f"clip{ext}").rename(tmp_path / f"renamed{ext}.bin")
    (tmp_path / "notes.bin").write_text("not a video")
    listing = unlabelled_videos(str(tmp_path))
    assert sorted(p.split("/")[-1] for p in listing.items) == [
        "renamed.avi.bin", "renamed.mkv.bin", "renamed.mp4.bin", "renamed.ts.bin"]
    assert [p.split("/")[-1] for p, _ in listing.ignored] == ["notes.bin"]


def test_test_split_is_checked_against_training_videos(tmp_path):
    from vidclf.data.datamodule import VideoDataModule

    rows = [{"path": f"{c}{i}.mp4", "label": c} for c in "ab" for i in range(2)]
    train = write_csv(tmp_path / "train.csv", rows)
    test = write_csv(tmp_path / "test.csv", rows[:1])
    data = VideoDataModule(train=str(train), test=str(test), scan=False, num_workers=0)
    with pytest.raises(VidclfError, match="a0.mp4 is in both test and train"):
        data.setup("test")


def test_data_set_root_with_split_folders_as_kinetics_ships(tiny_data, tmp_path, capsys):
    """ROOT/train/<class>/..., ROOT/validation/<class>/...: --data.train ROOT trains on train/ and
    validates on validation/ without further options; a missing split is named."""
    root = tmp_path / "kinetics"
    root.mkdir()
    (root / "train").symlink_to(tiny_data / "train")
    (root / "validation").symlink_to(tiny_data / "val")
    runs = tmp_path / "runs"
    assert vidclf("fit", *TINY, *QUIET, "--data.train", root, "--trainer.max_epochs", "1",
                  "--trainer.default_root_dir", runs) == 0
    rows = [r for r in read_csv(runs / "version_0/metrics.csv") if r.get("val/acc")]
    assert rows and [(p.split("kinetics/")[1], c) for p, c in labelled_videos(str(root)).items] == [
        (p.split(f"{tiny_data.name}/")[1], c) for p, c in labelled_videos(str(tiny_data / "train")).items]
    assert len(labelled_videos(str(root), split="val").items) == 15  # the validation folder's videos
    assert vidclf("test", *QUIET, "--ckpt_path", runs / "version_0/checkpoints/last.ckpt", "--data.test", root) == 2
    err = capsys.readouterr().err.strip()
    assert "holds split folders ['train', 'validation'] but none for test (test or testing)" in err and "\n" not in err


def test_list_with_split_column_feeds_every_split(tmp_path):
    rows = [{"path": f"{c}{i}.mp4", "label": c, "split": s} for c in "ab" for i, s in enumerate(["train"] * 3 + ["val"])]
    listing = write_csv(tmp_path / "all.csv", rows)
    assert has_split(str(listing), "val") and not has_split(str(listing), "test")
    assert len(labelled_videos(str(listing), split="val").items) == 2
