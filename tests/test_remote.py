"""Videos, lists, checkpoints and outputs in object storage: a real S3 server (moto's, on 127.0.0.1,
with IAM credentials checked) and a plain HTTP server that fails each first request."""

from __future__ import annotations

import json
import logging
import os
import threading
import urllib.request
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import QUIET, TINY, evaluation, free_port, read_csv, vidclf

boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")
pytest.importorskip("s3fs")

SECRET_WORD = "not-a-real-secret-but-it-must-not-leak"


class S3:
    """moto's S3 (and IAM) server on 127.0.0.1: a bucket `videos`, a user whose key may use it, and
    authentication on for every request after setup."""

    def __init__(self):
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.server = moto_server.ThreadedMotoServer("127.0.0.1", self.port, verbose=False)
        self.server.start()
        setup = dict(endpoint_url=self.endpoint, region_name="us-east-1", aws_access_key_id="setup",
                     aws_secret_access_key="setup")
        iam, self.client = boto3.client("iam", **setup), boto3.client("s3", **setup)
        iam.create_user(UserName="vidclf")
        iam.put_user_policy(UserName="vidclf", PolicyName="s3", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
        key = iam.create_access_key(UserName="vidclf")["AccessKey"]
        self.key, self.secret = key["AccessKeyId"], key["SecretAccessKey"]
        self.client.create_bucket(Bucket="videos")

    def put(self, key: str, data: bytes) -> str:
        self.client.put_object(Bucket="videos", Key=key, Body=data)
        return f"s3://videos/{key}"

    def put_tree(self, folder: Path, prefix: str) -> str:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                self.put(f"{prefix}/{path.relative_to(folder).as_posix()}", path.read_bytes())
        return f"s3://videos/{prefix}"

    def get(self, key: str) -> bytes:
        return self.client.get_object(Bucket="videos", Key=key)["Body"].read()

    def require_auth(self) -> None:
        """From now on every request must be signed with a key IAM knows (moto's switch)."""
        urllib.request.urlopen(urllib.request.Request(
            f"{self.endpoint}/moto-api/reset-auth", data=b"0", method="POST",
            headers={"Content-Type": "text/plain"})).read()
        self.client = boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                                   aws_access_key_id=self.key, aws_secret_access_key=self.secret)

    def stop(self) -> None:
        urllib.request.urlopen(urllib.request.Request(
            f"{self.endpoint}/moto-api/reset-auth", data=b"inf", method="POST",
            headers={"Content-Type": "text/plain"})).read()
        self.server.stop()


