"""Runtimes behind predict, validate and serve (torch, ONNX Runtime, OpenVINO) and the OpenVINO / INT8
exports: the same rows as torch, a conversion kept in the cache, reduced precisions measured on the
labelled videos before anything is written, and one line for what cannot be done."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from conftest import QUIET, assert_same_rows, evaluation, predict_rows, read_csv, run_example, vidclf, write_csv


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """A cache folder of this test's own, so conversions can be counted."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "vidclf" / "runtimes"


def test_every_runtime_gives_torchs_rows_and_converts_once(trained, tiny_data, tmp_path, cache, capsys):
    ckpt = trained / "checkpoints/best.ckpt"
    torch_rows = predict_rows(ckpt, tiny_data / "val", tmp_path / "torch.csv", "--runtime", "torch")
    for runtime in ("onnxruntime", "openvino"):
        rows = predict_rows(ckpt, tiny_data / "val", tmp_path / f"{runtime}.csv", "--runtime", runtime)
        assert_same_rows(rows, torch_rows)
        assert f"vidclf: runtime {runtime} at fp32" in capsys.readouterr().err
    assert sorted(p.name for folder in cache.iterdir() for p in folder.iterdir()) == [
        "key.json", "key.json", "model.bin", "model.onnx", "model.xml"]
    converted = {p: p.stat().st_mtime_ns for p in cache.rglob("model.*")}
    auto = predict_rows(ckpt, tiny_data / "val", tmp_path / "auto.csv")  # auto: OpenVINO, from the cache
    assert "vidclf: runtime openvino at fp32" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in cache.rglob("model.*")} == converted
    assert_same_rows(auto, torch_rows)


def test_timelines_and_multiple_views_in_openvino_equal_torch(trained, tiny_data, tmp_path, cache, capsys):
    ckpt = trained / "checkpoints/best.ckpt"
    views = ["--data.num_clips", "3", "--data.num_crops", "3"]
    for runtime in ("torch", "openvino"):
        predict_rows(ckpt, tiny_data / "val/rising", tmp_path / f"{runtime}.csv", "--runtime", runtime,
                     "--timeline", tmp_path / f"{runtime}_windows.csv", "--window", "0.5", "--stride", "0.25")
        predict_rows(ckpt, tiny_data / "val/falling", tmp_path / f"{runtime}_views.csv", "--runtime", runtime, *views)
    assert capsys.readouterr().err.count("vidclf: runtime openvino at fp32") == 2  # the swap happened, both times
    windows = read_csv(tmp_path / "openvino_windows.csv")
    assert len(windows) > 10
    assert_same_rows(windows, read_csv(tmp_path / "torch_windows.csv"))
    assert_same_rows(read_csv(tmp_path / "openvino.csv"), read_csv(tmp_path / "torch.csv"))
    assert_same_rows(read_csv(tmp_path / "openvino_views.csv"), read_csv(tmp_path / "torch_views.csv"))


def test_validate_in_a_runtime_measures_what_torch_measured(trained, tiny_data, cache, capsys):
    ckpt = trained / "checkpoints/best.ckpt"
    metrics = {}
    for runtime in ("torch", "openvino"):
        assert vidclf("validate", *QUIET, "--ckpt_path", ckpt, "--data.val", tiny_data / "val",
                      "--runtime", runtime, "--data.num_workers", "0") == 0
        metrics[runtime] = read_csv(evaluation(trained) / "metrics.csv")[-1]
        said = capsys.readouterr().err
        assert ("vidclf: runtime openvino at fp32" in said) == (runtime == "openvino")  # torch: no swap, no line
    assert metrics["openvino"]["val/acc"] == metrics["torch"]["val/acc"]
    assert float(metrics["openvino"]["val/loss"]) == pytest.approx(float(metrics["torch"]["val/loss"]), abs=1e-4)


def test_openvino_export_and_its_standalone_example_agree_with_predict(trained, tiny_data, tmp_path):
    ckpt = trained / "checkpoints/best.ckpt"
    model = tmp_path / "model.xml"
    views = ["--data.num_clips", "3", "--data.num_crops", "3"]
    video = tiny_data / "val/sideways/sideways.webm"
    assert vidclf("export", "--ckpt_path", ckpt, "--format", "openvino", "--output", model, *views,
                  "--data.predict", video) == 0
    info = json.loads(Path(f"{model}.json").read_text())
    assert model.is_file() and model.with_suffix(".bin").is_file()
    assert info["format"] == "openvino" and info["precision"] == "fp32"
    assert info["runtime"] == {"name": "openvino", "INFERENCE_PRECISION_HINT": "f32"}
    assert info["check"]["max_abs_diff"] <= 1e-4
    assert not list(tmp_path.glob(".tmp-*"))
    row = predict_rows(ckpt, video, tmp_path / "p.csv", "--runtime", "torch", *views)[0]
    top = [line.split("\t") for line in run_example("predict_openvino.py", model, video)]
    assert [label for label, _ in top[:3]] == [row[f"top{k}_label"] for k in (1, 2, 3)]
    for k, (_, prob) in enumerate(top[:3], start=1):
        assert float(prob) == pytest.approx(float(row[f"top{k}_prob"]), abs=1e-4)


