"""Multi-label video classification: lists with several labels per video, BCE, mAP, tuned thresholds,
and the whole workflow (fit, validate, test, predict, export) on a tagged synthetic set."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, f1_score

from conftest import QUIET, REPO, TINY, assert_same_rows, evaluation, predict_rows, read_csv, run_example, vidclf
from tiny_models import tiny_hf
from vidclf.metrics.multilabel import DEFAULT_THRESHOLD, average_precision, evaluate, tune_thresholds
from vidclf.synthetic import TAGS, render_tagged

EMPTY_OK = ["--data.allow_empty_labels", "true"]


def truth(listing: Path) -> dict[str, set[str]]:
    """{video file name: its labels} from a path,labels list."""
    return {Path(r["path"]).name: set(filter(None, r["labels"].split(";"))) for r in read_csv(listing)}


def prob_matrix(rows: list[dict]) -> np.ndarray:
    return np.array([[float(r[f"prob_{tag}"]) for tag in TAGS] for r in rows])


def test_average_precision_matches_sklearn_with_ties_and_absent_classes():
    generator = torch.Generator().manual_seed(0)
    probs = torch.rand(300, 5, generator=generator)
    probs[:, 1] = (probs[:, 1] * 8).round() / 8  # many tied scores
    targets = (torch.rand(300, 5, generator=generator) < 0.3).float()
    targets[:, 3] = 0  # a class with no positives: no AP, left out of the mean
    ap = average_precision(probs, targets)
    for c in (0, 1, 2, 4):
        assert float(ap[c]) == pytest.approx(average_precision_score(targets[:, c], probs[:, c]), abs=1e-12)
    assert torch.isnan(ap[3])
    thresholds = torch.full((5,), 0.5)
    metrics, per_class = evaluate(probs, targets, thresholds)
    assert metrics["mAP"] == pytest.approx(float(ap[[0, 1, 2, 4]].mean()), abs=1e-12)
    predicted = (probs >= 0.5).numpy()
    assert metrics["f1_micro"] == pytest.approx(f1_score(targets, predicted, average="micro"), abs=1e-12)
    assert metrics["f1_macro"] == pytest.approx(
        f1_score(targets[:, [0, 1, 2, 4]], predicted[:, [0, 1, 2, 4]], average="macro"), abs=1e-12)
    assert int(per_class["support"][3]) == 0 and torch.isnan(per_class["recall"][3])


def test_thresholds_maximise_f1_and_need_enough_positives():
    # class 0 separable between 0.3 and 0.4: the threshold falls halfway; class 1 has 3 positives only
    probs = torch.tensor([[0.9, 0.9], [0.8, 0.8], [0.4, 0.7], [0.35, 0.2], [0.3, 0.1], [0.1, 0.1],
                          [0.45, 0.1], [0.5, 0.1]])
    targets = torch.tensor([[1, 1], [1, 1], [1, 1], [1, 0], [0, 0], [0, 0], [1, 0], [1, 0]]).float()
    thresholds = tune_thresholds(probs, targets)
    assert float(thresholds[0]) == pytest.approx(0.325)
    assert float(thresholds[1]) == DEFAULT_THRESHOLD
    metrics, _ = evaluate(probs[:, :1], targets[:, :1], thresholds[:1])
    assert metrics["f1_micro"] == 1.0


def test_all_classes_at_once_equal_sklearn_and_the_per_class_rule(monkeypatch):
    """AP and tuned thresholds computed for every class together (in chunks of classes) equal sklearn's AP
    and the one-class-at-a-time rule, with ties, absent classes and a chunk boundary inside the classes."""
    import vidclf.metrics.multilabel as ml

    monkeypatch.setattr(ml, "CHUNK", 200 * 7)  # 7 classes per chunk: 40 classes cross 5 boundaries
    generator = torch.Generator().manual_seed(1)
    probs = torch.rand(200, 40, generator=generator)
    probs[:, ::3] = (probs[:, ::3] * 6).round() / 6  # many ties
    targets = (torch.rand(200, 40, generator=generator) < 0.2).float()
    targets[:, 5] = 0
    targets[:6, 7], targets[6:, 7] = 1, 0  # few positives on top
    ap, thresholds = ml.average_precision(probs, targets), ml.tune_thresholds(probs, targets)
    for c in range(40):
        positives = float(targets[:, c].sum())
        if positives:
            assert float(ap[c]) == pytest.approx(average_precision_score(targets[:, c], probs[:, c]), abs=1e-12)
        else:
            assert torch.isnan(ap[c])
        expected = DEFAULT_THRESHOLD
        if positives >= ml.MIN_POSITIVES:  # the rule, one class at a time
            s, tps, fps = ml.ranked(probs[:, c], targets[:, c])
            best = int(torch.argmax(2 * tps / (tps + fps + positives)))
            expected = (float(s[best]) + (float(s[best + 1]) if best + 1 < len(s) else 0.0)) / 2
        assert float(thresholds[c]) == pytest.approx(expected, abs=1e-12), c


def test_fit_validate_test_on_a_labels_list(tagged, tagged_run, tmp_path):
    """The labels column makes the run multi-label: BCE, val/mAP monitored, per-class thresholds
    tuned on validation and saved; validate reports AP/precision/recall/F1 per class and PR curves."""
    rows = read_csv(tagged_run / "metrics.csv")
    logged = {k for r in rows for k, v in r.items() if v}
    assert {"val/mAP", "val/f1_micro", "val/f1_macro", "val/loss", "train/mAP"} <= logged
    assert not {k for k in logged if "acc" in k}  # accuracy has no meaning here
    checkpoint = torch.load(tagged_run / "checkpoints/best.ckpt", map_location="cpu", weights_only=True)
    assert checkpoint["hyper_parameters"]["multi_label"] is True
    assert checkpoint["hyper_parameters"]["class_names"] == list(TAGS)
    assert any("'monitor': 'val/mAP'" in key for key in checkpoint["callbacks"])
    thresholds = checkpoint["state_dict"]["thresholds"]
    assert thresholds.shape == (3,) and ((thresholds > 0) & (thresholds < 1)).all()

    assert vidclf("test", *QUIET, "--ckpt_path", tagged_run / "checkpoints/best.ckpt", "--data.test",
                  tagged / "val.csv", "--data.num_workers", "0", "--trainer.default_root_dir", tmp_path) == 0
    run = evaluation(tagged_run, "test")
    assert (run / "pr_curves.png").stat().st_size > 10_000 and not (run / "confusion_matrix.png").exists()
    table = read_csv(run / "per_class.csv")
    assert [r["class"] for r in table] == list(TAGS)
    assert list(table[0]) == ["class", "videos", "ap", "precision", "recall", "f1", "threshold"]
    for row, t in zip(table, thresholds.tolist()):
        assert float(row["threshold"]) == pytest.approx(t, abs=1e-6)
    labels = truth(tagged / "val.csv")
    assert [int(r["videos"]) for r in table] == [sum(tag in v for v in labels.values()) for tag in TAGS]

    # the logged mAP and F1 are sklearn's on the scores predict gives for the same videos
    output = tmp_path / "val.csv"
    assert vidclf("predict", *QUIET, "--ckpt_path", tagged_run / "checkpoints/best.ckpt", "--data.predict",
                  tagged / "val.csv", "--data.num_workers", "0", "--output", output) == 0
    predicted = read_csv(output)
    scores = prob_matrix(predicted)
    y = np.array([[tag in labels[Path(r["path"]).name] for tag in TAGS] for r in predicted], dtype=float)
    test_metrics = [r for r in read_csv(run / "metrics.csv") if r.get("test/mAP")][-1]
    present = y.sum(0) > 0
    reference = np.mean([average_precision_score(y[:, c], scores[:, c]) for c in np.flatnonzero(present)])
    assert float(test_metrics["test/mAP"]) == pytest.approx(reference, abs=1e-6)
    hard = scores >= thresholds.numpy()
    assert float(test_metrics["test/f1_micro"]) == pytest.approx(f1_score(y, hard, average="micro"), abs=1e-6)
    for row, c in zip(table, range(3)):
        assert float(row["ap"]) == pytest.approx(average_precision_score(y[:, c], scores[:, c]), abs=1e-4)


def test_predict_rows_give_labels_over_thresholds_then_every_probability(tagged, tagged_run, tmp_path):
    ckpt = tagged_run / "checkpoints/best.ckpt"
    thresholds = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]["thresholds"].tolist()
    videos = tagged / "videos"
    assert vidclf("predict", *QUIET, "--ckpt_path", ckpt, "--data.predict", videos, "--output", tmp_path / "p.csv",
                  "--timeline", tmp_path / "t.csv", "--data.num_workers", "0", "--runtime", "openvino") == 0
    rows = read_csv(tmp_path / "p.csv")
    assert list(rows[0]) == ["path", "labels", "status", "warning", *(f"prob_{t}" for t in TAGS)]
    assert len(rows) == 39 and {r["status"] for r in rows} == {"ok"}
    for row in rows:
        above = {t for t, threshold in zip(TAGS, thresholds) if float(row[f"prob_{t}"]) >= threshold}
        assert set(filter(None, row["labels"].split(";"))) == above
    windows = read_csv(tmp_path / "t.csv")
    assert list(windows[0])[:4] == ["path", "start", "end", "labels"] and len(windows) >= len(rows)
    # those rows came from OpenVINO; torch gives the same labels, windows and probabilities
    assert_same_rows(rows, predict_rows(ckpt, videos, tmp_path / "torch.csv", "--runtime", "torch", "--timeline",
                                        tmp_path / "torch_t.csv"))
    assert_same_rows(windows, read_csv(tmp_path / "torch_t.csv"))

    # one threshold forced for every class; top-k columns on request; JSON Lines gives an array
    assert vidclf("predict", *QUIET, "--ckpt_path", ckpt, "--data.predict", videos, "--output", tmp_path / "p.jsonl",
                  "--model.threshold", "0.5", "--top_k", "2", "--data.num_workers", "0") == 0
    lines = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert list(lines[0]) == ["path", "labels", "status", "warning", "top1_label", "top1_prob", "top2_label",
                              "top2_prob"]
    for line in lines:
        assert isinstance(line["labels"], list)
        assert all(line["top1_prob"] >= line["top2_prob"] for line in lines)
        assert (line["top1_label"] in line["labels"]) == (line["top1_prob"] >= 0.5)


def test_export_sidecar_carries_thresholds_and_the_onnx_example_agrees(tagged, tagged_run, tmp_path):
    ckpt = tagged_run / "checkpoints/best.ckpt"
    video = tagged / "videos" / "val_003.mp4"
    model = tmp_path / "model.onnx"
    assert vidclf("export", "--ckpt_path", ckpt, "--output", model, "--data.predict", video) == 0
    info = json.loads((tmp_path / "model.onnx.json").read_text())
    thresholds = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]["thresholds"].tolist()
    assert info["output"]["multi_label"] is True and "sigmoid" in info["output"]["activation"]
    assert list(info["output"]["thresholds"].values()) == pytest.approx(thresholds, abs=1e-6)
    assert info["check"]["max_abs_diff"] < 1e-4

    assert vidclf("predict", *QUIET, "--ckpt_path", ckpt, "--data.predict", video, "--output", tmp_path / "p.csv",
                  "--data.num_workers", "0") == 0
    row = read_csv(tmp_path / "p.csv")[0]
    printed = [line.split("\t") for line in run_example("predict_onnx.py", model, video)]
    assert {name: float(p) for name, p, _ in printed} == pytest.approx(
        {t: float(row[f"prob_{t}"]) for t in TAGS}, abs=1e-4)
    assert {name for name, _, state in printed if state == "present"} == set(filter(None, row["labels"].split(";")))
    # the export alone (--model_file: classes, thresholds, views from its sidecar) gives the checkpoint's rows
    videos = tagged / "videos"
    assert_same_rows(predict_rows(None, videos, tmp_path / "file.csv", "--model_file", model),
                     predict_rows(ckpt, videos, tmp_path / "ckpt.csv", "--runtime", "torch"))


def test_balanced_positive_weights_sampler_and_class_folders_as_multi_label(tagged, tiny_data, tmp_path, capsys):
    assert vidclf("fit", *TINY, *QUIET, *EMPTY_OK, "--data.train", tagged / "train.csv", "--data.val_split", "0.25",
                  "--model.class_weights", "balanced", "--data.sampler", "balanced", "--trainer.max_epochs", "1",
                  "--trainer.default_root_dir", tmp_path) == 0
    assert "balanced positive weights from" in capsys.readouterr().out
    # one label per video from class folders, treated as tags when asked
    assert vidclf("fit", *TINY, *QUIET, "--data.train", tiny_data / "train", "--data.val", tiny_data / "val",
                  "--data.multi_label", "true", "--trainer.max_epochs", "1", "--trainer.default_root_dir", tmp_path) == 0
    checkpoint = torch.load(tmp_path / "version_1/checkpoints/last.ckpt", map_location="cpu", weights_only=True)
    assert checkpoint["hyper_parameters"]["multi_label"] is True
    assert checkpoint["hyper_parameters"]["class_names"] == ["falling", "rising", "sideways"]


@pytest.mark.slow
def test_served_answers_equal_multi_label_predict_rows(tagged, tagged_run, tmp_path):
    from test_serve import Server, post

    ckpt = tagged_run / "checkpoints/best.ckpt"
    videos = sorted((tagged / "videos").glob("val_00*.mp4"))[:4]
    assert vidclf("predict", *QUIET, "--ckpt_path", ckpt, "--data.predict", "[" + ", ".join(map(str, videos)) + "]",
                  "--output", tmp_path / "p.csv", "--data.num_workers", "0") == 0
    rows = {Path(r["path"]).name: r for r in read_csv(tmp_path / "p.csv")}
    server = Server(ckpt, tmp_path / "serve", "--data.num_workers", "0")
    try:
        for video in videos:
            status, answer = post(server.url, video)
            assert status == 200, answer
            assert answer["labels"] == [x for x in rows[video.name]["labels"].split(";") if x]
            assert [answer[f"prob_{t}"] for t in TAGS] == pytest.approx(
                [float(rows[video.name][f"prob_{t}"]) for t in TAGS], abs=1e-5)
    finally:
        assert server.stop()[0] == 0


@pytest.mark.parametrize("family", ["hf", "timm"])
def test_other_backbone_families_train_predict_and_export_multi_label(family, tagged, tmp_path):
    if family == "hf":
        model = ["--model.backbone", f"hf:{tiny_hf('videomae', tmp_path / 'videomae')}"]
    else:
        model = ["--model.backbone", "timm:test_convnext", "--data.frames", "4", "--data.crop", "64",
                 "--data.resize", "64"]
    data = ["--data.batch_size", "4", "--data.num_workers", "0", "--data.num_clips", "2"]
    assert vidclf("fit", *model, *data, *QUIET, *EMPTY_OK, "--data.train", tagged / "train.csv", "--data.val",
                  tagged / "val.csv", "--trainer.max_epochs", "1", "--trainer.default_root_dir", tmp_path) == 0
    ckpt = tmp_path / "version_0/checkpoints/last.ckpt"
    assert vidclf("predict", *QUIET, "--ckpt_path", ckpt, "--data.predict", tagged / "videos" / "val_000.mp4",
                  "--output", tmp_path / "p.csv") == 0
    assert list(read_csv(tmp_path / "p.csv")[0])[:2] == ["path", "labels"]
    assert vidclf("export", "--ckpt_path", ckpt, "--output", tmp_path / "m.onnx") == 0
    assert json.loads((tmp_path / "m.onnx.json").read_text())["output"]["multi_label"] is True


def test_threshold_of_a_single_label_model_is_refused(trained, tiny_data, tmp_path, capsys):
    assert vidclf("predict", "--ckpt_path", trained / "checkpoints/best.ckpt", "--data.predict", tiny_data / "val",
                  "--model.threshold", "0.3", "--output", tmp_path / "p.csv") == 2
    assert "--model.threshold 0.3: only multi-label models have class thresholds" in capsys.readouterr().err


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize("name, text, message", [
    ("empty.csv", "path,labels\na.mp4,rising\nb.mp4,\n",
     "empty.csv:3: no label for {root}/b.mp4; give at least one, or pass --data.allow_empty_labels true"),
    ("clash.csv", "path,labels\na.mp4,rising;sideways\nb.mp4,rising|blinking\n",
     "clash.csv:3: labels separated by '|' here but by ';' on line 2; separate labels with one of ; or |"),
    ("both.csv", "path,label,labels\na.mp4,rising,rising\n", "both.csv: list has both label and labels columns"),
    ("array.jsonl", '{"path": "a.mp4", "labels": ["rising", 3]}\n',
     'array.jsonl:1: labels ["rising", 3] must be an array of class names'),
])
def test_bad_label_lists_get_one_line(tagged, tmp_path, capsys, name, text, message):
    listing = write(tmp_path / name, text)
    assert vidclf("fit", *TINY, "--data.train", listing, "--trainer.default_root_dir", tmp_path) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message.format(root=tmp_path) in err, err


def test_unknown_labels_in_val_and_a_labels_column_in_a_single_label_run(tagged, tiny_data, tmp_path, capsys):
    val = write(tmp_path / "val.csv", f"path,labels\n{tagged}/videos/val_000.mp4,rising;jumping\n")
    assert vidclf("fit", *TINY, *EMPTY_OK, "--data.train", tagged / "train.csv", "--data.val", val,
                  "--trainer.default_root_dir", tmp_path) == 2
    err = capsys.readouterr().err
    assert "--data.val: class(es) ['jumping'] are not among the trained classes" in err
    assert vidclf("fit", *TINY, "--data.train", tiny_data / "train", "--data.val", tagged / "val.csv",
                  "--trainer.default_root_dir", tmp_path) == 2
    err = capsys.readouterr().err
    assert "val.csv: a labels column (several labels per video) in a single-label run" in err


def test_jsonl_arrays_and_pipes_read_as_label_sets(tmp_path):
    from vidclf.data.sources import labelled_videos

    write(tmp_path / "l.jsonl", '{"path": "a.mp4", "labels": ["b", "a"]}\n{"path": "b.mp4", "labels": []}\n')
    items = labelled_videos(str(tmp_path / "l.jsonl"), allow_empty=True, multi_label=None).items
    assert items == [(str(tmp_path / "a.mp4"), ("a", "b")), (str(tmp_path / "b.mp4"), ())]
    write(tmp_path / "l.tsv", "path\tlabels\na.mp4\t dog | cat |\n")
    assert labelled_videos(str(tmp_path / "l.tsv"), multi_label=None).items == [(str(tmp_path / "a.mp4"),
                                                                                 ("cat", "dog"))]


@pytest.mark.slow
def test_multi_label_demo_learns_the_tags(tmp_path):
    """configs/demo_multilabel.yaml on its rendered set (120 training videos, 40 validation, 3 tags)
    learns well above chance: mAP of random scores is about the tag frequency, 0.5."""
    data = tmp_path / "data/tags"
    render_tagged(str(data), "train", 120, seed=0)
    render_tagged(str(data), "val", 40, seed=1)
    config = REPO / "configs/demo_multilabel.yaml"
    done = subprocess.run([sys.executable, "-m", "vidclf", "fit", "--config", str(config), *QUIET], cwd=tmp_path,
                          capture_output=True, text=True, timeout=1200, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [r for r in read_csv(tmp_path / "runs/tags/version_0/metrics.csv") if r.get("val/mAP")]
    best = max(float(r["val/mAP"]) for r in rows)
    print(f"best val/mAP {best:.3f} after {len(rows)} epochs")
    assert best > 0.75


@pytest.mark.slow
def test_ddp_multi_label_metrics_equal_one_process(tagged, tmp_path):
    """mAP and F1 gather every process's scores: two processes' validation equals one process's."""
    args = ["fit", *TINY, *QUIET, *EMPTY_OK, "--data.batch_size", "2", "--data.train", tagged / "train.csv",
            "--data.val", tagged / "val.csv", "--trainer.max_epochs", "1", "--trainer.strategy", "ddp",
            "--trainer.devices", "2", "--trainer.accelerator", "cpu", "--trainer.default_root_dir", tmp_path]
    done = subprocess.run([sys.executable, "-m", "vidclf", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"}, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    fitted = [r for r in read_csv(tmp_path / "version_0/metrics.csv") if r.get("val/mAP")][-1]
    assert vidclf("validate", *QUIET, "--ckpt_path", tmp_path / "version_0/checkpoints/last.ckpt", "--data.val",
                  tagged / "val.csv", "--data.num_workers", "0", "--trainer.default_root_dir", tmp_path) == 0
    alone = [r for r in read_csv(evaluation(tmp_path / "version_0") / "metrics.csv") if r.get("val/mAP")][-1]
    for key in ("val/mAP", "val/f1_micro", "val/f1_macro", "val/loss"):
        assert float(alone[key]) == pytest.approx(float(fitted[key]), abs=1e-5), key
