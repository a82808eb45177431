"""`vidclf serve`: a real server on 127.0.0.1 at a free port, real HTTP clients, a real browser.

Every answer must equal the row `vidclf predict` writes for the same file; bad requests get a
status with a reason and never stop the server; uploads leave nothing behind.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

import pytest

from conftest import QUIET, REPO, SHARED_VIDEOS, free_port, read_csv, run_example, vidclf

CHROMIUM = "/usr/bin/chromium"


class Server:
    """`vidclf serve` in a subprocess, with TMPDIR set so its private upload folder can be watched."""

    def __init__(self, ckpt: Optional[Path], tmp: Path, *options: str):
        self.port, self.tmp = free_port(), tmp
        self.url = f"http://127.0.0.1:{self.port}"
        tmp.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vidclf", "serve", *(["--ckpt_path", str(ckpt)] if ckpt else []), "--port",
             str(self.port), *options],
            env={**os.environ, "TMPDIR": str(tmp)}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.time() + 180
        while time.time() < deadline and self.proc.poll() is None:
            try:
                if urllib.request.urlopen(f"{self.url}/health", timeout=2).status == 200:
                    return
            except OSError:
                time.sleep(0.3)
        self.proc.kill()
        raise AssertionError(f"server did not start:\n{self.proc.communicate()[0][-3000:]}")

    def uploads(self) -> list[Path]:
        """Files left in the server's private upload folders once the answers are out (a file is
        deleted just after its answer is sent, so allow the server a moment)."""
        deadline = time.time() + 5
        while True:
            left = [f for d in self.tmp.glob("vidclf-uploads-*") for f in d.iterdir()]
            if not left or time.time() > deadline:
                return left
            time.sleep(0.05)

    def stop(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGTERM)
        output = self.proc.communicate(timeout=120)[0]
        return self.proc.returncode, output


def post(url: str, path: Path, raw: bool = False, query: str = "", timeout: float = 120) -> tuple[int, dict]:
    """POST a file as multipart field `file` (or as the raw body); (HTTP status, JSON answer)."""
    data = path.read_bytes()
    if raw:
        request = urllib.request.Request(f"{url}/predict?name={path.name}{query}", data=data,
                                         headers={"Content-Type": "video/mp4"})
    else:
        boundary = "vidclf-test-boundary"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{path.name}\"\r\n"
                f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
        request = urllib.request.Request(f"{url}/predict{'?' + query.lstrip('&') if query else ''}", data=body,
                                         headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


@pytest.fixture(scope="module")
def server(trained, tmp_path_factory):
    srv = Server(trained / "checkpoints/best.ckpt", tmp_path_factory.mktemp("serve_tmp"), "--max_upload_mb", "1",
                 "--read_timeout", "2", "--data.num_workers", "0")
    yield srv
    code, output = srv.stop()
    assert code == 0, output[-3000:]
    assert not list(srv.tmp.glob("vidclf-uploads-*")), "the upload folder outlives the server"


@pytest.fixture(scope="module")
def predicted(trained, tiny_data, tmp_path_factory) -> dict[str, dict]:
    """`vidclf predict` rows of every validation video in torch, by file name (the server runs OpenVINO)."""
    out = tmp_path_factory.mktemp("serve_predict") / "p.csv"
    assert vidclf("predict", *QUIET, "--ckpt_path", trained / "checkpoints/best.ckpt", "--data.predict",
                  tiny_data / "val", "--output", out, "--data.num_workers", "0", "--runtime", "torch") == 0
    return {Path(r["path"]).name: r for r in read_csv(out)}


def assert_same(answer: dict, row: dict) -> None:
    assert answer["status"] == row["status"] == "ok"
    assert answer["label"] == row["label"]
    for k in range(1, 4):
        assert answer[f"top{k}_label"] == row[f"top{k}_label"]
        assert answer[f"top{k}_prob"] == pytest.approx(float(row[f"top{k}_prob"]), abs=1e-5)


def test_answers_equal_predict_rows_for_every_container(server, tiny_data, predicted):
    videos = sorted((tiny_data / "val").glob("*/*"))
    for i, video in enumerate(videos):
        status, answer = post(server.url, video, raw=bool(i % 2))  # multipart and raw bodies
        assert status == 200, answer
        assert answer["file"] == video.name
        assert_same(answer, predicted[video.name])


def test_burst_of_good_corrupt_and_oversized_uploads_is_answered_in_full(server, tiny_data, predicted, tmp_path):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes((tiny_data / "val/rising/rising.mp4").read_bytes()[:600])
    noise = tmp_path / "noise.mp4"
    noise.write_bytes(os.urandom(50_000))
    big = tmp_path / "big.mp4"
    big.write_bytes(os.urandom(3 << 20))  # over --max_upload_mb 1
    notes = tmp_path / "notes.txt"
    notes.write_text("not a video\n")
    good = sorted((tiny_data / "val").glob("*/*"))
    jobs = [*good, corrupt, noise, big, notes, *good[:4]]
    with ThreadPoolExecutor(len(jobs)) as pool:  # all at once: batched together by the server
        answers = list(pool.map(lambda job: post(server.url, job[1], raw=job[0] % 2 == 0), enumerate(jobs)))
    for path, (status, answer) in zip(jobs, answers):
        if path in good:
            assert status == 200, answer
            assert_same(answer, predicted[path.name])
        elif path == big:
            assert status == 413 and "larger than --max_upload_mb 1" in answer["status"]
        else:
            assert status == 422 and answer["status"].startswith("error: "), (path.name, answer)
    assert urllib.request.urlopen(f"{server.url}/health").status == 200  # still serving
    assert server.uploads() == []  # every upload deleted after its answer


def test_info_health_and_routes(server, trained):
    info = json.loads(urllib.request.urlopen(f"{server.url}/info").read())
    assert info["classes"] == ["falling", "rising", "sideways"] and info["backbone"] == "x3d_xs"
    assert info["clip"]["frames"] == 4 and info["video"]["num_clips"] == 2
    from vidclf.io.checkpoints import sha256
    assert info["checkpoint_sha256"] == sha256(str(trained / "checkpoints/best.ckpt"))
    assert info["runtime"] == {"name": "openvino", "precision": "fp32"}  # auto on a CPU
    page = urllib.request.urlopen(f"{server.url}/").read().decode()
    assert "<title>vidclf</title>" in page  # one self-contained page: nothing from elsewhere (works offline)
    assert 'src="http' not in page and 'href="http' not in page and "<script src" not in page
    for method, route, code in (("GET", "/nope", 404), ("GET", "/../etc/passwd", 404), ("GET", "/predict", 405)):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(urllib.request.Request(f"{server.url}{route}", method=method))
        assert err.value.code == code
    request = urllib.request.Request(f"{server.url}/predict", data=b'{"upload": "/etc/passwd"}',
                                     headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as err:  # no way to name a file on the server
        urllib.request.urlopen(request)
    assert err.value.code == 415 and "multipart form field `file`" in json.loads(err.value.read())["status"]


def test_timeline_equals_predict_timeline(server, trained, tmp_path):
    video = SHARED_VIDEOS / "labeled_actions/tai_chi/k400_mmskeleton_ta_chi.mp4"
    assert vidclf("predict", *QUIET, "--ckpt_path", trained / "checkpoints/best.ckpt", "--data.predict", video,
                  "--output", tmp_path / "p.csv", "--timeline", tmp_path / "t.csv", "--window", "2") == 0
    status, answer = post(server.url, video, query="&timeline=1&window=2")
    assert status == 200, answer
    windows = read_csv(tmp_path / "t.csv")
    assert [(w["start"], w["end"]) for w in answer["timeline"]] == [(float(w["start"]), float(w["end"]))
                                                                    for w in windows]
    assert [w["label"] for w in answer["timeline"]] == [w["label"] for w in windows]
    assert answer["label"] == read_csv(tmp_path / "p.csv")[0]["label"]
    status, answer = post(server.url, video, query="&timeline=1&window=-3")
    assert status == 422 and "window and stride are seconds > 0" in answer["status"]


def test_a_stalled_upload_gets_408_and_others_are_served_meanwhile(server, tiny_data, predicted):
    with socket.create_connection(("127.0.0.1", server.port)) as slow:
        slow.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: video/mp4\r\nContent-Length: 5000\r\n\r\n"
                     + b"\x00" * 100)
        video = tiny_data / "val/sideways/sideways.mp4"
        status, answer = post(server.url, video)  # not held up by the stalled client
        assert status == 200 and answer["label"] == predicted[video.name]["label"]
        slow.settimeout(30)
        reply = b""
        while b"upload stalled" not in reply:  # headers and body may come in separate packets
            chunk = slow.recv(4096)
            if not chunk:
                break
            reply += chunk
        reply = reply.decode()
    assert reply.startswith("HTTP/1.1 408") and "upload stalled" in reply
    assert server.uploads() == []


def test_python_client_example(server, tiny_data, predicted):
    video = tiny_data / "val/falling/falling.mkv"
    answer = json.loads("\n".join(run_example("serve_client.py", server.url, video)))
    assert_same(answer, predicted[video.name])


def test_bad_addresses_are_one_line(trained, capsys):
    ckpt = trained / "checkpoints/best.ckpt"
    assert vidclf("serve", "--ckpt_path", ckpt, "--host", "10.1.2.3") == 2
    assert "--host 10.1.2.3: serve binds 127.0.0.1" in capsys.readouterr().err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert vidclf("serve", "--ckpt_path", ckpt, "--port", str(taken.getsockname()[1])) == 2
    assert "is in use; pick another --port" in capsys.readouterr().err


@pytest.mark.slow
def test_sigterm_finishes_requests_in_flight_then_exits_0(trained, tiny_data, tmp_path):
    srv = Server(trained / "checkpoints/best.ckpt", tmp_path, "--max_batch_size", "2", "--data.num_workers", "0")
    video = SHARED_VIDEOS / "labeled_actions/tai_chi/k400_mmskeleton_ta_chi.mp4"
    answers: list = []

    def client():  # timelines of a 10 s video at a fine stride: seconds of work each
        answers.append(post(srv.url, video, query="&timeline=1&window=0.5&stride=0.1"))

    clients = [threading.Thread(target=client) for _ in range(4)]
    for c in clients:
        c.start()
    time.sleep(1.0)
    code, output = srv.stop()
    for c in clients:
        c.join()
    assert code == 0, output[-3000:]
    assert [status for status, _ in answers] == [200] * 4
    assert "vidclf: server stopped" in output and "Traceback" not in output
    assert not list(tmp_path.glob("vidclf-uploads-*"))


@pytest.mark.slow
def test_web_page_in_a_real_browser(server, tiny_data, predicted, tmp_path):
    if not Path(CHROMIUM).exists():
        if os.environ.get("VIDCLF_REQUIRE_BROWSER"):
            pytest.fail(f"{CHROMIUM} is missing; install Debian's chromium (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    video = tiny_data / "val/rising/rising.mp4"
    long_video = SHARED_VIDEOS / "labeled_actions/tai_chi/k400_mmskeleton_ta_chi.mp4"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 900, "height": 900})
        page.goto(server.url)
        page.wait_for_function("document.getElementById('model').textContent.includes('3 classes')")
        page.set_input_files("#file", str(video))
        page.wait_for_function("document.getElementById('label').textContent.length > 0", timeout=60_000)
        assert page.text_content("#label").startswith(predicted[video.name]["label"] + " (")
        assert page.locator(".bar").count() == 3
        # a long video: the per-window timeline is drawn along it
        page.set_input_files("#file", str(long_video))
        page.wait_for_selector("#chart rect", timeout=120_000)
        assert page.locator("#chart rect").count() >= 9  # 10 s in windows of the clip length, + the cursor
        page.screenshot(path=os.environ.get("VIDCLF_SCREENSHOT", str(tmp_path / "page.png")), full_page=True)
        # an upload that is not a video: the reason in words
        notes = tmp_path / "notes.mp4"
        notes.write_text("not a video")
        page.set_input_files("#file", str(notes))
        page.wait_for_selector("#error", state="visible", timeout=60_000)
        assert "Could not classify notes.mp4 (HTTP 422)" in page.text_content("#error")
        browser.close()


@pytest.mark.slow  # a fit, a predict, a server and 20 s of 32 clients (about 70 s)
def test_the_server_holds_under_abuse(tmp_path):
    """benchmarks/serve_abuse.py, shorter: good uploads, corrupt files, files over the limit, stalled uploads
    and unknown routes at once; each answered with its own status, no good answer wrong, memory and open
    files back where they were, no upload left, and it still answers."""
    spec = importlib.util.spec_from_file_location("serve_abuse", REPO / "benchmarks" / "serve_abuse.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    r = bench.abuse(20, 32, tmp_path)
    assert r["requests"] > 100 and r["unanswered"] == 0 and r["wrong"] == 0, r
    assert {(kind, bench.EXPECTED[kind]) for kind in bench.EXPECTED} == set(r["statuses"]), r["statuses"]
    before, during, after = r["memory_mb"]
    assert after < before + 100 and during < before + 400, r["memory_mb"]
    assert r["open_files"][2] <= r["open_files"][0] + 5, r["open_files"]
    assert r["uploads_left"] == 0 and r["still_answers"]
