"""What a newcomer meets first: --help summaries, the end of a fit, a run folder as --ckpt_path, a class
folder given as the training set, and `vidclf data` naming its bad files."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile

import pytest

from conftest import QUIET, REPO, SHARED_VIDEOS, TINY, read_csv, vidclf, write_csv


def test_every_subcommand_has_its_own_one_line_summary(capsys):
    assert vidclf("--help") == 0
    listing = capsys.readouterr().out.split("Available subcommands:", 1)[1]
    summaries = dict(re.findall(r"^    (\w+)\s+(.+?)(?=^    \w|\Z)", listing, flags=re.M | re.S))
    assert set(summaries) == {"fit", "validate", "test", "predict", "embed", "select", "export", "serve", "pretrain", "data"}
    for name, text in summaries.items():
        sentence = " ".join(text.split())
        assert sentence.endswith(".") and sentence.count(". ") == 0, (name, sentence)  # one whole sentence
    assert "held-out test videos" in summaries["test"]


def test_fit_shows_loss_and_accuracy_and_ends_with_where_everything_went(tiny_data, tmp_path, capsys):
    assert vidclf("fit", *TINY, "--data.train", tiny_data / "train", "--data.val", tiny_data / "val",
                  "--trainer.max_epochs", "2", "--trainer.default_root_dir", tmp_path) == 0
    printed = capsys.readouterr()
    err, bar = printed.out, printed.out + printed.err  # Lightning's bar writes to standard output
    assert re.search(r"Epoch 1: 100%.*loss=[\d.]+, val_loss=[\d.]+, val_acc=[\d.]+", bar), bar[-500:]
    assert "v_num" not in bar
    assert re.search(r"^vidclf: model x3d_xs: [\d.]+ M parameters, [\d.]+ M trainable$", err, flags=re.M)
    assert "FLOPs" not in err + bar
    run = tmp_path / "version_0"
    accuracies = [float(r["val/acc"]) for r in read_csv(run / "metrics.csv") if r.get("val/acc")]
    best = max(accuracies)
    assert f"vidclf: fit done; run folder {run}" in err
    assert (f"best checkpoint  {run / 'checkpoints' / 'best.ckpt'} (epoch {accuracies.index(best)}, "
            f"val/acc {best:.4f})") in err
    assert f"vidclf predict  --ckpt_path {run / 'checkpoints' / 'best.ckpt'} --data.predict VIDEOS" in err


def test_fit_without_validation_names_its_last_checkpoint(tiny_data, tmp_path, capsys):
    assert vidclf("fit", *TINY, *QUIET, "--data.train", tiny_data / "train", "--trainer.max_epochs", "1",
                  "--trainer.default_root_dir", tmp_path) == 0
    err = capsys.readouterr().out
    assert f"last checkpoint  {tmp_path / 'version_0' / 'checkpoints' / 'last.ckpt'} (no val/acc" in err
    assert "pass --data.val or --data.val_split" in err


def test_a_run_folder_as_ckpt_path_means_its_best_checkpoint_and_results_go_with_the_run(trained, tiny_data,
                                                                                          tmp_path, capsys):
    before = set((trained / "validate").glob("*")) if (trained / "validate").is_dir() else set()
    assert vidclf("validate", *QUIET, "--ckpt_path", trained, "--data.val", tiny_data / "val") == 0
    printed = capsys.readouterr()
    assert f"--ckpt_path {trained} is a folder: using {trained / 'checkpoints' / 'best.ckpt'}" in printed.err
    [folder] = set((trained / "validate").glob("*")) - before  # RUN/validate/<date>_<time>
    assert re.fullmatch(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d(_\d+)?", folder.name)
    assert f"vidclf: validate results in {folder}: metrics.csv, per_class.csv, confusion_matrix.png" in printed.out
    assert read_csv(folder / "metrics.csv")[-1]["val/acc"] and (folder / "per_class.csv").is_file()
    outside = tmp_path / "model.ckpt"  # a checkpoint outside any run: ROOT/test/<date>_<time>
    shutil.copy(trained / "checkpoints" / "best.ckpt", outside)
    assert vidclf("test", *QUIET, "--ckpt_path", outside, "--data.test", tiny_data / "val",
                  "--trainer.default_root_dir", tmp_path / "runs") == 0
    [folder] = (tmp_path / "runs" / "test").iterdir()
    assert read_csv(folder / "metrics.csv")[-1]["test/acc"]
    (tmp_path / "empty").mkdir()
    assert vidclf("predict", "--ckpt_path", tmp_path / "empty", "--data.predict", tiny_data / "val") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"a folder without {tmp_path / 'empty' / 'checkpoints' / 'best.ckpt'}" in err[0]


def test_a_class_folder_given_as_the_training_set_says_to_pass_its_parent(tiny_data, tmp_path, capsys):
    assert vidclf("fit", *TINY, "--data.train", tiny_data / "train" / "rising",
                  "--trainer.default_root_dir", tmp_path) == 2
    err = capsys.readouterr().err
    assert "the videos sit directly in this folder" in err and "pass its parent folder" in err


def test_data_names_its_bad_files_and_keeps_an_earlier_look(tiny_data, tmp_path, capsys):
    train = tmp_path / "train"
    shutil.copytree(tiny_data / "train", train)
    for i in range(5):
        (train / "rising" / f"broken{i}.mp4").write_bytes(b"\x00" * 100)
    out = tmp_path / "look"
    assert vidclf("data", "--data.train", train, "--output", out) == 0
    printed = capsys.readouterr().out
    assert printed.count("unreadable: ") == 3 and f"{train / 'rising' / 'broken0.mp4'}" in printed
    assert f"... and 2 more in {out / 'files.csv'}" in printed
    assert vidclf("data", "--data.train", train, "--output", out) == 2
    assert "already holds summary.csv" in capsys.readouterr().err
    assert vidclf("data", "--data.train", train, "--output", out, "--overwrite", "true") == 0


def test_videos_a_list_names_but_the_disk_lacks_are_missing_not_undecodable(tiny_data, tmp_path, capsys):
    rows = [{"path": f"{m}/{m}.mp4", "label": m} for m in ("falling", "rising", "sideways")]  # beside the list: no
    listing = write_csv(tmp_path / "train.csv", rows)
    assert vidclf("fit", *TINY, *QUIET, "--data.train", listing, "--trainer.default_root_dir", tmp_path / "runs") == 2
    err = capsys.readouterr().err
    assert "3 of 3 train videos are missing" in err and f"no such file falling.mp4 in {tmp_path / 'falling'}" in err
    assert "set --data.videos_root" in err and "vidclf data lists them all" in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())  # nothing trained: no run left
    assert vidclf("data", "--data.train", listing, "--output", tmp_path / "look") == 0
    assert [r["status"] for r in read_csv(tmp_path / "look" / "files.csv")] == [
        f"missing: no such file {m}.mp4 in {tmp_path / m}" for m in ("falling", "rising", "sideways")]
    videos = sorted((tiny_data / "train").rglob("*.mp4"))
    rows = [{"path": str(p), "label": p.parent.name} for p in videos] + [{"path": "gone/absent.mp4", "label": "rising"}]
    listing = write_csv(tmp_path / "most.csv", rows)
    assert vidclf("fit", *TINY, *QUIET, "--data.train", listing, "--trainer.max_epochs", "1",
                  "--trainer.default_root_dir", tmp_path / "runs") == 0
    assert f"1 of {len(videos) + 1} train videos are missing, e.g. {tmp_path / 'gone' / 'absent.mp4'}" in \
        capsys.readouterr().out
    report = {r["path"]: r["status"] for r in read_csv(tmp_path / "runs" / "version_0" / "data_report.csv")}
    assert report[str(tmp_path / "gone" / "absent.mp4")] == f"missing: no such file absent.mp4 in {tmp_path / 'gone'}"


@pytest.mark.slow
def test_the_offline_quick_path_on_real_clips(tmp_path, capsys):
    """The README's offline line on real clips (typing vs exercising), then the commands the end of the
    fit names, each given the run folder: the whole first hour without a download or a guessed path."""
    data = SHARED_VIDEOS / "dataset_typing_vs_exercise"
    small = ["--data.frames", "4", "--data.crop", "64", "--data.resize", "72", "--data.num_clips", "2",
             "--data.num_workers", "0", *QUIET]
    assert vidclf("fit", "--config", "from_scratch", "--data.train", data, "--data.cache", tmp_path / "cache",
                  "--data.val_split", "0.25", "--trainer.max_epochs", "2", *small,
                  "--trainer.default_root_dir", tmp_path / "runs") == 0
    err = capsys.readouterr().out
    run = tmp_path / "runs" / "version_0"
    assert f"vidclf: fit done; run folder {run}" in err and f"best checkpoint  {run / 'checkpoints' / 'best.ckpt'}" in err
    assert vidclf("validate", "--ckpt_path", run, "--data.val", data, "--data.num_workers", "0", *QUIET) == 0
    assert re.search(rf"vidclf: validate results in {re.escape(str(run / 'validate'))}/\S+: metrics.csv",
                     capsys.readouterr().out)
    assert vidclf("predict", "--ckpt_path", run, "--data.predict", data / "typing", "--output",
                  tmp_path / "predictions.csv") == 0
    rows = read_csv(tmp_path / "predictions.csv")
    assert len(rows) == len(list((data / "typing").glob("*.mp4"))) and all(r["status"] == "ok" for r in rows)
    assert vidclf("export", "--ckpt_path", run, "--format", "onnx", "--output", tmp_path / "model.onnx") == 0
    assert (tmp_path / "model.onnx.json").is_file()


def test_fit_given_its_run_folder_continues_that_run_with_its_own_options(tiny_data, tmp_path, capsys):
    assert vidclf("fit", *TINY, *QUIET, "--data.train", tiny_data / "train", "--data.val", tiny_data / "val",
                  "--trainer.default_root_dir", tmp_path, "--trainer.max_epochs", "1") == 0
    run = tmp_path / "version_0"
    capsys.readouterr()
    # only the run folder and what changes: data, clip settings and the rest come from RUN/config.yaml
    assert vidclf("fit", "--ckpt_path", run, "--trainer.max_epochs", "2") == 0
    err = capsys.readouterr().err
    assert f"--ckpt_path {run}: resuming from {run / 'checkpoints' / 'last.ckpt'} (step " in err
    assert f"vidclf: resuming {run} with its config.yaml; given again: --trainer.max_epochs 2" in err
    assert "exists and is not empty" not in err and "max_epochs" not in err.split("given again")[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["version_0"]  # resumed in place
    assert [r["epoch"] for r in read_csv(run / "metrics.csv") if r.get("val/acc")] == ["0", "1"]
    assert "max_epochs: 2" in (run / "config.yaml").read_text()
    with_given = ["--data.num_clips", "1", "--trainer.max_epochs", "3"]
    assert vidclf("fit", "--ckpt_path", "last", "--trainer.default_root_dir", tmp_path, *with_given) == 0
    assert "given again: --trainer.default_root_dir" in capsys.readouterr().err
    assert "num_clips: 1" in (run / "config.yaml").read_text()
    assert [r["epoch"] for r in read_csv(run / "metrics.csv") if r.get("val/acc")] == ["0", "1", "2"]


@pytest.mark.slow
def test_ctrl_c_during_fit_says_the_command_that_resumes_it(tiny_data, tmp_path):
    """A real SIGINT to a real `vidclf fit` process once its first checkpoint exists: it names the exact
    command, and that command alone (with a new epoch count) continues the run."""
    run = tmp_path / "version_0"
    fit = subprocess.Popen([sys.executable, "-m", "vidclf", "fit", *TINY, *QUIET, "--data.train", tiny_data / "train",
                            "--data.val", tiny_data / "val", "--trainer.max_epochs", "200",
                            "--trainer.default_root_dir", tmp_path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not (run / "checkpoints" / "last.ckpt").is_file() and time.monotonic() < deadline and fit.poll() is None:
        time.sleep(0.2)
    time.sleep(1)
    fit.send_signal(signal.SIGINT)
    out, err = fit.communicate(timeout=60)
    assert fit.returncode == 1, err[-2000:]
    said = re.search(r"vidclf: fit stopped; resume it from its last checkpoint \(epoch (\d+)\) with:\n"
                     r"    (vidclf fit --ckpt_path \S+)$", out, flags=re.M)
    assert said and said[2] == f"vidclf fit --ckpt_path {run}", out
    epochs = int(said[1]) + 2
    assert vidclf(*said[2].split()[1:], "--trainer.max_epochs", str(epochs)) == 0
    logged = sorted({int(r["epoch"]) for r in read_csv(run / "metrics.csv") if r.get("val/acc")})
    assert logged == list(range(epochs))


def test_epochs_default_to_the_recipes_schedule_unless_steps_bound_the_run(tiny_data, tmp_path, capsys):
    fast = [*TINY, *QUIET, "--data.train", tiny_data / "train", "--trainer.limit_train_batches", "1"]
    assert vidclf("fit", *fast, "--trainer.default_root_dir", tmp_path / "a") == 0
    config = (tmp_path / "a" / "version_0" / "config.yaml").read_text()
    assert "max_epochs: 15" in config
    assert max(int(r["epoch"]) for r in read_csv(tmp_path / "a" / "version_0" / "metrics.csv")) == 14
    assert vidclf("fit", *fast, "--trainer.max_steps", "2", "--trainer.default_root_dir", tmp_path / "b") == 0
    assert max(int(r["step"]) for r in read_csv(tmp_path / "b" / "version_0" / "metrics.csv")) <= 2
    assert "max_epochs: null" in (tmp_path / "b" / "version_0" / "config.yaml").read_text()
    assert vidclf("fit", "--help") == 0
    assert "Default: 15 for fit, 100 for pretrain" in " ".join(capsys.readouterr().out.split())


def test_fit_help_puts_the_users_options_first(capsys):
    assert vidclf("fit", "--help") == 0
    lines = capsys.readouterr().out.splitlines()
    first = {key: next(i for i, line in enumerate(lines) if line.lstrip().startswith(key))
             for key in ("--model.backbone", "--data.train", "--ckpt_path", "--trainer.accelerator", "--optimizer")}
    assert first["--model.backbone"] < 40 and first["--model.backbone"] < first["--data.train"] \
        < first["--ckpt_path"] < first["--trainer.accelerator"] < first["--optimizer"]
    assert lines[0].startswith("usage: vidclf") and not lines[1].strip()  # a one-line usage


def test_shipped_recipes_are_named_from_anywhere(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no configs/ folder here, as after a pip install
    assert vidclf("fit", "--config", "x3d_s", "--data.num_clips", "2", "--print_config") == 0
    printed = capsys.readouterr().out
    assert "backbone: x3d_s" in printed and "default_root_dir: runs/x3d_s" in printed and "num_clips: 2" in printed
    assert vidclf("fit", "--config", "x3d_t", "--print_config") == 2
    err = capsys.readouterr().err
    assert "--config x3d_t: no such file, and not a config shipped with vidclf (" in err and "x3d_s" in err
    assert vidclf("fit", "--help") == 0
    assert "trainer/gpu" in capsys.readouterr().out


@pytest.mark.slow
def test_the_recipes_are_in_the_installed_package(tmp_path):
    """The wheel a `pip install` builds holds every shipped config --config NAME finds."""
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                           str(tmp_path), str(REPO)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    [wheel] = tmp_path.glob("vidclf-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {f"vidclf/configs/{p.relative_to(REPO / 'configs').as_posix()}" for p in (REPO / "configs").rglob("*.yaml")}
    assert shipped and shipped <= names and "vidclf/configs/recipes/x3d_s.yaml" in names


def test_extra_list_columns_are_kept_and_named_and_the_split_can_come_from_one(tiny_data, tmp_path, capsys):
    videos = sorted((tiny_data / "train").rglob("*.mp4")) + sorted((tiny_data / "val").rglob("*.mp4"))
    rows = [{"path": str(p), "label": p.parent.name, "comment": "ok",
             "upstream_split": "training" if "train" in p.parts[-3] else "validation"} for p in videos]
    listing = write_csv(tmp_path / "all.csv", rows)
    run = [*TINY, *QUIET, "--data.train", listing, "--trainer.max_epochs", "1"]
    assert vidclf("fit", *run, "--trainer.default_root_dir", tmp_path / "a") == 0
    err = capsys.readouterr().err
    assert err.count(f"vidclf: warning: {listing}: column(s) comment, upstream_split not read") == 1
    assert "--data.split_column NAME reads the split from another column" in err
    assert vidclf("fit", *run, "--data.split_column", "upstream_split", "--trainer.default_root_dir", tmp_path / "b") == 0
    assert "column(s) comment not read" in capsys.readouterr().err
    metrics = read_csv(tmp_path / "b" / "version_0" / "metrics.csv")
    assert any(r.get("val/acc") for r in metrics)  # the validation rows of the list were found
    assert vidclf("fit", *run, "--data.split_column", "fold", "--trainer.default_root_dir", tmp_path / "c") == 2
    assert "--data.split_column fold: no such column" in capsys.readouterr().err


def test_a_smaller_crop_brings_the_evaluation_size_with_it():
    from vidclf import VideoDataModule

    assert VideoDataModule(backbone="x3d_s").clip.resize == 182  # the backbone's: 182 for a 160 crop
    small = VideoDataModule(backbone="x3d_s", crop=112).clip
    assert (small.crop, small.resize, small.train_resize) == (112, 127, (112, 140))
    assert VideoDataModule(backbone="x3d_s", crop=112, resize=150).clip.resize == 150  # set: kept


def test_a_run_stopped_between_its_two_checkpoint_writes_resumes_from_the_newer(tiny_data, tmp_path, capsys):
    """Lightning writes best.ckpt, then last.ckpt: a kill between them leaves best.ckpt one save point newer
    (made here by putting the earlier last.ckpt back); `last` and the run folder resume from best.ckpt."""
    newest = ["--checkpoint.monitor", "epoch", "--checkpoint.mode", "max"]  # best.ckpt: every save point
    assert vidclf("fit", *TINY, *QUIET, *newest, "--data.train", tiny_data / "train", "--trainer.max_epochs", "1",
                  "--trainer.default_root_dir", tmp_path) == 0
    run = tmp_path / "version_0"
    earlier = (run / "checkpoints" / "last.ckpt").read_bytes()
    assert vidclf("fit", "--ckpt_path", run, "--trainer.max_epochs", "2") == 0
    (run / "checkpoints" / "last.ckpt").write_bytes(earlier)  # the state a kill after best.ckpt leaves
    capsys.readouterr()
    assert vidclf("fit", "--ckpt_path", "last", "--trainer.default_root_dir", tmp_path, "--trainer.max_epochs", "3") == 0
    assert f"resuming from {run / 'checkpoints' / 'best.ckpt'} (step 6)" in capsys.readouterr().err
    assert sorted({int(r["epoch"]) for r in read_csv(run / "metrics.csv")}) == [0, 1, 2]
    (run / "checkpoints" / "last.ckpt").unlink()  # killed before the first last.ckpt: best.ckpt alone
    (run / "checkpoints" / "best.ckpt").write_bytes(b"PK\x03\x04 cut short")  # ... and a file cut by the kill
    assert vidclf("fit", "--ckpt_path", run) == 2
    assert "no complete checkpoint in" in capsys.readouterr().err


@pytest.mark.slow
def test_a_run_killed_as_its_first_best_checkpoint_lands_resumes_with_last(tiny_data, tmp_path):
    """SIGKILL the moment best.ckpt appears (Lightning renames it into place whole, then writes last.ckpt):
    `--ckpt_path last` resumes from whichever complete checkpoint the run holds, and the run ends as asked."""
    args = ["fit", *TINY, *QUIET, "--data.train", tiny_data / "train", "--data.val", tiny_data / "val",
            "--trainer.default_root_dir", tmp_path]
    fit = subprocess.Popen([sys.executable, "-m", "vidclf", *map(str, args), "--trainer.max_epochs", "50"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    best = tmp_path / "version_0" / "checkpoints" / "best.ckpt"
    deadline = time.monotonic() + 180
    while not best.exists() and fit.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
    fit.send_signal(signal.SIGKILL)
    fit.wait()
    assert fit.returncode == -signal.SIGKILL and best.exists()
    assert vidclf(*args, "--ckpt_path", "last", "--trainer.max_epochs", "3") == 0
    assert sorted({int(r["epoch"]) for r in read_csv(tmp_path / "version_0" / "metrics.csv") if r.get("val/acc")}) \
        == [0, 1, 2]