@pytest.fixture(scope="module")
def s3(tiny_data, tmp_path_factory):
    """The S3 server holding tiny_data's train/ and val/ trees (val with a corrupt object), a list of
    val videos relative to its own folder naming one missing object; vidclf's environment points at it."""
    server = S3()
    server.put_tree(tiny_data / "train", "tiny/train")
    server.put_tree(tiny_data / "val", "tiny/val")
    good = (tiny_data / "val" / "rising" / "rising.mp4").read_bytes()
    server.put("tiny/val/rising/corrupt.mp4", good[:len(good) // 3][:48] + bytes(2000))
    rows = ["path,label", "../val/falling/falling.mp4,falling", "../val/rising/rising.mkv,rising",
            "../val/sideways/gone.mp4,sideways", "s3://videos/tiny/val/sideways/sideways.webm,sideways"]
    server.put("tiny/lists/val.csv", ("\n".join(rows) + "\n").encode())
    env = {"AWS_ENDPOINT_URL": server.endpoint, "AWS_ACCESS_KEY_ID": server.key,
           "AWS_SECRET_ACCESS_KEY": server.secret, "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    server.require_auth()
    yield server
    server.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def test_predict_reads_a_remote_folder_and_a_remote_list_reporting_the_corrupt_and_the_missing(s3, trained, tmp_path):
    out = tmp_path / "folder.csv"
    assert vidclf("predict", "--ckpt_path", trained / "checkpoints" / "best.ckpt", *QUIET,
                  "--data.predict", "s3://videos/tiny/val", "--output", out) == 0
    rows = {r["path"]: r for r in read_csv(out)}
    assert len(rows) == 16  # 15 videos and the corrupt object: every one has its row
    assert rows["s3://videos/tiny/val/rising/corrupt.mp4"]["status"].startswith("error")
    assert sum(r["status"] == "ok" for r in rows.values()) == 15
    assert all(r["label"] for p, r in rows.items() if r["status"] == "ok")

    out = tmp_path / "list.csv"
    assert vidclf("predict", "--ckpt_path", trained / "checkpoints" / "best.ckpt", *QUIET,
                  "--data.predict", "s3://videos/tiny/lists/val.csv", "--output", out) == 0
    rows = {r["path"]: r for r in read_csv(out)}
    assert list(rows) == ["s3://videos/tiny/val/falling/falling.mp4", "s3://videos/tiny/val/rising/rising.mkv",
                          "s3://videos/tiny/val/sideways/gone.mp4", "s3://videos/tiny/val/sideways/sideways.webm"]
    assert "missing: no such object" in rows["s3://videos/tiny/val/sideways/gone.mp4"]["status"]
    assert [r["status"] for r in rows.values()].count("ok") == 3

    out = tmp_path / "glob.csv"
    assert vidclf("predict", "--ckpt_path", trained / "checkpoints" / "best.ckpt", *QUIET,
                  "--data.predict", "s3://videos/tiny/val/*/*.webm", "--output", out) == 0
    assert [r["path"] for r in read_csv(out)] == [f"s3://videos/tiny/val/{m}/{m}.webm"
                                                  for m in ("falling", "rising", "sideways")]


def test_embed_reads_a_remote_list_writes_to_the_bucket_and_search_reads_it_there(s3, trained, tmp_path, capsys):
    import pyarrow.parquet as pq

    out = "s3://videos/embeddings/val.parquet"
    assert vidclf("embed", "--ckpt_path", trained / "checkpoints" / "best.ckpt", *QUIET, "--runtime", "torch",
                  "--data.predict", "s3://videos/tiny/lists/val.csv", "--output", out) == 0
    local = tmp_path / "val.parquet"
    s3.client.download_file("videos", "embeddings/val.parquet", str(local))
    rows = pq.read_table(local).to_pylist()
    assert [r["path"] for r in rows] == ["s3://videos/tiny/val/falling/falling.mp4", "s3://videos/tiny/val/rising/rising.mkv",
                                         "s3://videos/tiny/val/sideways/gone.mp4", "s3://videos/tiny/val/sideways/sideways.webm"]
    assert "missing" in rows[2]["status"] and rows[2]["embedding"] is None
    assert [r["status"] for r in rows].count("ok") == 3
    capsys.readouterr()
    assert vidclf("search", out, "--like", "s3://videos/tiny/val/falling/falling.mp4", "--top_k", "2") == 0
    shown = capsys.readouterr().out
    assert "rising.mkv" in shown and "sideways.webm" in shown and "gone.mp4" not in shown


def test_remote_predictions_equal_local_ones(s3, trained, tiny_data, tmp_path):
    ckpt = trained / "checkpoints" / "best.ckpt"
    assert vidclf("predict", "--ckpt_path", ckpt, *QUIET, "--data.predict", tiny_data / "val" / "falling",
                  "--output", tmp_path / "local.csv") == 0
    assert vidclf("predict", "--ckpt_path", ckpt, *QUIET, "--data.predict", "s3://videos/tiny/val/falling",
                  "--output", tmp_path / "remote.csv") == 0
    local, remote = read_csv(tmp_path / "local.csv"), read_csv(tmp_path / "remote.csv")
    assert [(Path(r["path"]).name, r["label"], r["prob"]) for r in local] == \
           [(Path(r["path"]).name, r["label"], r["prob"]) for r in remote]


def test_wrong_credentials_are_one_line_without_the_secret(s3, trained, tmp_path, capsys):
    options = json.dumps({"key": "AKIAWRONGWRONGWRONG", "secret": SECRET_WORD})
    code = vidclf("predict", "--ckpt_path", trained / "checkpoints" / "best.ckpt", *QUIET,
                  "--data.predict", "s3://videos/tiny/val", "--data.storage_options", options,
                  "--output", tmp_path / "p.csv")
    err = capsys.readouterr().err
    assert code == 2
    line = err.strip().splitlines()[-1]
    assert line.startswith("vidclf: error: s3://videos/tiny/val: forbidden") and "credentials" in line
    assert SECRET_WORD not in err
    assert not (tmp_path / "p.csv").exists()


def test_a_missing_bucket_path_is_one_line(s3, trained, tmp_path, capsys):
    code = vidclf("fit", *TINY, *QUIET, "--data.train", "s3://videos/nothing/here", "--trainer.max_epochs", "1",
                  "--trainer.default_root_dir", tmp_path)
    assert code == 2
    assert "s3://videos/nothing/here: no such object or folder" in capsys.readouterr().err


def test_a_local_kinetics_csv_with_its_videos_in_s3_looked_at_by_vidclf_data(s3, tiny_data, tmp_path, capsys):
    """Annotations on disk, videos in the bucket: the remote index finds them (one missing), and the
    content hash (two ranged reads per object) finds a video that is also in the val split."""
    rows = ["label,youtube_id,time_start,time_end,split"]
    for i, motion in enumerate(("falling", "rising", "sideways")):
        source = tiny_data / "val" / motion / f"{motion}.mp4"
        s3.put(f"k400/train/{motion}/vid{i:08d}_{10:06d}_{20:06d}.mp4", source.read_bytes())
        rows.append(f"{motion},vid{i:08d},10,20,train")
    rows.append("rising,gone0000000,0,10,train")
    annotations = tmp_path / "train.csv"
    annotations.write_text("\n".join(rows) + "\n")
    out = tmp_path / "look"
    assert vidclf("data", "--data.train", annotations, "--data.videos_root", "s3://videos/k400",
                  "--data.val", "s3://videos/tiny/val", "--output", out) == 0
    assert "train: 3 samples of 3 videos, 3 classes" in capsys.readouterr().out
    files = {r["path"]: r["status"] for r in read_csv(out / "files.csv")}
    assert files["s3://videos/k400/train/rising/vid00000001_000010_000020.mp4"] == "ok"
    assert any(p.startswith("s3://videos/k400") and "gone0000000" in p and s.startswith("missing") for p, s in files.items())
    from vidclf.data.scan import content_hash

    assert content_hash("s3://videos/tiny/val/rising/rising.mp4") == content_hash(str(tiny_data / "val/rising/rising.mp4"))
    duplicates = {(d["split"], d["path"]) for d in read_csv(out / "duplicates.csv")}
    assert ("val", "s3://videos/tiny/val/rising/rising.mp4") in duplicates
    assert ("train", "s3://videos/k400/train/rising/vid00000001_000010_000020.mp4") in duplicates


def test_a_run_directory_in_object_storage_is_refused_before_any_work(tiny_data, capsys):
    assert vidclf("fit", *TINY, *QUIET, "--data.train", tiny_data / "train",
                  "--trainer.default_root_dir", "s3://videos/runs") == 2
    assert "--trainer.default_root_dir s3://videos/runs: run directories are written to local" in capsys.readouterr().err


class Flaky(SimpleHTTPRequestHandler):
    """Serves a folder, answering the first GET or HEAD of each path with 503 (a busy server)."""

    seen: set = set()
    lock = threading.Lock()

    def _flaky(self) -> bool:
        with self.lock:
            first = self.path not in self.seen
            self.seen.add(self.path)
        if first:
            self.send_error(503, "busy")
        return first

    def do_GET(self):
        if not self._flaky():
            super().do_GET()

    def do_HEAD(self):
        if not self._flaky():
            super().do_HEAD()

    def log_message(self, *args):
        pass


def test_https_style_urls_survive_a_server_that_fails_each_first_request(trained, tiny_data, tmp_path):
    pytest.importorskip("aiohttp")
    server = ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: Flaky(*a, directory=str(tiny_data / "val")))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        listing = tmp_path / "urls.csv"
        listing.write_text("path\n" + "".join(f"{base}/{m}/{m}.mp4\n" for m in ("falling", "rising", "sideways"))
                           + f"{base}/rising/absent.mp4\n")
        out = tmp_path / "p.csv"
        assert vidclf("predict", "--ckpt_path", trained / "checkpoints" / "best.ckpt", *QUIET,
                      "--data.predict", listing, "--output", out) == 0
    finally:
        server.shutdown()
    rows = read_csv(out)
    assert [r["status"] for r in rows[:3]] == ["ok"] * 3
    assert rows[3]["path"].endswith("absent.mp4") and "missing" in rows[3]["status"]
    local, paths = tmp_path / "local.csv", tmp_path / "paths.csv"
    paths.write_text("path\n" + "".join(f"{tiny_data / 'val' / m / m}.mp4\n" for m in ("falling", "rising", "sideways")))
    assert vidclf("predict", "--ckpt_path", trained / "checkpoints" / "best.ckpt", *QUIET,
                  "--data.predict", paths, "--output", local) == 0
    assert [r["prob"] for r in read_csv(local)] == [r["prob"] for r in rows[:3]]


@pytest.mark.slow
def test_weights_from_the_bucket_load_as_from_disk(s3, tiny_data, tmp_path):
    """--model.pretrained s3://... (a zoo weight file) and hf:s3://... (a save_pretrained folder): one
    training step from each gives the same checkpoint as from the local copies."""
    import torch
    from pytorchvideo.models.hub import x3d_xs

    from tiny_models import tiny_hf

    weights = tmp_path / "X3D_XS.pyth"
    torch.save({"model_state": x3d_xs().state_dict()}, weights)
    s3.put("weights/X3D_XS.pyth", weights.read_bytes())
    folder = tiny_hf("videomae", tmp_path / "videomae")
    s3.put_tree(folder, "models/videomae")
    step = [*QUIET, "--data.train", tiny_data / "train", "--trainer.max_steps", "1"]
    hf = ["--data.batch_size", "4", "--data.num_workers", "0", "--data.num_clips", "2"]
    runs = {}
    for name, args in (("zoo_local", [*TINY, "--model.pretrained", weights]),
                       ("zoo_s3", [*TINY, "--model.pretrained", "s3://videos/weights/X3D_XS.pyth"]),
                       ("hf_local", ["--model.backbone", f"hf:{folder}", "--model.pretrained", "true", *hf]),
                       ("hf_s3", ["--model.backbone", "hf:s3://videos/models/videomae", "--model.pretrained", "true",
                                  *hf])):
        assert vidclf("fit", *args, *step, "--trainer.default_root_dir", tmp_path / name) == 0, name
        runs[name] = torch.load(tmp_path / name / "version_0/checkpoints/last.ckpt", weights_only=True)["state_dict"]
    for kind in ("zoo", "hf"):
        local, remote = runs[f"{kind}_local"], runs[f"{kind}_s3"]
        assert local.keys() == remote.keys() and all(torch.equal(local[k], remote[k]) for k in local), kind


@pytest.mark.slow
def test_fit_validate_predict_export_with_everything_in_s3(s3, tmp_path, capsys):
    """Training data, checkpoint, predictions and the exported model all in the bucket; a local frame
    cache; secrets given as storage options never reach a file."""
    options = json.dumps({"key": s3.key, "secret": s3.secret, "client_kwargs": {"region_name": "us-east-1"}})
    runs = tmp_path / "runs"
    args = [*TINY, *QUIET, "--data.train", "s3://videos/tiny/train", "--data.val", "s3://videos/tiny/val",
            "--data.num_workers", "2", "--data.cache", tmp_path / "cache", "--data.storage_options", options]
    assert vidclf("fit", *args, "--trainer.max_epochs", "2", "--trainer.default_root_dir", runs) == 0
    run = runs / "version_0"
    report = read_csv(run / "data_report.csv")
    assert any(r["path"] == "s3://videos/tiny/val/rising/corrupt.mp4" and r["status"] != "ok" for r in report)
    assert len(list((tmp_path / "cache").glob("*.idx.npy"))) == 12  # every training video, once
    written = [p for p in run.rglob("*") if p.is_file()]
    assert written and not [p for p in written if s3.secret.encode() in p.read_bytes()]
    assert "<redacted>" in (run / "config.yaml").read_text()

    remote_ckpt = s3.put("tiny/runs/version_0/checkpoints/best.ckpt", (run / "checkpoints" / "best.ckpt").read_bytes())
    for ckpt, name in ((run / "checkpoints" / "best.ckpt", "local"), (remote_ckpt, "remote")):
        assert vidclf("validate", "--ckpt_path", ckpt, *QUIET, "--data.val", "s3://videos/tiny/val",
                      "--data.num_workers", "0", "--trainer.default_root_dir", tmp_path / name) == 0
    capsys.readouterr()
    # the local checkpoint's results go with its run; the remote one's (no run folder) under the root given
    local_metrics, remote_metrics = (read_csv(evaluation(folder) / "per_class.csv") for folder in (run, tmp_path / "remote"))
    assert local_metrics == remote_metrics and len(local_metrics) >= 3

    assert vidclf("predict", "--ckpt_path", remote_ckpt, *QUIET, "--data.predict", "s3://videos/tiny/lists/val.csv",
                  "--output", "s3://videos/tiny/out/predictions.csv") == 0
    rows = s3.get("tiny/out/predictions.csv").decode().splitlines()
    assert len(rows) == 5 and rows[0].startswith("path,")
    assert vidclf("predict", "--ckpt_path", remote_ckpt, *QUIET, "--data.predict", "s3://videos/tiny/lists/val.csv",
                  "--output", "s3://videos/tiny/out/predictions.csv") == 2  # exists: refused before any work
    assert "already exists" in capsys.readouterr().err

    assert vidclf("export", "--ckpt_path", remote_ckpt, "--data.predict",
                  "s3://videos/tiny/val/rising/rising.mp4") == 0
    sidecar = json.loads(s3.get("tiny/runs/version_0/model.onnx.json"))
    assert sidecar["source_checkpoint"]["path"] == remote_ckpt and sidecar["check"]["max_abs_diff"] < 1e-3
    onnx = pytest.importorskip("onnx")
    assert onnx.load_from_string(s3.get("tiny/runs/version_0/model.onnx")).graph.input
