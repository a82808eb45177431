"""Options are checked before any work: out-of-range values, misspelt keys in files and on the
command line, conflicting options and odd checkpoints each give one `vidclf: error:` line."""

from __future__ import annotations

import pytest
import torch
import yaml

from conftest import QUIET, TINY, vidclf

TRAINER_INT_OR_FLOAT = ["limit_train_batches", "limit_val_batches", "limit_test_batches", "limit_predict_batches",
                        "overfit_batches", "val_check_interval", "gradient_clip_val"]


@pytest.mark.parametrize("args, expected", [
    (["fit", "--data.frames", "0"], "--data.frames must be > 0 (PositiveInt), got 0"),
    (["fit", "--data.rate", "-2"], "--data.rate must be > 0"),
    (["fit", "--data.crop", "0"], "--data.crop must be > 0"),
    (["fit", "--model.lr", "-0.1"], "--model.lr must be > 0 (PositiveFloat), got -0.1"),
    (["fit", "--model.lr", "fast"], "--model.lr expects a number (PositiveFloat), got 'fast'"),
    (["fit", "--model.dropout", "1.5"], "--model.dropout must be >= 0 and <= 1"),
    (["fit", "--data.num_workers", "-1"], "--data.num_workers must be >= 0 (NonNegativeInt), got -1"),
    (["fit", "--data.batch_size", "0"], "--data.batch_size must be > 0 (PositiveInt), got 0"),
    (["fit", "--data.batch_size", "2.5"], "--data.batch_size expects a whole number"),
    (["fit", "--data.max_failed", "5"], "--data.max_failed must be >= 0 and <= 1 (ClosedUnitInterval), got 5"),
    (["fit", "--data.val_split", "1"], "--data.val_split must be >= 0 and < 1"),
    (["fit", "--data.num_clips", "0"], "--data.num_clips must be > 0"),
    (["predict", "--top_k", "0"], "--top_k must be > 0 (PositiveInt), got 0"),
    (["predict", "--top_k", "-1"], "--top_k must be > 0"),
    (["predict", "--window", "0"], "--window must be > 0"),
    (["export", "--tolerance", "-1"], "--tolerance must be >= 0 (NonNegativeFloat), got -1"),
    # the third rewrite of jsonargparse's wording (cli/parser.py): a value of the wrong type
    (["fit", "--model.compile", "maybe"], "--model.compile expects bool, got 'maybe'"),
    (["fit", "--data.train_resize", "abc"], "--data.train_resize expects tuple, got 'abc'"),
    (["fit", "--model.learning_rate", "0.1"], "did you mean --model.lr?"),
    (["fit", "--trainer.max_epoch", "3"], "did you mean --trainer.max_epochs?"),
    (["fit", "--data.train", "TRAIN", "--data.val", "VAL", "--data.val_split", "0.2"],
     "--data.val VAL and --data.val_split 0.2 both give validation videos; pass one of them"),
    (["fit", "--data.train", "TRAIN", "--data.train_resize", "[48, 32]"], "give [min, max] with min <= max"),
    (["validate", "--ckpt_path", "TEXT"], "--ckpt_path TEXT: not a checkpoint but a text file"),
    (["validate", "--ckpt_path", "VIDEO"], "--ckpt_path VIDEO: not a checkpoint but a video file"),
])
def test_misuse_is_one_line_before_any_work(args, expected, tiny_data, tmp_path, capsys):
    (tmp_path / "notes.ckpt").write_text("epoch 3 was best\n")
    names = {"TRAIN": str(tiny_data / "train"), "VAL": str(tiny_data / "val"), "TEXT": str(tmp_path / "notes.ckpt"),
             "VIDEO": str(tiny_data / "val/rising/rising.mp4")}
    code = vidclf(*[names.get(a, a) for a in args], *QUIET, "--trainer.default_root_dir", tmp_path / "runs")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("vidclf: error: "), err
    for name, value in names.items():
        expected = expected.replace(name, value)
    assert expected in err[0], err
    assert not (tmp_path / "runs").exists()  # refused before any work


@pytest.mark.parametrize("key", TRAINER_INT_OR_FLOAT)
def test_trainer_int_or_float_options_keep_an_int(key, tmp_path, capsys):
    """`1` means one batch (an int) for Lightning, `1.0` all of them: the shell and YAML keep the type."""
    (tmp_path / "c.yaml").write_text(f"trainer:\n  {key}: 2\n")
    for args, value in ((["--trainer." + key, "1"], 1), (["--trainer." + key, "1.0"], 1.0),
                        (["--trainer." + key, "0.5"], 0.5), (["--config", tmp_path / "c.yaml"], 2)):
        assert vidclf("fit", *args, "--print_config") == 0
        got = yaml.safe_load(capsys.readouterr().out)["trainer"][key]
        assert got == value and type(got) is type(value), (args, got)