@pytest.mark.parametrize("fmt,precision", [pytest.param("openvino", "int8", marks=pytest.mark.slow), ("onnx", "int8"),
                                           pytest.param("openvino", "bf16", marks=pytest.mark.slow)])
def test_reduced_precision_exports_are_measured_on_the_labelled_videos(fmt, precision, trained, tiny_data, tmp_path,
                                                                       capsys):
    ckpt = trained / "checkpoints/best.ckpt"
    model = tmp_path / ("model.xml" if fmt == "openvino" else "model.onnx")
    assert vidclf("export", "--ckpt_path", ckpt, "--format", fmt, "--precision", precision, "--output", model,
                  "--data.val", tiny_data / "val", "--calibration_clips", "8", "--max_accuracy_drop", "100") == 0
    info = json.loads(Path(f"{model}.json").read_text())
    accuracy = info["accuracy"]
    assert info["precision"] == precision and accuracy["videos"] == 15 and accuracy["metric"] == "accuracy"
    assert 0 <= accuracy["agreement"] <= 1 and 0 <= accuracy["export"] <= 1
    # the checkpoint's own accuracy is what `vidclf validate` measures on the same videos
    assert vidclf("validate", *QUIET, "--ckpt_path", ckpt, "--data.val", tiny_data / "val", "--runtime", "torch") == 0
    assert accuracy["checkpoint"] == pytest.approx(float(read_csv(evaluation(trained) / "metrics.csv")[-1]["val/acc"]),
                                                   abs=1e-6)
    printed = capsys.readouterr().out
    assert f"{fmt} {precision} on 15 videos of --data.val: accuracy {accuracy['export']:.3f}" in printed
    if precision == "int8":
        assert info["calibration"] == {"source": "--data.val", "clips": 8, "videos_skipped": 0}
        assert "int8 calibration on 8 clips of --data.val" in printed
        size = sum(p.stat().st_size for p in tmp_path.glob("model.*") if p.suffix != ".json")
        assert vidclf("export", "--ckpt_path", ckpt, "--format", fmt, "--output", tmp_path / "fp32" / model.name) == 0
        full = sum(p.stat().st_size for p in (tmp_path / "fp32").glob("model.*") if p.suffix != ".json")
        assert size < 0.5 * full  # int8 weights: a third of the file or less


