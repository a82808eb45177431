"""Hugging Face video classifiers (hf:) and timm image models per frame (timm:) through the whole
workflow, from tiny models of the real architectures saved to local folders (save_pretrained), the
same loading code a hub download goes through; nothing touches the network."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import QUIET, assert_same_rows, predict_rows, read_csv, run_example, vidclf
from tiny_models import tiny_hf
from vidclf.errors import VidclfError
from vidclf.models.backbones import build_backbone, get_spec

KINDS = ["videomae", "timesformer", "vivit", "vjepa2"]
DATA = ["--data.batch_size", "4", "--data.num_workers", "0", "--data.num_clips", "2"]


@pytest.fixture(scope="session")
def hf_models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hf")
    return {kind: tiny_hf(kind, root / kind) for kind in KINDS}


def test_input_comes_from_the_checkpoint_files(hf_models):
    """Frames and sizes from config and preprocessor files; normalisation equal to the processor's own
    steps, including ViViT's rescale to [-1, 1] followed by mean/std 0.5."""
    from transformers import VivitImageProcessor

    for kind, folder in hf_models.items():
        spec = get_spec(f"hf:{folder}")
        assert (spec.frames, spec.crop, spec.resize) == (4, 32, 36), kind
    assert get_spec(f"hf:{hf_models['videomae']}").mean == pytest.approx((0.485, 0.456, 0.406))  # not 0.5
    assert get_spec(f"hf:{hf_models['timesformer']}").mean == pytest.approx((0.45,) * 3)
    spec = get_spec(f"hf:{hf_models['vivit']}")
    pixels = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3)).astype(np.float32)
    processor = VivitImageProcessor.from_pretrained(hf_models["vivit"])
    expected = ((pixels * processor.rescale_factor - 1) - np.array(processor.image_mean)) / np.array(processor.image_std)
    ours = (pixels / 255 - np.array(spec.mean)) / np.array(spec.std)
    np.testing.assert_allclose(ours, expected, atol=1e-5)


@pytest.mark.parametrize("kind", [pytest.param(k, marks=pytest.mark.slow) if k in ("vjepa2", "vivit", "timesformer") else k
                                  for k in KINDS])
def test_hf_model_through_fit_validate_predict_export(kind, hf_models, tiny_data, tmp_path):
    """fit from the local checkpoint, then every command from the vidclf checkpoint alone (the
    folder is gone), exports in all four formats agreeing with the checkpoint."""
    folder = shutil.copytree(hf_models[kind], tmp_path / "model")
    runs = tmp_path / "runs"
    assert vidclf("fit", "--model.backbone", f"hf:{folder}", "--model.pretrained", "true", *DATA, *QUIET,
                  "--data.train", tiny_data / "train", "--data.val", tiny_data / "val", "--trainer.max_epochs", "1",
                  "--trainer.default_root_dir", runs) == 0
    shutil.rmtree(folder)
    ckpt = runs / "version_0/checkpoints/last.ckpt"
    assert vidclf("validate", *QUIET, "--ckpt_path", ckpt, "--data.val", tiny_data / "val",
                  "--trainer.default_root_dir", runs) == 0
    out = tmp_path / "p.csv"
    assert vidclf("predict", *QUIET, "--ckpt_path", ckpt, "--data.predict", tiny_data / "val" / "rising",
                  "--output", out) == 0
    assert [r["status"] for r in read_csv(out)] == ["ok"] * 5
    # OpenVINO and ONNX Runtime give torch's rows
    reference = predict_rows(ckpt, tiny_data / "val" / "rising", tmp_path / "torch.csv", "--runtime", "torch")
    for runtime in ("openvino", "onnxruntime") if kind == "videomae" else ("openvino",):
        assert_same_rows(predict_rows(ckpt, tiny_data / "val" / "rising", tmp_path / f"{runtime}.csv", "--runtime",
                                      runtime), reference)
    if kind == "videomae":  # timeline windows through the same backbone
        assert vidclf("predict", *QUIET, "--ckpt_path", ckpt, "--data.predict", tiny_data / "val/rising/rising.mp4",
                      "--output", tmp_path / "t.csv", "--timeline", tmp_path / "w.csv", "--window", "0.4") == 0
        assert len(read_csv(tmp_path / "w.csv")) >= 2
    for fmt, suffix in (("onnx", ".onnx"), ("openvino", ".xml"), ("torchscript", ".pt"), ("pt2", ".pt2")):
        target = tmp_path / f"model{suffix}"
        assert vidclf("export", *QUIET, "--ckpt_path", ckpt, "--format", fmt, "--output", target,
                      "--data.predict", tiny_data / "val/rising/rising.mp4") == 0, fmt
        info = json.loads(Path(f"{target}.json").read_text())
        assert info["check"]["max_abs_diff"] <= 1e-3 and info["backbone"] == f"hf:{folder}"
    # the standalone ONNX example (numpy, PyAV, onnxruntime; vidclf not importable) scores as predict does
    video = tiny_data / "val/rising/rising.mp4"
    row = read_csv(out)[[Path(r["path"]).name for r in read_csv(out)].index("rising.mp4")]
    label, prob = run_example("predict_onnx.py", tmp_path / "model.onnx", video)[0].split("\t")
    assert label == row["top1_label"] and float(prob) == pytest.approx(float(row["top1_prob"]), abs=1e-4)


