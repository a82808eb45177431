"""Experiment trackers are added to the run folder, never instead of it: MLflow with a local SQLite store
(metrics, parameters and artifacts read back through MLflow's client) and Weights & Biases offline (the
run files it writes), each through the config fragment vidclf ships."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import QUIET, TINY, evaluation, read_csv, vidclf


@pytest.mark.slow  # about 25 s: a learning-rate search, a fit and a validate, logged to MLflow
def test_mlflow_receives_metrics_options_and_the_runs_files(tiny_data, tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.chdir(tmp_path)  # the fragment's store: sqlite:///mlflow.db here
    args = ["--config", "trackers/mlflow", *TINY, *QUIET]
    assert vidclf("fit", *args, "--data.train", tiny_data / "train", "--data.val", tiny_data / "val",
                  "--trainer.max_epochs", "2", "--model.lr", "auto", "--lr_find_steps", "30") == 0
    run = tmp_path / "runs" / "version_0"
    assert vidclf("validate", *args, "--ckpt_path", run, "--data.val", tiny_data / "val") == 0

    # the run folder is whole, as without a tracker
    for name in ("metrics.csv", "config.yaml", "lr_find.png", "checkpoints/best.ckpt"):
        assert (run / name).is_file(), name
    assert (evaluation(run) / "confusion_matrix.png").is_file()

    client = mlflow.tracking.MlflowClient("sqlite:///mlflow.db")
    experiment = client.get_experiment_by_name("vidclf")
    fit, validate = sorted(client.search_runs([experiment.experiment_id]), key=lambda r: r.info.start_time)
    logged = [float(r["val/acc"]) for r in read_csv(run / "metrics.csv") if r.get("val/acc")]
    history = client.get_metric_history(fit.info.run_id, "val/acc")
    assert [m.value for m in sorted(history, key=lambda m: m.step)] == pytest.approx(logged)
    params = fit.data.params
    assert params["backbone"] == "x3d_xs" and params["resolved/frames"] == "4" and params["resolved/crop"] == "32"
    assert params["resolved/classes"] == "falling,rising,sideways"
    assert {a.path for a in client.list_artifacts(fit.info.run_id)} >= {"config.yaml", "run_info.json", "lr_find.png"}
    assert {a.path for a in client.list_artifacts(validate.info.run_id)} >= {"metrics.csv", "per_class.csv",
                                                                           "confusion_matrix.png"}
    assert validate.data.metrics["val/acc"] == pytest.approx(float(read_csv(evaluation(run) / "metrics.csv")[-1]["val/acc"]))


@pytest.mark.slow  # a fresh interpreter and W&B's own service process
def test_wandb_offline_writes_the_run_with_its_files(tiny_data, tmp_path):
    pytest.importorskip("wandb")
    env = {**os.environ, "WANDB_SILENT": "true", "WANDB_MODE": "offline"}
    env.pop("WANDB_API_KEY", None)
    done = subprocess.run([sys.executable, "-m", "vidclf", "fit", "--config", "trackers/wandb", *TINY, *QUIET,
                           "--data.train", str(tiny_data / "train"), "--data.val", str(tiny_data / "val"),
                           "--trainer.max_epochs", "2"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "runs" / "version_0" / "metrics.csv").is_file()  # the run folder, as always
    [offline] = (tmp_path / "wandb").glob("offline-run-*")
    [log] = offline.glob("run-*.wandb")  # what `wandb sync` uploads: every metric row, as metrics.csv has it
    records = log.read_bytes()
    rows = [r for r in read_csv(tmp_path / "runs" / "version_0" / "metrics.csv") if r.get("train/loss_epoch")]
    assert len(rows) == 2 and all(r["train/loss_epoch"].encode() in records for r in rows)
    assert b"val/acc" in records and b"resolved/frames" in records  # the resolved options too
    files = offline / "files"  # the run folder's files, under its name (W&B's own config.yaml sits beside)
    assert (files / "version_0" / "config.yaml").read_text() == (tmp_path / "runs/version_0/config.yaml").read_text()
    assert json.loads((files / "version_0" / "run_info.json").read_text())["classes"] == ["falling", "rising", "sideways"]
