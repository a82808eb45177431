"""The real CLI, in-process: help, config handling, fit -> validate/test/predict/export, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
import yaml

from conftest import QUIET, TINY, evaluation, read_csv, run_example, vidclf, write_csv

REPO = Path(__file__).resolve().parents[1]


def test_help_documents_every_option_group(capsys):
    assert vidclf("fit", "--help") == 0
    out = " ".join(capsys.readouterr().out.split())
    for option in ("--model.backbone", "--model.pretrained", "--data.train", "--data.val", "--data.num_clips",
                   "--trainer.max_epochs", "--optimizer", "--lr_scheduler", "--checkpoint.monitor"):
        assert option in out, option
    assert "(type: str, default: x3d_xs)" in out and "one of: x3d_xs, x3d_s, x3d_m" in out
    assert vidclf("--help") == 0
    top = capsys.readouterr().out
    assert all(cmd in top for cmd in ("fit", "validate", "test", "predict", "export")), top


def test_print_config_resolves_shell_overrides_and_links(capsys):
    code = vidclf("fit", "--config", REPO / "configs/demo.yaml", "--model.backbone", "x3d_s",
                  "--trainer.max_epochs", "3", "--print_config")
    assert code == 0
    config = yaml.safe_load(capsys.readouterr().out)
    assert config["model"]["backbone"] == "x3d_s"
    assert config["trainer"]["max_epochs"] == 3
    assert config["data"]["crop"] == 64  # from the file


def test_configs_compose_and_interpolate(tmp_path, capsys):
    (tmp_path / "a.yaml").write_text("data:\n  crop: 48\n  frames: 6\ntrainer:\n  max_epochs: 7\n")
    (tmp_path / "b.yaml").write_text("data:\n  resize: ${data.crop}\n  frames: 10\n")
    code = vidclf("fit", "--config", tmp_path / "a.yaml", "--config", tmp_path / "b.yaml", "--print_config")
    assert code == 0
    config = yaml.safe_load(capsys.readouterr().out)
    assert config["data"]["resize"] == 48  # ${data.crop} resolved across files
    assert config["data"]["frames"] == 10  # the later file wins
    assert config["trainer"]["max_epochs"] == 7


def test_fit_writes_checkpoints_and_logs(trained):
    assert (trained / "checkpoints" / "best.ckpt").is_file()
    assert (trained / "checkpoints" / "last.ckpt").is_file()
    assert list(trained.glob("events.out.tfevents.*"))
    metrics = read_csv(trained / "metrics.csv")
    assert {"train/loss_epoch", "train/acc", "val/loss", "val/acc", "val/acc_clip"} <= set(metrics[0])
    checkpoint = torch.load(trained / "checkpoints" / "best.ckpt", weights_only=True)
    assert checkpoint["hyper_parameters"]["class_names"] == ["falling", "rising", "sideways"]


def test_checkpoint_only_validate_and_test(trained, tiny_data, tmp_path, capsys):
    best = trained / "checkpoints" / "best.ckpt"
    assert vidclf("validate", *QUIET, "--ckpt_path", best, "--data.val", tiny_data / "val",
                  "--trainer.default_root_dir", tmp_path) == 0
    out = capsys.readouterr().out
    assert "val/acc" in out and "val/f1_macro" in out and "val/acc_mean_class" in out
    val_acc = float(read_csv(evaluation(trained) / "metrics.csv")[-1]["val/acc"])
    assert "val/acc_top5" not in out  # only with more than 5 classes
    per_class = read_csv(evaluation(trained) / "per_class.csv")
    assert [(r["class"], r["videos"]) for r in per_class] == [("falling", "5"), ("rising", "5"), ("sideways", "5")]
    assert "falling" in out.split("validate results in")[0]  # the console table
    assert (evaluation(trained) / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = [{"path": str(p.relative_to(tiny_data)), "label": p.parent.name}
            for p in sorted((tiny_data / "val").rglob("*.*"))]
    listing = write_csv(tiny_data / "test.csv", rows)
    assert vidclf("test", *QUIET, "--ckpt_path", best, "--data.test", listing,
                  "--trainer.default_root_dir", tmp_path) == 0
    assert "test/acc" in capsys.readouterr().out
    metrics = read_csv(evaluation(trained, "test") / "metrics.csv")
    # the same videos with the same views, listed instead of in class folders: the same accuracy
    assert float(metrics[-1]["test/acc"]) == pytest.approx(val_acc, abs=1e-6)


def test_predict_rows_for_every_video_deterministic(trained, tiny_data, tmp_path, capsys):
    best = trained / "checkpoints" / "best.ckpt"
    outputs = []
    for name in ("a.csv", "b.csv"):
        assert vidclf("predict", *QUIET, "--ckpt_path", best, "--data.predict", tiny_data / "val",
                      "--output", tmp_path / name) == 0
        outputs.append((tmp_path / name).read_text())
    assert outputs[0] == outputs[1]  # several fixed clips per video: same answer every time
    assert str(tmp_path / "a.csv") in capsys.readouterr().out
    rows = read_csv(tmp_path / "a.csv")
    assert len(rows) == 15 and all(r["status"] == "ok" for r in rows)
    assert {r["label"] for r in rows} <= {"falling", "rising", "sideways"}
    for row in rows:  # 3 classes: the top-3 probabilities are the whole distribution
        assert row["label"] == row["top1_label"]
        assert sum(float(row[f"top{k}_prob"]) for k in (1, 2, 3)) == pytest.approx(1.0, abs=1e-4)


def test_predict_single_file_and_jsonl(trained, tiny_data, tmp_path):
    video = tiny_data / "val" / "rising" / "rising.webm"
    out = tmp_path / "one.jsonl"
    assert vidclf("predict", *QUIET, "--ckpt_path", trained / "checkpoints" / "best.ckpt",
                  "--data.predict", video, "--output", out, "--top_k", "2") == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["path"] == str(video) and "top3_label" not in rows[0]


def test_predict_reports_undecodable_files(trained, tiny_data, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "good.mp4").write_bytes((tiny_data / "val" / "rising" / "rising.mp4").read_bytes())
    (folder / "text.mp4").write_text("this is not a video\n")
    (folder / "empty.avi").write_bytes(b"")
    out = tmp_path / "preds.csv"
    assert vidclf("predict", *QUIET, "--ckpt_path", trained / "checkpoints" / "best.ckpt",
                  "--data.predict", folder, "--output", out) == 0
    status = {Path(r["path"]).name: r["status"] for r in read_csv(out)}
    assert status["good.mp4"] == "ok"
    assert status["text.mp4"].startswith("error: ") and status["empty.avi"].startswith("error: ")


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_matches_checkpoint(trained, tiny_data, tmp_path, fmt, capsys):
    out = tmp_path / ("model.onnx" if fmt == "onnx" else "model.pt")
    assert vidclf("export", "--ckpt_path", trained / "checkpoints" / "best.ckpt", "--format", fmt,
                  "--output", out, "--data.predict", tiny_data / "val" / "falling" / "falling.mkv") == 0
    assert "max abs difference" in capsys.readouterr().out
    info = json.loads(Path(f"{out}.json").read_text())
    assert info["class_names"] == ["falling", "rising", "sideways"]
    assert info["input"]["frames"] == 4 and info["input"]["crop"] == 32 and info["input"]["mean"] == [0.45] * 3
    assert info["check"]["max_abs_diff"] < 1e-3
    x = np.random.default_rng(0).standard_normal((3, 3, 4, 32, 32)).astype(np.float32)
    if fmt == "onnx":  # runs without vidclf, batch size free
        logits = onnxruntime.InferenceSession(str(out)).run(None, {"video": x})[0]
    else:
        logits = torch.jit.load(str(out))(torch.from_numpy(x)).detach().numpy()
    assert logits.shape == (3, 3)


def test_fit_skips_and_reports_undecodable_video(tiny_data, tmp_path, capsys):
    train = tmp_path / "train"
    for cls in ("falling", "rising"):
        (train / cls).mkdir(parents=True)
        for src in sorted((tiny_data / "train" / cls).glob("*.mp4"))[:2]:
            (train / cls / src.name).write_bytes(src.read_bytes())
    (train / "rising" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100)
    for scan, said in (("true", "1 of 5 train videos cannot be decoded and are skipped"),  # checked up front
                       ("false", "skipped 1 video(s) that could not be decoded")):  # met while training
        root = tmp_path / f"runs_{scan}"
        assert vidclf("fit", *TINY, *QUIET, "--data.train", train, "--data.scan", scan, "--trainer.max_epochs", "1",
                      "--trainer.default_root_dir", root) == 0
        report = read_csv(root / "version_0" / "data_report.csv")
        assert [(Path(r["path"]).name, r["split"]) for r in report] == [("broken.mp4", "train")]
        assert report[0]["status"].startswith("skipped: ")
        assert said in capsys.readouterr().out


def test_checkpoint_only_never_downloads(tiny_data, tmp_path):
    """A model fine-tuned from pretrained weights predicts from its checkpoint after the weights are gone."""
    from pytorchvideo.models.hub import x3d_xs

    weights = tmp_path / "X3D_XS.pyth"
    torch.save({"model_state": x3d_xs().state_dict()}, weights)
    assert vidclf("fit", *TINY, *QUIET, "--data.train", tiny_data / "train", "--model.pretrained", weights,
                  "--trainer.max_steps", "1", "--trainer.default_root_dir", tmp_path / "runs") == 0
    weights.unlink()
    assert vidclf("predict", *QUIET, "--ckpt_path", tmp_path / "runs/version_0/checkpoints/last.ckpt",
                  "--data.predict", tiny_data / "val" / "rising", "--output", tmp_path / "p.csv") == 0
    assert len(read_csv(tmp_path / "p.csv")) == 5


@pytest.mark.parametrize("args, expected", [
    (["fit", "--data.train", "/no/such/dir"], "/no/such/dir: no such file or folder"),
    (["fit", "--model.backbone", "x3d_xxs", "--data.train", "TRAIN"], "unknown backbone 'x3d_xxs'; choose one of"),
    (["fit", "--data.train", "EMPTY"], "class folder holds no videos"),
    (["fit", "--data.train", "BADCSV"], "list has columns ['path', 'comment'], needs ['path', 'label']"),
    (["predict", "--ckpt_path", "/no/such.ckpt", "--data.predict", "TRAIN"], "--ckpt_path /no/such.ckpt: no such file"),
    (["export", "--ckpt_path", "NOTCKPT"], "not a checkpoint but a text file"),
    (["validate", "--ckpt_path", "CKPT", "--data.val", "OTHERCLASS"], "['walking'] are not among the trained classes"),
    (["export", "--ckpt_path", "CKPT", "--output", "BLOCKED/model.onnx"], "cannot write"),
])
def test_bad_input_gives_one_clear_line(args, expected, trained, tiny_data, tmp_path, capsys):
    (tmp_path / "empty" / "a").mkdir(parents=True)
    (tmp_path / "empty" / "b").mkdir()
    (tmp_path / "empty" / "b" / "x.mp4").write_bytes(b"")
    write_csv(tmp_path / "bad.csv", [{"path": "x.mp4", "comment": "hi"}])
    (tmp_path / "not.ckpt").write_text("hello")
    (tmp_path / "other" / "walking").mkdir(parents=True)
    (tmp_path / "other" / "walking" / "w.mp4").write_bytes((tiny_data / "val/rising/rising.mp4").read_bytes())
    names = {"TRAIN": tiny_data / "train", "EMPTY": tmp_path / "empty", "BADCSV": tmp_path / "bad.csv",
             "NOTCKPT": tmp_path / "not.ckpt", "CKPT": trained / "checkpoints/best.ckpt",
             "OTHERCLASS": tmp_path / "other", "BLOCKED/model.onnx": tmp_path / "not.ckpt" / "model.onnx"}
    args = [str(names.get(a, a)) for a in args]
    assert vidclf(*args, *QUIET, "--trainer.default_root_dir", tmp_path / "runs") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("vidclf: error: ") and expected in err[0], err


@pytest.mark.slow  # three fresh interpreters (about 23 s)
def test_console_script_and_module_entry_points():
    import subprocess
    import sys

    vidclf_bin = Path(sys.executable).with_name("vidclf")
    subcommands = "{fit,validate,test,predict,export,serve,pretrain,data,embed,select}"
    for command, expected in (([str(vidclf_bin), "export", "--help"], "--format {onnx,openvino,torchscript,pt2}"),
                              ([sys.executable, "-m", "vidclf", "--help"], subcommands)):
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and expected in done.stdout, done.stderr
    done = subprocess.run([str(vidclf_bin), "predict", "--ckpt_path", "missing.ckpt"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.strip() == (
        "vidclf: error: --ckpt_path missing.ckpt: no such file; pass RUN/checkpoints/best.ckpt of a vidclf run")


def test_test_accuracy_equals_accuracy_of_predict_rows(trained, tiny_data, tmp_path):
    best = trained / "checkpoints" / "best.ckpt"
    views = ["--data.num_clips", "3", "--data.num_crops", "3", "--model.aggregate", "logit"]
    assert vidclf("test", *QUIET, *views, "--ckpt_path", best, "--data.test", tiny_data / "val",
                  "--trainer.default_root_dir", tmp_path / "runs") == 0
    test_acc = float(read_csv(evaluation(trained, "test") / "metrics.csv")[-1]["test/acc"])
    assert vidclf("predict", *QUIET, *views, "--ckpt_path", best, "--data.predict", tiny_data / "val",
                  "--output", tmp_path / "p.csv") == 0
    right = [Path(r["path"]).parent.name == r["label"] for r in read_csv(tmp_path / "p.csv")]
    assert test_acc == pytest.approx(sum(right) / len(right), abs=1e-6)
    # --model.aggregate given with --ckpt_path beats the checkpoint's "prob"
    assert vidclf("export", *views, "--ckpt_path", best, "--output", tmp_path / "m.onnx") == 0
    assert json.loads((tmp_path / "m.onnx.json").read_text())["video"]["aggregate"] == "logit"


def test_predict_takes_several_inputs_and_globs(trained, tiny_data, tmp_path):
    out = tmp_path / "p.csv"
    sources = f'["{tiny_data / "val" / "rising"}", "{tiny_data / "val"}/*/*.mkv"]'
    assert vidclf("predict", *QUIET, "--ckpt_path", trained / "checkpoints/best.ckpt", "--data.predict", sources,
                  "--output", out) == 0
    names = [str(Path(r["path"]).relative_to(tiny_data / "val")) for r in read_csv(out)]
    assert names == [f"rising/rising{ext}" for ext in (".avi", ".mkv", ".mov", ".mp4", ".webm")] + [
        "falling/falling.mkv", "rising/rising.mkv", "sideways/sideways.mkv"]


@pytest.mark.parametrize("video", ["rising/rising.mov", "sideways/sideways.webm"])
def test_standalone_onnx_example_agrees_with_vidclf_predict(trained, tiny_data, tmp_path, video):
    path = tiny_data / "val" / video
    views = ["--data.num_clips", "3", "--data.num_crops", "3"]
    model = tmp_path / "model.onnx"
    assert vidclf("export", "--ckpt_path", trained / "checkpoints/best.ckpt", "--output", model, *views) == 0
    assert vidclf("predict", *QUIET, *views, "--ckpt_path", trained / "checkpoints/best.ckpt",
                  "--data.predict", path, "--output", tmp_path / "p.csv") == 0
    row = read_csv(tmp_path / "p.csv")[0]
    top = [line.split("\t") for line in run_example("predict_onnx.py", model, path)]
    assert [label for label, _ in top] == [row[f"top{k}_label"] for k in (1, 2, 3)]
    for k, (_, prob) in enumerate(top, start=1):
        assert float(prob) == pytest.approx(float(row[f"top{k}_prob"]), abs=1e-4)


def test_timeline_scores_every_window_and_the_whole_video(trained, tmp_path):
    from vidclf.synthetic import render_motion, write_video

    rng = np.random.default_rng(3)
    video = tmp_path / "long.mp4"  # 12 s: 6 s rising, then 6 s falling
    write_video(str(video), np.concatenate([render_motion(m, rng, 180, 48) for m in ("rising", "falling")]))
    out, timeline = tmp_path / "p.csv", tmp_path / "windows.csv"
    assert vidclf("predict", *QUIET, "--ckpt_path", trained / "checkpoints/best.ckpt", "--data.predict", video,
                  "--output", out, "--timeline", timeline, "--window", "2", "--stride", "1.5") == 0
    windows = read_csv(timeline)
    assert [(float(w["start"]), float(w["end"])) for w in windows] == [(1.5 * i, 1.5 * i + 2) for i in range(7)]
    assert all(w["status"] == "ok" for w in windows)
    (row,) = read_csv(out)  # the video's row: the mean of its windows' probabilities
    probs = {}
    for w in windows:
        for k in (1, 2, 3):
            probs.setdefault(w[f"top{k}_label"], []).append(float(w[f"top{k}_prob"]))
    assert float(row["prob"]) == pytest.approx(np.mean(probs[row["label"]]), abs=1e-5)
    assert row["label"] == max(probs, key=lambda label: np.mean(probs[label]))


def test_fit_with_val_split_and_too_many_broken_videos(tiny_data, tmp_path, capsys):
    assert vidclf("fit", *TINY, *QUIET, "--data.train", tiny_data / "train", "--data.val_split", "0.25",
                  "--trainer.max_epochs", "1", "--trainer.default_root_dir", tmp_path / "a") == 0
    assert "val/acc" in read_csv(tmp_path / "a/version_0/metrics.csv")[-1]
    train = tmp_path / "train"
    for cls in ("falling", "rising"):
        (train / cls).mkdir(parents=True)
        (train / cls / "ok.mp4").write_bytes((tiny_data / "val" / cls / f"{cls}.mp4").read_bytes())
        (train / cls / "broken.mp4").write_bytes(b"not a video")
    assert vidclf("fit", *TINY, *QUIET, "--data.train", train, "--trainer.max_epochs", "2",
                  "--trainer.default_root_dir", tmp_path / "b") == 2
    assert "2 of 4 train videos cannot be decoded, more than --data.max_failed 0.25" in capsys.readouterr().err
    assert vidclf("fit", *TINY, *QUIET, "--data.train", train, "--trainer.max_epochs", "2", "--data.scan", "false",
                  "--trainer.default_root_dir", tmp_path / "c") == 2  # the same limit while training
    assert "2 of 4 training videos could not be decoded, more than --data.max_failed 0.25" in capsys.readouterr().err
    assert len(read_csv(tmp_path / "c/version_0/data_report.csv")) == 2


def test_fit_with_frame_cache_reuses_entries(tiny_data, tmp_path, fixed_threads):
    cache, seen, metrics = tmp_path / "cache", [], []
    for run in ("a", "b"):
        assert vidclf("fit", *TINY, *QUIET, "--data.train", tiny_data / "train", "--data.cache", cache,
                      "--data.num_workers", "2", "--trainer.max_epochs", "2",
                      "--trainer.default_root_dir", tmp_path / run) == 0
        seen.append(sorted((p.name, p.stat().st_mtime_ns) for p in cache.iterdir()))
        metrics.append(read_csv(tmp_path / run / "version_0/metrics.csv"))
    assert len(seen[0]) == 2 * 12  # one blob + one index per training video
    assert seen[0] == seen[1]  # the second run decoded nothing
    # the same clips, so the same numbers (to float32 rounding: the loss sums may add up in another order)
    first, second = ([{k: float(v) for k, v in row.items() if v} for row in m] for m in metrics)
    assert [row.keys() for row in first] == [row.keys() for row in second]
    assert all(a[k] == pytest.approx(b[k], rel=1e-4) for a, b in zip(first, second) for k in a)


@pytest.mark.parametrize("finetune, backbone_moves", [("freeze", False), ("freeze_unfreeze", True), ("full", True)])
def test_finetune_strategies(finetune, backbone_moves, tiny_data, tmp_path):
    from pytorchvideo.models.hub import x3d_xs

    weights = tmp_path / "X3D_XS.pyth"
    torch.save({"model_state": x3d_xs().state_dict()}, weights)
    assert vidclf("fit", *TINY, *QUIET, "--data.train", tiny_data / "train", "--model.pretrained", weights,
                  "--model.finetune", finetune, "--model.unfreeze_epoch", "1", "--model.backbone_lr", "0.1",
                  "--trainer.max_epochs", "2", "--trainer.default_root_dir", tmp_path / "runs") == 0
    loaded = torch.load(weights, weights_only=True)["model_state"]
    checkpoint = torch.load(tmp_path / "runs/version_0/checkpoints/last.ckpt", weights_only=True)
    trained = checkpoint["state_dict"]
    head = "blocks.5.proj."
    same = {k: torch.equal(trained[f"net.{k}"], v) for k, v in loaded.items()
            if not k.startswith(head) and f"net.{k}" in trained and v.is_floating_point()}
    assert len(same) > 100
    assert all(same.values()) != backbone_moves  # weights and BatchNorm statistics as loaded, or not
    updated = len(checkpoint["optimizer_states"][0]["state"])  # parameters AdamW has stepped
    assert updated == 2 if finetune == "freeze" else updated > 100  # freeze: the head's weight and bias only