def test_an_export_worse_than_allowed_is_an_error_and_writes_nothing(trained, tiny_data, tmp_path):
    """The gate itself, with a real network in place of the export: the checkpoint's own network with
    its classes shifted, so the drop is real and large."""
    from vidclf.commands.export_check import compare_on_val
    from vidclf.data.datamodule import VideoDataModule
    from vidclf.errors import VidclfError
    from vidclf.models.classifier import VideoClassifier

    model = VideoClassifier.load_from_checkpoint(trained / "checkpoints/best.ckpt").eval()
    # labelled with the checkpoint's own predictions, so it scores 1.0 and the shifted classes 0.0
    rows = predict_rows(trained / "checkpoints/best.ckpt", tiny_data / "val", tmp_path / "p.csv", "--runtime", "torch",
                        "--data.num_clips", "2")
    listing = write_csv(tmp_path / "val.csv", [{"path": r["path"], "label": r["label"]} for r in rows])
    data = VideoDataModule(val=str(listing), backbone=model.hparams.backbone, classes=model.class_names,
                           frames=4, rate=6, crop=32, resize=36, num_workers=0, batch_size=4, num_clips=2, scan=False)
    net = model.net

    class Shifted(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return net(x).roll(1, dims=1)

    shifted = Shifted()
    with pytest.raises(VidclfError, match=r"openvino int8 accuracy 0.000 is 100.0 points below the checkpoint's 1.000 "
                                          r"\(--max_accuracy_drop 1.0\); nothing written"):
        compare_on_val(model, data, shifted, "openvino int8", 1.0)
    assert model.net is net


@pytest.mark.parametrize("args,message", [
    (["export", "--format", "onnx", "--precision", "fp16"], "--format onnx exports at fp32 or int8; --precision fp16 "
                                                             "needs --format openvino"),
    (["export", "--format", "torchscript", "--precision", "int8"], "needs --format onnx or openvino"),
    (["export", "--format", "openvino", "--precision", "int8"], "is measured against the checkpoint on labelled "
                                                               "videos before it is written; pass --data.val"),
    (["predict", "--runtime", "torch", "--precision", "bf16"], "--precision bf16 is OpenVINO's; pass --runtime openvino"),
    (["predict", "--runtime", "nonesuch"], "nonesuch"),
])
def test_what_cannot_be_done_is_one_line(args, message, trained, tiny_data, tmp_path, capsys):
    code = vidclf(*args, "--ckpt_path", trained / "checkpoints/best.ckpt", "--data.predict", tiny_data / "val",
                  "--output", tmp_path / "out")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and message in err[-1], err
    assert not list(tmp_path.iterdir())


def test_a_runtime_not_installed_names_its_install_command(trained, tiny_data, tmp_path, monkeypatch, capsys):
    from vidclf import runtimes

    monkeypatch.setitem(runtimes.PACKAGE, "openvino", "openvino_not_installed_here")
    code = vidclf("predict", "--ckpt_path", trained / "checkpoints/best.ckpt", "--data.predict", tiny_data / "val",
                  "--output", tmp_path / "p.csv", "--runtime", "openvino")
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "vidclf: error: --runtime openvino needs openvino, which is not installed here; install it with: "
        "pip install openvino")
    # auto then takes the next fastest installed
    assert predict_rows(trained / "checkpoints/best.ckpt", tiny_data / "val/rising", tmp_path / "auto.csv")
    assert "vidclf: runtime onnxruntime at fp32" in capsys.readouterr().err