@pytest.mark.parametrize("kind", ["videomae", "vjepa2"])
def test_pretraining_only_checkpoints_get_a_fresh_classifier(kind, tmp_path):
    folder = tiny_hf(kind, tmp_path / kind, pretraining=True)
    net = build_backbone(f"hf:{folder}", num_classes=3, pretrained=True).eval()
    with torch.no_grad():
        assert net(torch.randn(2, 3, 4, 32, 32)).shape == (2, 3)


def test_every_saved_tensor_loads_bit_exact_or_the_load_fails(hf_models, tmp_path):
    """A tensor the loader does not pair with the model (as q_bias / v_bias once were) is an error."""
    from safetensors.torch import load_file, save_file

    folder = shutil.copytree(hf_models["videomae"], tmp_path / "videomae")
    weights = load_file(folder / "model.safetensors")
    assert any(k.endswith("q_bias") for k in weights)  # the keys transformers 5 renames on load
    net = build_backbone(f"hf:{folder}", num_classes=3, pretrained=True)
    loaded = net.model.state_dict()
    assert torch.equal(loaded["videomae.encoder.layer.0.attention.attention.query.bias"],
                       weights["videomae.encoder.layer.0.attention.attention.q_bias"])
    renamed = {k.replace("q_bias", "query_bias_old") if "layer.1." in k else k: v for k, v in weights.items()}
    save_file(renamed, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(VidclfError, match="did not load as saved.*query_bias_old"):
        build_backbone(f"hf:{folder}", num_classes=3, pretrained=True)


def test_bad_hf_and_timm_names_are_one_line(tiny_data, tmp_path, monkeypatch, capsys):
    from transformers import BertConfig

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8).save_pretrained(tmp_path / "bert")
    (tmp_path / "empty").mkdir()
    cases = [(f"hf:{tmp_path / 'bert'}", "is a bert model, not a video classifier"),
             (f"hf:{tmp_path / 'empty'}", "a folder without config.json"),
             (f"hf:{tmp_path / 'missing'}", "no such folder"),
             ("hf:someone/videomae-never-downloaded", "not in the local Hugging Face cache"),
             ("videomae_bb", "unknown backbone 'videomae_bb'; choose one of"),
             ("timm:convnext_tinny", "timm has no such model; did you mean convnext_tiny"),
             ("timm:test_vit", "class folder holds no videos")]  # a valid name: on to the data
    (tmp_path / "empty" / "a").mkdir()
    for name, expected in cases:
        code = vidclf("fit", "--model.backbone", name, "--data.train", tmp_path / "empty")
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and expected in err[0], (name, err)
    assert vidclf("fit", "--model.backbone", "x3d_xs", "--model.temporal", "conv", "--data.train",
                  tiny_data / "train", "--trainer.default_root_dir", tmp_path / "runs") == 2
    assert "is for image models per frame" in capsys.readouterr().err


def test_timm_model_per_frame_through_fit_predict_export(tiny_data, tmp_path):
    runs = tmp_path / "runs"
    common = ["--data.frames", "4", "--data.crop", "64", "--data.resize", "64", *DATA, *QUIET]
    assert vidclf("fit", "--model.backbone", "timm:test_convnext", "--model.temporal", "conv", *common,
                  "--data.train", tiny_data / "train", "--data.val", tiny_data / "val", "--trainer.max_epochs", "1",
                  "--trainer.default_root_dir", runs) == 0
    ckpt = runs / "version_0/checkpoints/last.ckpt"
    assert vidclf("predict", *QUIET, "--ckpt_path", ckpt, "--data.predict", tiny_data / "val" / "rising",
                  "--output", tmp_path / "p.csv", "--runtime", "openvino") == 0
    assert_same_rows(read_csv(tmp_path / "p.csv"),  # OpenVINO against torch
                     predict_rows(ckpt, tiny_data / "val" / "rising", tmp_path / "torch.csv", "--runtime", "torch"))
    for fmt, suffix in (("onnx", ".onnx"), ("openvino", ".xml"), ("torchscript", ".pt"), ("pt2", ".pt2")):
        assert vidclf("export", *QUIET, "--ckpt_path", ckpt, "--format", fmt, "--output", tmp_path / f"m{suffix}") == 0


