"""`vidclf data`: a look at the data before training, from the remembered scan."""

from __future__ import annotations

import shutil

from conftest import read_csv, vidclf


def test_data_lists_classes_durations_formats_bad_files_and_a_planted_duplicate(tiny_data, tmp_path, capsys):
    val = tmp_path / "val"
    shutil.copytree(tiny_data / "val", val)
    planted = next((tiny_data / "train" / "rising").iterdir())
    shutil.copy(planted, val / "rising" / "copied_from_train.mp4")  # the same content, in two splits
    (val / "falling" / "broken.mp4").write_bytes(b"\0" * 5000)
    out = tmp_path / "look"
    assert vidclf("data", "--data.train", tiny_data / "train", "--data.val", val, "--output", out) == 0
    printed = capsys.readouterr().out
    assert "train: 12 samples of 12 videos, 3 classes" in printed
    assert "val: 17 samples of 17 videos, 3 classes" in printed and "1 unreadable" in printed
    assert "codecs: h264 (" in printed and "resolutions: 48x48 (" in printed and "frame rates: 30.0 (" in printed
    summary = {(r["split"], r["class"]): r for r in read_csv(out / "summary.csv")}
    assert summary[("train", "rising")]["samples"] == "4"
    assert abs(float(summary[("train", "rising")]["seconds"]) - 4 * 1.2) < 0.2  # 36 frames at 30 fps each
    duplicates = read_csv(out / "duplicates.csv")
    assert {(d["split"], d["path"]) for d in duplicates} == {("train", str(planted)),
                                                              ("val", str(val / "rising" / "copied_from_train.mp4"))}
    files = {r["path"]: r for r in read_csv(out / "files.csv")}
    assert files[str(val / "falling" / "broken.mp4")]["status"].startswith("unreadable: ")
    assert len(files) == 12 + 17
    assert (out / "class_balance.png").stat().st_size > 10_000


def test_data_builds_no_model(tiny_data, tmp_path, monkeypatch):
    """A look at the videos needs no network: a backbone whose weights are not on this machine (offline,
    its download would fail) is named only for its clip settings, and no model is built."""
    import functools

    import vidclf.models.classifier as classifier

    built, original = [], classifier.VideoClassifier.__init__

    @functools.wraps(original)  # the same signature for the command line
    def counted(self, *args, **kwargs):
        built.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(classifier.VideoClassifier, "__init__", counted)
    assert vidclf("data", "--data.train", tiny_data / "train", "--model.backbone", "x3d_m", "--model.pretrained", "true",
                  "--output", tmp_path / "look") == 0
    assert not built and (tmp_path / "look" / "summary.csv").is_file()