@pytest.mark.slow
def test_predict_over_two_processes_writes_every_row_in_input_order(trained, tiny_data, tmp_path):
    """`--trainer.devices 2`: each process scores its share of the list (in OpenVINO), the first writes
    the whole file in input order, with the same rows (a file that does not decode included) as one process."""
    import subprocess
    import sys

    videos = tmp_path / "videos"
    shutil.copytree(tiny_data / "val", videos)
    (videos / "rising" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x01" * 500)
    ckpt = trained / "checkpoints/best.ckpt"
    one = predict_rows(ckpt, videos, tmp_path / "one.csv", "--timeline", tmp_path / "one_t.csv", "--window", "0.5")
    args = ["predict", *QUIET, "--ckpt_path", ckpt, "--data.predict", videos, "--output", tmp_path / "two.csv",
            "--timeline", tmp_path / "two_t.csv", "--window", "0.5", "--data.num_workers", "0",
            "--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.accelerator", "cpu"]
    done = subprocess.run([sys.executable, "-m", "vidclf", *map(str, args)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    two = read_csv(tmp_path / "two.csv")
    assert len(two) == 16 and [r["status"][:6] for r in two].count("error:") == 1
    assert_same_rows(two, one)
    assert_same_rows(read_csv(tmp_path / "two_t.csv"), read_csv(tmp_path / "one_t.csv"))
    assert done.stdout.count("vidclf: predicted 16 videos") == 1  # the first process writes and says so


def test_an_export_runs_without_its_checkpoint(trained, tiny_data, tmp_path, capsys):
    """--model_file: the deployment box has model.xml (or model.onnx) and its sidecar, no checkpoint; the
    sidecar gives classes, clip settings and views, and the rows are the checkpoint's."""
    ckpt = trained / "checkpoints/best.ckpt"
    box = tmp_path / "box"
    views = ["--data.num_clips", "3", "--data.num_crops", "3"]
    for fmt, name in (("openvino", "model.xml"), ("onnx", "model.onnx")):
        assert vidclf("export", "--ckpt_path", ckpt, "--format", fmt, "--output", box / name, *views) == 0
    reference = predict_rows(ckpt, tiny_data / "val", tmp_path / "ckpt.csv", "--runtime", "torch", *views)
    for name in ("model.xml", "model.onnx"):
        rows = predict_rows(None, tiny_data / "val", tmp_path / f"{name}.csv", "--model_file", box / name)
        assert_same_rows(rows, reference)
        assert f"running {box / name}" in capsys.readouterr().err
    # views given on the command line win over the sidecar's
    one = predict_rows(None, tiny_data / "val", tmp_path / "one_view.csv", "--model_file", box / "model.xml",
                       "--data.num_clips", "1")
    assert [r["prob"] for r in one] != [r["prob"] for r in reference]


@pytest.fixture(scope="module")
def exports(trained, tmp_path_factory) -> Path:
    """An OpenVINO and a TorchScript export of the trained model, with their sidecars."""
    folder = tmp_path_factory.mktemp("exports")
    for fmt, name in (("openvino", "model.xml"), ("torchscript", "model.pt")):
        assert vidclf("export", "--ckpt_path", trained / "checkpoints/best.ckpt", "--format", fmt,
                      "--output", folder / name) == 0
    return folder


@pytest.mark.parametrize("case,message", [
    ("no sidecar", "its sidecar {model}.json is missing; keep the JSON vidclf export wrote beside the model"),
    ("another format's sidecar", "{model}.json is not the sidecar of a vidclf openvino export"),
    ("both", "--model_file {model} and --ckpt_path {ckpt} both name the model; pass one"),
    ("runtime", "--model_file {model} runs in openvino; drop --runtime torch"),
    ("torchscript", "runs an ONNX (.onnx) or OpenVINO (.xml) export"),
])
def test_a_model_file_that_cannot_run_is_one_line(case, message, trained, tiny_data, exports, tmp_path, capsys):
    ckpt = trained / "checkpoints/best.ckpt"
    model = tmp_path / ("model.pt" if case == "torchscript" else "model.xml")
    for made in exports.glob(f"{model.stem}.*"):
        shutil.copy(made, tmp_path)
    extra = {"both": ["--ckpt_path", ckpt], "runtime": ["--runtime", "torch"]}.get(case, [])
    if case == "no sidecar":
        Path(f"{model}.json").unlink()
    if case == "another format's sidecar":
        info = json.loads(Path(f"{model}.json").read_text())
        Path(f"{model}.json").write_text(json.dumps({**info, "format": "onnx"}))
    capsys.readouterr()
    code = vidclf("predict", "--model_file", model, "--data.predict", tiny_data / "val", "--output", tmp_path / "p.csv",
                  *extra)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and message.format(model=model, ckpt=ckpt) in err[-1], err
    assert not (tmp_path / "p.csv").exists()


@pytest.mark.slow
def test_a_server_runs_an_export_without_its_checkpoint(trained, tiny_data, tmp_path):
    """`vidclf serve --model_file model.xml`: the answers are the checkpoint's predict rows; /info names the file."""
    import urllib.request

    from test_serve import Server, post

    ckpt = trained / "checkpoints/best.ckpt"
    model = tmp_path / "box" / "model.xml"
    assert vidclf("export", "--ckpt_path", ckpt, "--format", "openvino", "--output", model) == 0
    reference = {Path(r["path"]).name: r for r in predict_rows(ckpt, tiny_data / "val", tmp_path / "p.csv",
                                                                "--runtime", "torch")}
    server = Server(None, tmp_path / "serve_tmp", "--model_file", str(model), "--data.num_workers", "0")
    try:
        info = json.loads(urllib.request.urlopen(f"{server.url}/info").read())
        assert info["runtime"]["name"] == "openvino" and "model_file_sha256" in info
        for video in sorted((tiny_data / "val").glob("*/*")):
            status, answer = post(server.url, video)
            assert status == 200, answer
            row = reference[video.name]
            assert answer["label"] == row["label"]
            assert answer["top1_prob"] == pytest.approx(float(row["top1_prob"]), abs=1e-4)
    finally:
        code, output = server.stop()
    assert code == 0, output[-2000:]


@pytest.mark.slow
def test_calibration_skips_and_counts_videos_that_do_not_decode(trained, tiny_data, tmp_path, capsys):
    """A broken file first in --data.predict: the sample clip and the calibration take the videos that decode
    (this used to stop the export, and a calibration short of clips never ended)."""
    import shutil as sh

    pool = tmp_path / "pool"
    sh.copytree(tiny_data / "val" / "rising", pool)
    (pool / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x01" * 500)
    model = tmp_path / "model.onnx"
    assert vidclf("export", "--ckpt_path", trained / "checkpoints/best.ckpt", "--precision", "int8", "--output", model,
                  "--data.val", tiny_data / "val", "--data.predict", pool, "--calibration_clips", "6",
                  "--max_accuracy_drop", "100") == 0
    assert json.loads(Path(f"{model}.json").read_text())["calibration"] == {
        "source": "--data.predict", "clips": 5, "videos_skipped": 1}  # one clip from each of the 5 that decode
    assert "int8 calibration on 5 clips of --data.predict (1 video(s) skipped: they did not decode)" in \
        capsys.readouterr().out
