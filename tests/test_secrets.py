"""No secret of a URL reaches any output: data, fit, validate, predict and export run over videos and a
checkpoint named by URLs that carry a password and presigned signatures (a local HTTP server that ignores
them); then every file the runs wrote, the caches and the console output are searched for the secrets."""

from __future__ import annotations

import json
import os
import threading
import urllib.request
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import QUIET, TINY, read_csv, vidclf, write_csv
from vidclf.io.secrets import redact_url

SECRETS = ("hunter2pass", "SIGabc123", "TOKxyz789", "SASsig456", "AKIAcred77")
CACHE = Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "vidclf"


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def signed(base: str, rel: str) -> str:
    """A URL as a presigning service hands it out: a password and signature, credential and token parameters."""
    return (f"http://alice:hunter2pass@{base}/{rel}?X-Amz-Credential=AKIAcred77%2F20261207&X-Amz-Signature=SIGabc123"
            f"&X-Amz-Security-Token=TOKxyz789&sig=SASsig456&X-Amz-Expires=600")


@pytest.fixture
def served(tiny_data, trained, tmp_path):
    folder = tmp_path / "served"
    folder.mkdir()
    (folder / "data").symlink_to(tiny_data)
    (folder / "model.ckpt").write_bytes((trained / "checkpoints" / "best.ckpt").read_bytes())
    server = ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: Quiet(*a, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def written_files(*roots: Path) -> list[Path]:
    return [p for root in roots if root.exists() for p in root.rglob("*") if p.is_file()]


@pytest.mark.slow  # about 20 s: six runs over HTTP
def test_no_secret_of_a_url_reaches_any_output(served, tiny_data, tmp_path, capsys):
    pytest.importorskip("aiohttp")
    videos = {split: sorted((tiny_data / split).rglob("*.mp4")) for split in ("train", "val")}
    lists = tmp_path / "served" / "lists"  # the validation list is read over HTTP too, by a signed URL
    lists.mkdir()
    for split, paths in videos.items():
        rows = [{"path": signed(served, f"data/{p.relative_to(tiny_data)}"), "label": p.parent.name} for p in paths]
        write_csv(lists / f"{split}.csv", rows + [{"path": signed(served, "data/gone.mp4"), "label": "rising"}])
    out = tmp_path / "out"
    before = {p: p.stat().st_mtime_ns for p in written_files(CACHE)}

    assert vidclf("data", "--data.train", lists / "train.csv", "--output", out / "look") == 0
    assert vidclf("fit", *TINY, *QUIET, "--data.train", lists / "train.csv", "--data.val", signed(served, "lists/val.csv"),
                  "--trainer.max_epochs", "1", "--trainer.default_root_dir", out / "runs") == 0
    run = out / "runs" / "version_0"
    assert vidclf("validate", *QUIET, "--ckpt_path", run, "--data.val", signed(served, "lists/val.csv")) == 0
    model = signed(served, "model.ckpt")
    assert vidclf("predict", *QUIET, "--ckpt_path", model, "--data.predict", lists / "val.csv",
                  "--output", out / "p.csv", "--timeline", out / "t.jsonl") == 0
    one = signed(served, "data/val/rising/rising.mp4")
    assert vidclf("predict", *QUIET, "--ckpt_path", model, "--data.predict", one, "--output", out / "one.jsonl") == 0
    assert vidclf("export", "--ckpt_path", model, "--data.predict", one, "--output", out / "m.onnx") == 0
    assert vidclf("predict", "--ckpt_path", model, "--data.predict", signed(served, "data/nothing/"),
                  "--output", out / "none.csv") == 2  # an error line names the URL too
    console = capsys.readouterr()

    # the runs worked, and their rows still name each video (the same URL always reads the same)
    rows = read_csv(out / "p.csv")
    assert [r["status"] for r in rows].count("ok") == len(videos["val"]) and "missing" in rows[-1]["status"]
    assert rows[0]["path"] == redact_url(signed(served, f"data/{videos['val'][0].relative_to(tiny_data)}"))
    assert "REDACTED" in rows[0]["path"] and rows[0]["path"].startswith(f"http://alice:REDACTED@{served}/data/val/")
    assert read_csv(run / "data_report.csv") and (out / "look" / "files.csv").is_file()
    assert '"status": "ok"' in (out / "one.jsonl").read_text()

    touched = [p for p in written_files(out, CACHE) if before.get(p) != p.stat().st_mtime_ns]
    assert len(touched) > 20 and any(p.suffix == ".ckpt" for p in touched) and any(p.name == "config.yaml" for p in touched)
    for path in touched:
        content = path.read_bytes()
        found = [s for s in SECRETS if s.encode() in content or s in str(path)]
        assert not found, f"{path} holds {found}"
    for stream in (console.out, console.err):
        assert not [s for s in SECRETS if s in stream], stream[-3000:]
    assert f"http://alice:REDACTED@{served}/data/nothing/" in console.err


@pytest.mark.slow  # a server process (about 20 s)
def test_a_server_started_from_a_signed_checkpoint_url_shows_no_secret(served, tiny_data, tmp_path):
    """`vidclf serve --ckpt_path SIGNED_URL`: its console (every process), /info, an answer and an error
    answer hold none of the URL's secrets."""
    from test_serve import Server, post

    server = Server(signed(served, "model.ckpt"), tmp_path / "serve_tmp", "--data.num_workers", "0")
    try:
        info = urllib.request.urlopen(f"{server.url}/info", timeout=30).read().decode()
        status, answer = post(server.url, tiny_data / "val" / "rising" / "rising.mp4")
        assert status == 200 and answer["status"] == "ok"
        (tmp_path / "bad.mp4").write_bytes(b"\0" * 1000)
        bad_status, bad = post(server.url, tmp_path / "bad.mp4")
        assert bad_status == 422
    finally:
        code, console = server.stop()
    assert code == 0, console[-3000:]
    for text in (info, json.dumps(answer), json.dumps(bad), console):
        assert not [s for s in SECRETS if s in text], text[-3000:]
