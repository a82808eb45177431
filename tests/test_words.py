"""Before labels: classes from words (X-CLIP, CLIP, SigLIP through transformers, tiny random models with a
character tokenizer, saved offline), `vidclf embed` and `vidclf search`, through the real CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from conftest import QUIET, TINY, assert_same_rows, predict_rows, read_csv, vidclf
from tiny_models import tiny_words

CLASSES = "[falling, rising, sideways]"
VIEW = ["--data.num_clips", "2", "--data.batch_size", "4", "--data.num_workers", "0"]
ONE_VIEW = [*VIEW, "--data.num_clips", "1"]  # a kNN vote on a video's one embedding (views would average votes)


@pytest.fixture(scope="module")
def words_models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("words")
    return {kind: tiny_words(kind, root / kind) for kind in ("xclip", "clip", "siglip")}


def zero_shot(folder: Path, *more: str) -> list[str]:
    return ["--model.backbone", f"hf:{folder}", "--model.pretrained", "true", *more]


def transformers_logits(kind: str, folder: Path, x: torch.Tensor, texts: list[str]) -> torch.Tensor:
    """The logits transformers itself gives: X-CLIP's logits_per_video; CLIP / SigLIP's image-text
    logits of every frame, averaged over frames."""
    import transformers as tf

    model = {"xclip": tf.XCLIPModel, "clip": tf.CLIPModel, "siglip": tf.SiglipModel}[kind].from_pretrained(folder).eval()
    padding = {"padding": "max_length", "max_length": 32} if kind == "siglip" else {"padding": True}
    tokens = tf.AutoTokenizer.from_pretrained(folder)(texts, return_tensors="pt", truncation=True, **padding)
    tokens = {k: v for k, v in tokens.items() if k in ("input_ids", "attention_mask")}
    with torch.no_grad():
        if kind == "xclip":
            return model(pixel_values=x.transpose(1, 2), **tokens).logits_per_video
        b, c, t, h, w = x.shape
        frames = x.transpose(1, 2).reshape(b * t, c, h, w)
        return model(pixel_values=frames, **tokens).logits_per_image.view(b, t, -1).mean(1)


@pytest.mark.parametrize("kind", ["xclip", "clip", "siglip"])
def test_zero_shot_logits_equal_transformers_own(kind, words_models):
    from vidclf.models.backbones import get_spec
    from vidclf.models.classifier import VideoClassifier

    folder = words_models[kind]
    spec = get_spec(f"hf:{folder}")
    processor = json.loads((folder / "preprocessor_config.json").read_text())
    assert spec.crop == 32 and spec.mean == pytest.approx(tuple(processor["image_mean"]))  # the checkpoint's own
    model = VideoClassifier(f"hf:{folder}", classes=["jumping_jacks", "push ups", "waving"], pretrained=True,
                            prompt="a video of {}.").eval()
    x = torch.randn(2, 3, spec.frames, 32, 32)
    with torch.no_grad():
        mine = model(x)
    texts = ["a video of jumping jacks.", "a video of push ups.", "a video of waving."]  # _ read as a space
    torch.testing.assert_close(mine, transformers_logits(kind, folder, x, texts), atol=1e-5, rtol=0)


def test_several_prompts_average_their_normalised_text_vectors(words_models):
    import transformers as tf

    from vidclf.models.backbones.words import text_vectors
    from vidclf.models.classifier import VideoClassifier

    folder = words_models["clip"]
    prompts = ["a video of {}.", "someone {}"]
    model = VideoClassifier(f"hf:{folder}", classes=["waving", "running"], pretrained=True, prompt=prompts)
    clip = tf.CLIPModel.from_pretrained(folder).eval()
    vectors = [torch.nn.functional.normalize(text_vectors(clip, "clip", folder, ["waving", "running"], [p], "t"), dim=-1)
               for p in prompts]
    expected = clip.logit_scale.exp() * torch.nn.functional.normalize(torch.stack(vectors).mean(0), dim=-1)
    torch.testing.assert_close(model.net.head[1].weight.detach(), expected.detach(), atol=1e-6, rtol=0)


def test_zero_shot_predict_validate_export_without_training(words_models, tiny_data, tmp_path):
    folder = words_models["xclip"]
    model = zero_shot(folder, "--model.classes", CLASSES)
    torch_rows = predict_rows(None, tiny_data / "val", tmp_path / "torch.csv", *model, *VIEW, "--runtime", "torch")
    assert len(torch_rows) == 15 and {r["status"] for r in torch_rows} == {"ok"}
    assert {r["label"] for r in torch_rows} <= {"falling", "rising", "sideways"}
    ov_rows = predict_rows(None, tiny_data / "val", tmp_path / "ov.csv", *model, *VIEW, "--runtime", "openvino")
    assert_same_rows(ov_rows, torch_rows)
    # the classes from a file, one per line: the same model
    (tmp_path / "classes.txt").write_text("falling\nrising\n\nsideways\n")
    file_rows = predict_rows(None, tiny_data / "val", tmp_path / "file.csv", *zero_shot(folder), "--model.classes",
                             tmp_path / "classes.txt", *VIEW, "--runtime", "torch")
    assert_same_rows(file_rows, torch_rows, tolerance=1e-6)
    # zero-shot accuracy on labelled videos
    root = tmp_path / "runs"
    assert vidclf("validate", *QUIET, *model, *VIEW, "--data.val", tiny_data / "val",
                  "--trainer.default_root_dir", root) == 0
    metrics = read_csv(next((root / "validate").iterdir()) / "metrics.csv")
    correct = sum(r["label"] == Path(r["path"]).parent.name for r in torch_rows) / 15
    assert float(metrics[-1]["val/acc"]) == pytest.approx(correct)
    # an export takes clips like any other; its rows equal the checkpoint-free model's
    assert vidclf("export", *QUIET, *model, "--output", tmp_path / "zs.onnx", "--data.predict",
                  tiny_data / "val" / "rising", *VIEW) == 0
    onnx_rows = predict_rows(None, tiny_data / "val", tmp_path / "onnx.csv", "--model_file", tmp_path / "zs.onnx", *VIEW)
    assert_same_rows(onnx_rows, torch_rows)


def test_zero_shot_multi_label_and_timeline(words_models, tiny_data, tmp_path):
    model = zero_shot(words_models["siglip"], "--model.classes", CLASSES)
    rows = predict_rows(None, tiny_data / "val" / "rising", tmp_path / "ml.csv", *model, *VIEW, "--data.multi_label",
                        "true", "--model.threshold", "0.1", "--runtime", "torch",
                        "--timeline", tmp_path / "timeline.csv", "--window", "0.5")
    assert {"prob_falling", "prob_rising", "prob_sideways"} <= set(rows[0])
    for row in rows:  # a sigmoid per class (SigLIP's own scoring), labels at or above the threshold
        labels = row["labels"].split(";") if row["labels"] else []
        assert labels == sorted([c for c in ("falling", "rising", "sideways") if float(row[f"prob_{c}"]) >= 0.1],
                                key=lambda c: -float(row[f"prob_{c}"]))
    assert any(row["labels"] for row in rows) and any(float(row["prob_sideways"]) < 0.1 for row in rows)
    windows = read_csv(tmp_path / "timeline.csv")
    assert len(windows) > len(rows) and {float(w["end"]) - float(w["start"]) for w in windows} == {0.5}


def test_fit_starts_from_the_words_and_freeze_trains_only_the_head(words_models, tiny_data, tmp_path):
    folder = words_models["clip"]
    root = tmp_path / "runs"
    data = ["--data.train", tiny_data / "train", "--data.val", tiny_data / "val", *VIEW]
    assert vidclf("validate", *QUIET, *zero_shot(folder, "--model.classes", CLASSES), *VIEW, "--data.val",
                  tiny_data / "val", "--trainer.default_root_dir", root) == 0
    before = read_csv(next((root / "validate").iterdir()) / "metrics.csv")[-1]
    # the first validation of fit (a step too small to move anything) is the zero-shot one
    assert vidclf("fit", *QUIET, *zero_shot(folder), "--model.finetune", "freeze", "--model.lr", "1e-12",
                  "--model.warmup_epochs", "0", *data, "--trainer.max_epochs", "1", "--trainer.default_root_dir", root) == 0
    run = root / "version_0"
    assert vidclf("validate", *QUIET, "--ckpt_path", run, "--data.val", tiny_data / "val", *VIEW) == 0
    after = read_csv(next((run / "validate").iterdir()) / "metrics.csv")[-1]
    for metric in ("val/acc", "val/loss"):
        assert float(after[metric]) == pytest.approx(float(before[metric]), abs=1e-4)
    # a real step: the head moves, the frozen vision tower stays as loaded
    assert vidclf("fit", *QUIET, *zero_shot(folder), "--model.finetune", "freeze", "--model.lr", "0.05", *data,
                  "--trainer.max_epochs", "1", "--trainer.default_root_dir", tmp_path / "runs2") == 0
    state = torch.load(tmp_path / "runs2" / "version_0" / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    from vidclf.models.classifier import VideoClassifier

    start = VideoClassifier(f"hf:{folder}", class_names=["falling", "rising", "sideways"], pretrained=True).state_dict()
    vision = [k for k in state if k.startswith("net.embedder.")]
    assert vision and all(torch.equal(state[k], start[k]) for k in vision)
    assert not torch.equal(state["net.head.1.weight"], start["net.head.1.weight"])


def test_embed_writes_every_input_with_its_status(trained, tiny_data, tmp_path):
    videos = tmp_path / "videos"
    shutil.copytree(tiny_data / "val" / "rising", videos)
    (videos / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    (videos / "notes.txt").write_text("not a video")
    ckpt = trained / "checkpoints" / "best.ckpt"
    out = tmp_path / "emb.parquet"
    assert vidclf("embed", *QUIET, "--ckpt_path", ckpt, "--data.predict", videos, "--output", out,
                  "--data.num_workers", "0", "--runtime", "torch") == 0
    table = pq.read_table(out)
    rows = table.to_pylist()
    assert len(rows) == 7 and str(table.schema.field("embedding").type).startswith("fixed_size_list<element: float>")
    status = {Path(r["path"]).name: r["status"] for r in rows}
    assert status["broken.mp4"].startswith("error") and status["notes.txt"].startswith("ignored")
    assert all(r["embedding"] is None for r in rows if r["status"] != "ok")
    # the features before the head: the checkpoint's head on them gives predict's probabilities
    from vidclf.models.backbones import classifier
    from vidclf.models.classifier import VideoClassifier

    model = VideoClassifier.load_from_checkpoint(ckpt)
    linear = [m for m in classifier(model.net).modules() if isinstance(m, torch.nn.Linear)][-1]
    predicted = {Path(r["path"]).name: r for r in predict_rows(ckpt, videos, tmp_path / "p.csv", "--runtime", "torch")}
    for row in rows:
        if row["status"] == "ok":
            probs = linear(torch.tensor(row["embedding"])).softmax(-1)  # x3d: 2 views, averaged in feature space
            assert model.class_names[int(probs.argmax())] == predicted[Path(row["path"]).name]["label"]
    assert vidclf("embed", *QUIET, "--ckpt_path", ckpt, "--data.predict", videos, "--output", out) == 2  # exists
    # .npy with its index, and one vector per window
    npy = tmp_path / "emb.npy"
    assert vidclf("embed", *QUIET, "--ckpt_path", ckpt, "--data.predict", videos, "--output", npy, "--window", "0.4",
                  "--data.num_workers", "0") == 0
    index = read_csv(tmp_path / "emb.csv")
    vectors = np.load(npy)
    ok = [r for r in index if r["status"] == "ok"]
    assert len(ok) == len(vectors) > 5 and [int(r["row"]) for r in ok] == list(range(len(vectors)))
    assert {round(float(r["end"]) - float(r["start"]), 3) for r in ok} == {0.4}


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["openvino", "onnxruntime"])
def test_embed_in_a_runtime_gives_torchs_vectors(runtime, trained, tiny_data, tmp_path):
    videos = tiny_data / "val" / "rising"
    vectors = {}
    for name in ("torch", runtime):  # the features converted: the same vectors
        assert vidclf("embed", *QUIET, "--ckpt_path", trained, "--data.predict", videos, "--output",
                      tmp_path / f"{name}.parquet", "--data.num_workers", "0", "--runtime", name) == 0
        vectors[name] = pq.read_table(tmp_path / f"{name}.parquet").to_pylist()
    assert [r["status"] for r in vectors[runtime]] == [r["status"] for r in vectors["torch"]] == ["ok"] * 5
    for mine, theirs in zip(vectors["torch"], vectors[runtime]):
        assert theirs["embedding"] == pytest.approx(mine["embedding"], abs=1e-4)


def test_embed_and_search_by_words_and_by_a_video(words_models, tiny_data, tmp_path, capsys):
    folder = words_models["clip"]
    out = tmp_path / "emb.parquet"
    assert vidclf("embed", *QUIET, *zero_shot(folder, "--model.classes", CLASSES, "--model.prompt", "{}"),
                  "--data.predict", tiny_data / "val", "--output", out, *VIEW) == 0
    classes = {r["class"]: torch.tensor(r["embedding"]) for r in pq.read_table(tmp_path / "emb.classes.parquet").to_pylist()}
    rows = [r for r in pq.read_table(out).to_pylist() if r["status"] == "ok"]
    vectors = torch.nn.functional.normalize(torch.tensor([r["embedding"] for r in rows]), dim=-1)
    capsys.readouterr()
    assert vidclf("search", out, "rising", "--prompt", "{}", "--top_k", "3", "--output", tmp_path / "hits.csv") == 0
    hits = read_csv(tmp_path / "hits.csv")
    expected = (vectors @ classes["rising"]).sort(descending=True)
    assert [float(h["score"]) for h in hits] == pytest.approx(expected.values[:3].tolist(), abs=1e-4)
    assert [h["path"] for h in hits] == [rows[i]["path"] for i in expected.indices[:3].tolist()]
    assert hits[0]["path"] in capsys.readouterr().out
    like = rows[0]["path"]
    assert vidclf("search", out, "--like", like, "--top_k", "2", "--output", tmp_path / "like.csv") == 0
    near = read_csv(tmp_path / "like.csv")
    assert like not in [h["path"] for h in near] and len(near) == 2
    assert float(near[0]["score"]) == pytest.approx(float((vectors[1:] @ vectors[0]).max()), abs=1e-4)


def test_embed_of_a_backbone_without_a_checkpoint(tiny_data, tmp_path):
    out = tmp_path / "emb.parquet"
    assert vidclf("embed", *QUIET, *TINY, "--data.predict", tiny_data / "val" / "rising", "--output", out) == 2
    assert not out.exists()


def test_bad_words_are_one_line(words_models, trained, tiny_data, tmp_path, capsys):
    folder = words_models["xclip"]
    videos = ["--data.predict", tiny_data / "val" / "rising", "--output", tmp_path / "p.csv"]
    cases = [
        ([*TINY, "--model.classes", CLASSES, "--model.pretrained", "true"], "has no text tower"),
        ([*zero_shot(folder, "--model.classes", "[a, b, a]")], "names a more than once"),
        ([*zero_shot(folder, "--model.classes", "[a, '']")], "is empty"),
        ([*zero_shot(folder, "--model.classes", CLASSES, "--model.prompt", "a video")], "needs one {}"),
        ([*zero_shot(folder, "--model.classes", tmp_path / "missing.txt")], "no such file"),
        ([*TINY, "--data.classes", CLASSES], "predict needs a trained model"),
        (["--model.backbone", f"hf:{folder}", "--model.classes", CLASSES], "predict needs a trained model"),
    ]
    for options, message in cases:
        capsys.readouterr()
        assert vidclf("predict", *QUIET, *options, *videos) == 2, options
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
    x3d = tmp_path / "x3d.parquet"
    assert vidclf("embed", *QUIET, "--ckpt_path", trained, "--data.predict", tiny_data / "val" / "rising", "--output",
                  x3d, "--data.num_workers", "0") == 0
    capsys.readouterr()
    assert vidclf("search", x3d, "a person rising") == 2
    assert "no text tower" in capsys.readouterr().err
    assert vidclf("search", x3d, "--like", "nowhere.mp4") == 2
    assert "not a video of" in capsys.readouterr().err


@pytest.mark.slow
def test_serve_a_zero_shot_model_without_a_checkpoint(words_models, tiny_data, tmp_path, tmp_path_factory):
    from test_serve import Server, post

    model = zero_shot(words_models["xclip"], "--model.classes", CLASSES)
    rows = {Path(r["path"]).name: r for r in predict_rows(None, tiny_data / "val" / "sideways", tmp_path / "p.csv",
                                                          *model, "--runtime", "torch")}
    folder = tmp_path_factory.mktemp("zs")  # a short TMPDIR: its multiprocessing sockets live there
    server = Server(None, folder, *model, "--data.num_workers", "0")
    try:
        info = json.loads(__import__("urllib.request").request.urlopen(f"{server.url}/info", timeout=10).read())
        assert info["classes"] == ["falling", "rising", "sideways"] and info["zero_shot"] is True
        for name, row in rows.items():
            status, answer = post(server.url, tiny_data / "val" / "sideways" / name)
            assert status == 200 and answer["label"] == row["label"]
            assert answer["prob"] == pytest.approx(float(row["prob"]), abs=1e-4)
    finally:
        code, output = server.stop()
    assert code == 0, output[-2000:]
    assert not list(folder.glob("vidclf-uploads-*"))  # the zero-shot checkpoint went with it


@pytest.fixture(scope="module")
def probe_models(tmp_path_factory, words_models) -> dict[str, Path]:
    from tiny_models import tiny_hf

    root = tmp_path_factory.mktemp("probes")
    return {"videomae": tiny_hf("videomae", root / "videomae"), "vjepa2": tiny_hf("vjepa2", root / "vjepa2"),
            "xclip": words_models["xclip"]}


# a linear head over pooled features, an attentive pooler over the encoder's tokens, X-CLIP's pair
@pytest.mark.parametrize("kind", ["videomae", pytest.param("vjepa2", marks=pytest.mark.slow),
                                  pytest.param("xclip", marks=pytest.mark.slow)])
def test_a_probe_on_cached_features_equals_the_uncached_run(kind, probe_models, tiny_data, tmp_path, monkeypatch,
                                                           capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    fit = ["fit", *QUIET, "--model.backbone", f"hf:{probe_models[kind]}", "--model.pretrained", "true",
           "--model.finetune", "freeze", "--model.lr", "0.01", "--data.train", tiny_data / "train", "--data.val",
           tiny_data / "val", *VIEW, "--trainer.max_epochs", "3"]
    assert vidclf(*fit, "--trainer.default_root_dir", tmp_path / "plain") == 0
    capsys.readouterr()
    assert vidclf(*fit, "--data.feature_views", "3", "--trainer.default_root_dir", tmp_path / "cached") == 0
    said = capsys.readouterr().err
    assert "features of 12 train videos x 3 views: 12 videos computed, 0 from the cache" in said
    assert "features of 15 val videos: 15 videos computed" in said
    plain, cached = (torch.load(tmp_path / run / "version_0" / "checkpoints" / "last.ckpt", weights_only=False)
                     for run in ("plain", "cached"))
    for key, value in plain["state_dict"].items():
        torch.testing.assert_close(cached["state_dict"][key], value, atol=1e-5, rtol=1e-4)
    metrics = [read_csv(tmp_path / run / "version_0" / "metrics.csv") for run in ("plain", "cached")]
    losses = [[float(r["val/loss"]) for r in rows if r.get("val/loss")] for rows in metrics]
    assert len(set(losses[0])) == 3 and losses[1] == pytest.approx(losses[0], abs=1e-5)  # the head moved
    if kind == "videomae":  # a second run reads every feature from the cache
        assert vidclf(*fit, "--data.feature_views", "3", "--trainer.default_root_dir", tmp_path / "again") == 0
        assert "12 train videos x 3 views: 0 videos computed, 12 from the cache" in capsys.readouterr().err


@pytest.mark.slow
def test_a_knn_head_votes_with_the_cached_training_features(probe_models, trained, tiny_data, tmp_path, monkeypatch,
                                                           capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    root = tmp_path / "runs"
    assert vidclf("fit", *QUIET, "--model.backbone", f"hf:{probe_models['videomae']}", "--model.pretrained", "true",
                  "--model.finetune", "freeze", "--model.head", "knn", "--model.knn_k", "5", "--data.train",
                  tiny_data / "train", "--data.val", tiny_data / "val", *VIEW, "--data.feature_views", "2",
                  "--trainer.max_epochs", "1", "--trainer.default_root_dir", root) == 0
    assert "knn head: 24 training features stored, 5 neighbours vote" in capsys.readouterr().out
    ckpt = root / "version_0" / "checkpoints" / "best.ckpt"
    # the vote by hand: the 5 nearest cached training features, weighted by exp(cosine / 0.07)
    state = torch.load(ckpt, weights_only=False)["state_dict"]
    bank, targets = state["net.model.classifier.1.bank"], state["net.model.classifier.1.targets"]
    assert bank.shape[0] == 24 and targets.sum(0).tolist() == [8.0, 8.0, 8.0]
    videos = tiny_data / "val" / "rising"
    assert vidclf("embed", *QUIET, "--ckpt_path", ckpt, "--data.predict", videos, "--output", tmp_path / "e.parquet",
                  "--runtime", "torch", *ONE_VIEW) == 0
    rows = predict_rows(ckpt, videos, tmp_path / "p.csv", "--runtime", "torch", *ONE_VIEW)
    names = ["falling", "rising", "sideways"]
    for row, embedded in zip(rows, pq.read_table(tmp_path / "e.parquet").to_pylist()):
        assert row["status"] == "ok"
        near, index = (torch.nn.functional.normalize(torch.tensor(embedded["embedding"]), dim=0) @ bank.T).topk(5)
        votes = ((near / 0.07).exp()[:, None] * targets[index]).sum(0)
        assert names[int(votes.argmax())] == row["label"]
    # it exports and runs in the runtimes like any head
    onnx_rows = predict_rows(ckpt, videos, tmp_path / "ov.csv", "--runtime", "openvino", *ONE_VIEW)
    assert_same_rows(onnx_rows, rows)
    capsys.readouterr()
    assert vidclf("fit", *QUIET, *TINY, "--model.head", "knn", "--data.train", tiny_data / "train",
                  "--trainer.max_epochs", "1", "--trainer.default_root_dir", tmp_path / "r2") == 2
    assert "add --data.feature_views" in capsys.readouterr().err


def test_the_feature_cache_refuses_what_it_cannot_serve(tiny_data, tmp_path, capsys):
    data = ["--data.train", tiny_data / "train", *VIEW, "--data.feature_views", "2", "--trainer.max_epochs", "1",
            "--trainer.default_root_dir", tmp_path]
    capsys.readouterr()
    assert vidclf("fit", *QUIET, *TINY, "--model.pretrained", "false", *data) == 2
    err = capsys.readouterr().err.strip()
    assert "add --model.finetune freeze" in err and len(err.splitlines()) == 1, err


def test_embed_a_list_of_segments_one_row_each(trained, tiny_data, tmp_path):
    from conftest import write_csv

    video = str(tiny_data / "val" / "rising" / "rising.mp4")
    listing = write_csv(tmp_path / "list.csv", [{"path": video, "start": "", "end": ""},
                                                {"path": video, "start": "0.2", "end": "0.9"}])
    out = tmp_path / "segments.parquet"
    assert vidclf("embed", *QUIET, "--ckpt_path", trained, "--data.predict", listing, "--output", out,
                  "--data.num_workers", "0", "--runtime", "torch") == 0
    rows = pq.read_table(out).to_pylist()
    assert [(r["path"], r["start"], r["end"], r["status"]) for r in rows] == [(video, None, None, "ok"),
                                                                              (video, 0.2, 0.9, "ok")]
    assert rows[0]["embedding"] != rows[1]["embedding"]  # the segment's own clips
    windows = tmp_path / "windows.parquet"
    assert vidclf("embed", *QUIET, "--ckpt_path", trained, "--data.predict", listing, "--output", windows,
                  "--window", "0.3", "--data.num_workers", "0", "--runtime", "torch") == 0
    places = [(r["start"], r["end"]) for r in pq.read_table(windows).to_pylist()]
    assert places[0] == (0.0, 0.3) and {(0.2, 0.5), (0.5, 0.8)} <= set(places)  # the video's, then the segment's