def test_timm_spec_comes_from_its_pretrained_config():
    spec = get_spec("timm:convnext_tiny.in12k_ft_in1k")
    assert (spec.crop, spec.resize, spec.mean) == (224, 236, (0.485, 0.456, 0.406))  # crop_pct 0.95
    assert get_spec("tsn_convnext_t") == spec


def test_learned_temporal_head_tells_rising_from_falling_where_the_mean_cannot():
    """Rising and falling clips hold the same kind of frames in opposite order: averaging frame
    features cannot separate them; the temporal convolution learns to. The image model stays as
    built (a frozen feature extractor), so only the heads train, on its features."""
    from vidclf.synthetic import render_motion

    rng = np.random.default_rng(0)
    n, k = 384, 256  # clips, of which training
    clips = [torch.from_numpy(render_motion(("rising", "falling")[i % 2], rng, 16, 64)[::2]) for i in range(n)]
    x = torch.stack(clips).permute(0, 4, 1, 2, 3).float() / 255 - 0.5  # (N, C, 8, 64, 64)
    y = torch.arange(n) % 2
    accuracy = {}
    for temporal in ("mean", "conv"):
        torch.manual_seed(0)
        net = build_backbone("timm:test_convnext", num_classes=2, dropout=0.0, temporal=temporal).eval()
        with torch.no_grad():
            frames = net.image(x.transpose(1, 2).flatten(0, 1)).view(n, 8, -1)  # (N, T, D), as in forward
            assert torch.allclose(net(x[:2]), net.head(net.temporal(frames[:2]).mean(1)), atol=1e-4)
        frames = (frames - frames.mean((0, 1))) / (frames.std((0, 1)) + 1e-6)
        heads = [p for m in (net.temporal, net.head) for p in m.parameters()]
        optimizer = torch.optim.AdamW(heads, lr=3e-3, weight_decay=0.1)
        for _ in range(400):
            loss = torch.nn.functional.cross_entropy(net.head(net.temporal(frames[:k]).mean(1)), y[:k])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            held_out = net.head(net.temporal(frames[k:]).mean(1)).argmax(1)
            accuracy[temporal] = float((held_out == y[k:]).float().mean())
    assert accuracy["conv"] >= 0.85 and accuracy["conv"] - accuracy["mean"] >= 0.3, accuracy


def test_layer_decay_gives_deeper_layers_higher_rates(hf_models):
    from vidclf.models.classifier import VideoClassifier

    model = VideoClassifier(backbone=f"hf:{hf_models['videomae']}", class_names=["a", "b"], layer_decay=0.5, lr=1.0)
    optimizer = model.configure_optimizers()["optimizer"]
    rate = {id(p): g["initial_lr"] for g in optimizer.param_groups for p in g["params"]}  # before warmup
    named = dict(model.named_parameters())
    embed = rate[id(named["net.model.videomae.embeddings.patch_embeddings.projection.weight"])]
    first = rate[id(next(p for n, p in named.items() if ".layer.0." in n))]
    second = rate[id(next(p for n, p in named.items() if ".layer.1." in n))]
    head = rate[id(named["net.model.classifier.1.weight"])]
    assert embed < first < second < head == 1.0 and second == pytest.approx(2 * first)


@pytest.mark.slow
def test_ddp_with_a_hf_model_on_two_processes(hf_models, tiny_data, tmp_path):
    done = subprocess.run([sys.executable, "-m", "vidclf", "fit", "--model.backbone", f"hf:{hf_models['videomae']}",
                           "--model.pretrained", "true", *DATA, *QUIET, "--data.train", str(tiny_data / "train"),
                           "--data.val", str(tiny_data / "val"), "--trainer.max_epochs", "1",
                           "--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp",
                           "--trainer.default_root_dir", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert [p.name for p in tmp_path.iterdir()] == ["version_0"]
    assert any(r.get("val/acc") for r in read_csv(tmp_path / "version_0/metrics.csv"))


def test_fixed_position_embeddings_stop_with_the_input_or_take_other_sizes(hf_models, tiny_data, tmp_path, capsys):
    """VideoMAE's positional embeddings are sized for its checkpoint's input: another frame count is
    one line naming that input. V-JEPA 2 (rotary embeddings) runs at other frame counts and sizes."""
    assert vidclf("fit", "--model.backbone", f"hf:{hf_models['videomae']}", "--data.frames", "8",
                  "--data.train", tiny_data / "train", "--trainer.default_root_dir", tmp_path) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "takes exactly 4 frames at 32x32" in err[0], err
    net = build_backbone(f"hf:{hf_models['vjepa2']}", num_classes=3, pretrained=True).eval()
    with torch.no_grad():
        assert net(torch.randn(1, 3, 8, 48, 48)).shape == (1, 3)