def test_limit_batches_one_means_one_batch(tiny_data, tmp_path):
    assert vidclf("fit", *TINY, *QUIET, "--data.train", tiny_data / "train", "--data.val", tiny_data / "val",
                  "--trainer.max_epochs", "2", "--trainer.limit_train_batches", "1", "--trainer.limit_val_batches", "1",
                  "--trainer.default_root_dir", tmp_path) == 0
    checkpoint = torch.load(tmp_path / "version_0/checkpoints/last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 2  # 3 batches per epoch, one used: 2 steps in 2 epochs


def test_config_file_errors_name_the_file_and_every_bad_key(tmp_path, capsys):
    config = tmp_path / "mine.yaml"
    config.write_text("model:\n  learning_rate: 0.01\n  backbone: x3d_xs\ndata:\n  batch: 4\n"
                      "trainer:\n  max_epoch: 3\n  max_steps: 5\n")
    assert vidclf("fit", "--config", config, "--print_config") == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"vidclf: error: {config}: unknown option(s) model.learning_rate (did you mean model.lr?), "
                   f"data.batch (did you mean data.batch_size?), trainer.max_epoch (did you mean "
                   f"trainer.max_epochs?); fix or remove them (vidclf fit --help lists every option)")
    fragment = tmp_path / "model.yaml"  # a fragment for one option group: keys relative to it
    fragment.write_text("lr: 0.01\nwarmup: 2\n")
    assert vidclf("fit", "--model", fragment, "--print_config") == 2
    assert "model.warmup (did you mean model.warmup_epochs?)" in capsys.readouterr().err
    broken = tmp_path / "broken.yaml"
    broken.write_text("model:\n  lr: 0.01\n  x: [1, 2\ndata:\n  crop: 64\n")
    assert vidclf("fit", "--config", broken, "--print_config") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"vidclf: error: {broken}: not valid YAML at line ") and \
        "unicode string" not in err[0], err


def test_options_a_checkpoint_overrides_are_named(trained, tiny_data, tmp_path, capsys):
    assert vidclf("validate", *QUIET, "--ckpt_path", trained / "checkpoints/best.ckpt", "--data.val",
                  tiny_data / "val", "--model.backbone", "r3d_18", "--model.dropout", "0.1",
                  "--trainer.default_root_dir", tmp_path) == 0
    err = capsys.readouterr().err
    assert "vidclf: warning: ignored --model.backbone r3d_18, --model.dropout 0.1: the model comes from " \
           f"--ckpt_path {trained / 'checkpoints/best.ckpt'} (backbone x3d_xs)" in err


def test_val_split_with_a_dataset_root_that_has_val_is_refused(tiny_data, tmp_path, capsys):
    assert vidclf("fit", *TINY, "--data.train", tiny_data, "--data.val_split", "0.2",
                  "--trainer.default_root_dir", tmp_path / "runs") == 2
    assert "holds its own validation videos" in capsys.readouterr().err


def test_run_stopped_before_training_leaves_no_run_folder(tiny_data, tmp_path, capsys):
    """Too many bad files found by the scan, or a class mismatch: nothing trained, so no run folder; the
    error names the first bad file and `vidclf data` lists them all."""
    train = tmp_path / "train"
    for cls in ("a", "b"):
        (train / cls).mkdir(parents=True)
        (train / cls / "bad.mp4").write_bytes(b"\x00" * 100)
        (train / cls / "ok.mp4").write_bytes((tiny_data / "val/rising/rising.mp4").read_bytes())
    assert vidclf("fit", *TINY, *QUIET, "--data.train", train, "--trainer.default_root_dir", tmp_path / "r1") == 2
    err = capsys.readouterr().err
    assert "2 of 4 train videos cannot be decoded" in err and "bad.mp4" in err and "vidclf data lists them all" in err
    assert not (tmp_path / "r1").exists() or not any((tmp_path / "r1").iterdir())
    other = tmp_path / "other" / "walking"
    other.mkdir(parents=True)
    (other / "w.mp4").write_bytes((tiny_data / "val/rising/rising.mp4").read_bytes())
    assert vidclf("fit", *TINY, *QUIET, "--data.train", tiny_data / "train", "--data.val", tmp_path / "other",
                  "--trainer.default_root_dir", tmp_path / "r2") == 2
    assert not (tmp_path / "r2").exists() or not any((tmp_path / "r2").iterdir())
