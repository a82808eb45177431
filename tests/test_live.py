"""Live sources: windows scored as the stream plays, rows flushed at once, events, reconnection and faults,
from real streams on 127.0.0.1 (ffmpeg over TCP, UDP, HLS and a pipe; GStreamer's RTSP server)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import torch

from conftest import QUIET, SHARED_VIDEOS, free_port, read_csv, vidclf
from streams import FFMPEG, garbage_server, hls, rtsp_server, send, stop, udp_bound
from vidclf.commands.live import live_sources
from vidclf.commands.live.events import Events, Smoother
from vidclf.data.live import is_live
from vidclf.errors import VidclfError

CLIP = SHARED_VIDEOS / "labeled_actions/arm_wrestling/k400_mmaction2_demo.mp4"  # 10 s, 28 fps, h264
VIDCLF = Path(sys.executable).parent / "vidclf"
WINDOW = 0.8  # the trained fixture's clip: 4 frames every 0.2 s


def test_live_sources_are_recognised_by_scheme_device_or_flag():
    for source in ("rtsp://cam/stream", "RTMP://host/app", "srt://h:9000", "udp://127.0.0.1:5000", "tcp://h:1",
                   "https://cdn/live/index.m3u8?token=1", "/dev/video0", "-"):
        assert is_live(source), source
    for source in ("a.mp4", "https://bucket/video.mp4", "s3://bucket/a.ts", "/dev/null"):
        assert not is_live(source), source
    assert live_sources(["rtsp://a/1", "udp://127.0.0.1:9"], False) == ["rtsp://a/1", "udp://127.0.0.1:9"]
    assert live_sources("videos/", False) == []
    assert live_sources("a.mp4", True) == ["a.mp4"]
    with pytest.raises(VidclfError, match="mixes live sources .* and files"):
        live_sources(["rtsp://a/1", "a.mp4"], False)


def test_events_leave_out_runs_shorter_than_min_duration_and_smoothing_averages():
    events = Events("cam", min_duration=1.5)
    done = []
    labels = ["a", "a", "a", "b", "a", "a", "c", "c", "c", "c"]  # b: one 1 s window, a flicker
    for i, label in enumerate(labels):
        done += events.add(float(i), i + 1.0, {label: 0.5 + i / 100})
    done += events.close()
    assert [(e["start"], e["end"], e["label"]) for e in done] == [(0.0, 3.0, "a"), (4.0, 6.0, "a"), (6.0, 10.0, "c")]
    assert done[0]["prob"] == pytest.approx((0.5 + 0.51 + 0.52) / 3)
    smooth = Smoother(2)
    smooth(torch.tensor([1.0, 0.0]))
    assert smooth(torch.tensor([0.0, 1.0])).tolist() == [0.5, 0.5]
    assert smooth(torch.tensor([0.0, 1.0])).tolist() == [0.0, 1.0]


def file_timeline(ckpt: Path, video: Path, out: Path) -> list[dict]:
    assert vidclf("predict", *QUIET, "--ckpt_path", ckpt, "--data.predict", video, "--output", out / "file.csv",
                  "--timeline", out / "file_timeline.csv", "--data.num_workers", "0") == 0
    return read_csv(out / "file_timeline.csv")


def assert_like_file(live: list[dict], reference: list[dict], stride: float = WINDOW) -> None:
    """Each live window's label is the file timeline's within one window; the same window's probabilities
    are the file's (the same frames decoded) for most of them."""
    assert live
    same = 0
    for row in live:
        near = [r for r in reference if abs(float(r["start"]) - float(row["start"])) <= stride + 1e-6]
        assert row["label"] in {r["label"] for r in near}, row
        exact = [r for r in near if abs(float(r["start"]) - float(row["start"])) < 1e-6]
        same += bool(exact) and abs(float(exact[0]["prob"]) - float(row["prob"])) < 1e-4
    assert same >= len(live) / 2, f"{same} of {len(live)} windows scored as in the file"


def test_a_file_read_live_gives_the_file_timeline_in_real_time(trained, tmp_path, capsys):
    """--live true plays a file as a camera would: the rows, the events and the source's row."""
    ckpt = trained / "checkpoints/best.ckpt"
    video = next((SHARED_VIDEOS / "labeled_actions/clean_and_jerk").glob("*.mp4"))
    reference = file_timeline(ckpt, video, tmp_path)
    capsys.readouterr()
    began = time.time()
    assert vidclf("predict", *QUIET, "--ckpt_path", ckpt, "--data.predict", video, "--live", "true", "--output",
                  tmp_path / "live.csv", "--timeline", tmp_path / "timeline.csv", "--events", tmp_path / "events.jsonl",
                  "--print", "true", "--duration", "4") == 0
    assert time.time() - began >= 4  # real time: 4 s of stream take 4 s
    rows = read_csv(tmp_path / "timeline.csv")
    assert [float(r["start"]) for r in rows] == pytest.approx([0.0, 0.8, 1.6, 2.4, 3.2])
    assert_like_file(rows, reference)
    assert all(r["status"] == "ok" and float(r["lag"]) >= 0 and r["wall_time"] for r in rows)
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [p["start"] for p in printed if p["kind"] == "window"] == [float(r["start"]) for r in rows]
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert events and events[0]["start"] == 0.0 and events[-1]["end"] == 4.0
    assert [e for e in printed if e["kind"] == "event"] == [{"kind": "event", **e} for e in events]
    (summary,) = read_csv(tmp_path / "live.csv")
    assert (summary["path"], summary["status"], summary["windows"], summary["ended"]) == (str(video), "ok", "5",
                                                                                          "--duration")


def test_a_source_that_never_connects_is_one_line(trained, tmp_path, capsys):
    url = f"tcp://127.0.0.1:{free_port()}"
    code = vidclf("predict", *QUIET, "--ckpt_path", trained / "checkpoints/best.ckpt", "--data.predict", url,
                  "--output", tmp_path / "live.csv", "--reconnect", "1")
    assert code == 2  # vidclf's exit status for a refused run
    err = capsys.readouterr().err
    assert f"no live source could be read: cannot open {url}: Connection refused; check the" in err
    assert "Traceback" not in err
    assert read_csv(tmp_path / "live.csv")[0]["status"] == f"error: cannot open {url}: Connection refused"


# Real streams: vidclf runs as a process of its own, as a user runs it, while the test watches its files.

def start_live(ckpt: Path, sources: list[str], out: Path, *options: str) -> subprocess.Popen:
    return subprocess.Popen([str(VIDCLF), "predict", *QUIET, "--ckpt_path", str(ckpt), "--data.predict",
                             *(sources if len(sources) == 1 else [json.dumps(sources)]), "--output", str(out / "live.csv"),
                             "--timeline", str(out / "timeline.csv"), *options], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finished(process: subprocess.Popen, timeout: float = 60) -> str:
    _, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err
    return err


def rows_while(process: subprocess.Popen, path: Path, count: int = 2, timeout: float = 40) -> list[dict]:
    """The timeline's rows once it holds `count`, read while `process` (the sender) still runs."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        rows = read_csv(path) if path.exists() else []
        if len(rows) >= count:
            assert process.poll() is None, "the rows came only after the stream ended"
            return rows
        time.sleep(0.1)
    raise AssertionError(f"no rows in {path} after {timeout} s")


@pytest.mark.slow
def test_mpeg_ts_over_tcp_rows_arrive_while_it_plays(trained, tmp_path):
    ckpt = trained / "checkpoints/best.ckpt"
    reference = file_timeline(ckpt, CLIP, tmp_path)
    port = free_port()
    sender = send(CLIP, f"tcp://127.0.0.1:{port}?listen=1", "mpegts", 6)
    try:
        live = start_live(ckpt, [f"tcp://127.0.0.1:{port}"], tmp_path, "--reconnect", "0")
        early = rows_while(sender, tmp_path / "timeline.csv")
        finished(live)
    finally:
        stop(sender)
    rows = read_csv(tmp_path / "timeline.csv")
    assert rows[:len(early)] == early  # flushed rows stay as written
    assert len(rows) >= 6 and all(float(r["lag"]) < 5 for r in rows)
    assert_like_file(rows, reference)
    (summary,) = read_csv(tmp_path / "live.csv")
    assert summary["status"] == "ok" and int(summary["windows"]) == len(rows)


@pytest.mark.slow
def test_mpeg_ts_over_udp(trained, tmp_path):
    ckpt = trained / "checkpoints/best.ckpt"
    reference = file_timeline(ckpt, CLIP, tmp_path)
    port = free_port()
    live = start_live(ckpt, [f"udp://127.0.0.1:{port}"], tmp_path, "--reconnect", "0")
    deadline = time.time() + 60
    while not udp_bound(port):  # the reader listens before the first datagram is sent
        assert time.time() < deadline and live.poll() is None, live.stderr.read() if live.poll() is not None else ""
        time.sleep(0.05)
    sender = send(CLIP, f"udp://127.0.0.1:{port}?pkt_size=1316", "mpegts", 5)
    try:
        rows_while(sender, tmp_path / "timeline.csv")
        finished(live)
    finally:
        stop(sender)
    assert_like_file(read_csv(tmp_path / "timeline.csv"), reference)


@pytest.mark.slow
@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_rtsp_camera(trained, tmp_path, transport):
    ckpt = trained / "checkpoints/best.ckpt"
    reference = file_timeline(ckpt, CLIP, tmp_path)
    port = free_port()
    server = rtsp_server(CLIP, port)
    try:  # a camera's URL with its password: never written anywhere
        err = finished(start_live(ckpt, [f"rtsp://viewer:s3cret-pw@127.0.0.1:{port}/clip"], tmp_path,
                                  "--rtsp_transport", transport, "--duration", "4", "--reconnect", "0", "--print", "true"))
    finally:
        stop(server)
    assert all("s3cret-pw" not in text for text in (err, (tmp_path / "timeline.csv").read_text(),
                                                    (tmp_path / "live.csv").read_text()))
    assert read_csv(tmp_path / "live.csv")[0]["path"] == f"rtsp://viewer:REDACTED@127.0.0.1:{port}/clip"
    rows = read_csv(tmp_path / "timeline.csv")
    assert [float(r["start"]) for r in rows] == pytest.approx([0.0, 0.8, 1.6, 2.4, 3.2])
    assert_like_file(rows, reference)


@pytest.mark.slow
def test_live_hls_and_a_pipe(trained, tmp_path):
    ckpt = trained / "checkpoints/best.ckpt"
    reference = file_timeline(ckpt, CLIP, tmp_path)
    sender, url = hls(CLIP, tmp_path / "hls")
    try:
        finished(start_live(ckpt, [url], tmp_path, "--reconnect", "0"))
    finally:
        stop(sender)
    rows = read_csv(tmp_path / "timeline.csv")
    assert rows and (tmp_path / "hls/live.m3u8").read_text().count(".ts") >= 2  # segments as they were cut
    assert_like_file(rows, reference)
    assert read_csv(tmp_path / "live.csv")[0]["ended"] == "stream end"
    (tmp_path / "timeline.csv").unlink()
    ffmpeg = subprocess.Popen([FFMPEG, "-hide_banner", "-loglevel", "error", "-re", "-i", str(CLIP), "-t", "4",
                               "-c", "copy", "-an", "-f", "mpegts", "-"], stdout=subprocess.PIPE)
    live = subprocess.run([str(VIDCLF), "predict", *QUIET, "--ckpt_path", str(ckpt), "--data.predict", "-",
                           "--output", str(tmp_path / "pipe.csv"), "--print", "true", "--overwrite", "true"],
                          stdin=ffmpeg.stdout, capture_output=True, text=True, timeout=60)
    ffmpeg.wait()
    assert live.returncode == 0, live.stderr
    printed = [json.loads(line) for line in live.stdout.splitlines()]
    windows = [p for p in printed if p["kind"] == "window"]
    assert windows and all(p["source"] == "-" for p in windows)
    assert_like_file([{k: str(v) for k, v in p.items()} for p in windows], reference)
    assert read_csv(tmp_path / "pipe.csv")[0]["status"] == "ok"


@pytest.mark.slow
def test_a_dropped_sender_is_reconnected_with_a_gap_row_and_no_lost_rows(trained, tmp_path):
    ckpt = trained / "checkpoints/best.ckpt"
    port = free_port()
    sender = send(CLIP, f"tcp://127.0.0.1:{port}?listen=1", "mpegts", 10)
    live = start_live(ckpt, [f"tcp://127.0.0.1:{port}"], tmp_path, "--reconnect", "4")
    try:
        before = rows_while(sender, tmp_path / "timeline.csv", count=3)
        sender.kill()  # mid-stream
        sender.wait()
        time.sleep(1.0)
        sender = send(CLIP, f"tcp://127.0.0.1:{port}?listen=1", "mpegts", 3)
        sender.wait(30)
        finished(live)
    finally:
        stop(sender)
        stop(live)
    rows = read_csv(tmp_path / "timeline.csv")
    assert rows[:len(before)] == before
    gaps = [r for r in rows if r["status"].startswith("gap")]
    assert len(gaps) == 1 and "back after" in gaps[0]["status"]
    after = rows[rows.index(gaps[0]) + 1:]
    assert len(after) >= 2 and float(after[0]["start"]) >= float(gaps[0]["end"]) - 1e-6
    starts = [float(r["start"]) for r in rows if r["status"] == "ok"]
    assert starts == sorted(starts)  # the stream clock goes on across the gap
    (summary,) = read_csv(tmp_path / "live.csv")
    assert (summary["status"], summary["gaps"]) == ("ok", "1")


@pytest.mark.slow
def test_garbage_source_says_why_and_the_other_goes_on_until_sigterm(trained, tmp_path):
    ckpt = trained / "checkpoints/best.ckpt"
    bad, good = free_port(), free_port()
    garbage_server(bad)
    sender = send(CLIP, f"tcp://127.0.0.1:{good}?listen=1", "mpegts", 10)
    live = start_live(ckpt, [f"tcp://127.0.0.1:{bad}", f"tcp://127.0.0.1:{good}"], tmp_path, "--reconnect", "1",
                      "--events", str(tmp_path / "events.csv"))
    try:
        rows_while(sender, tmp_path / "timeline.csv", count=3)
        live.send_signal(signal.SIGTERM)  # rows flushed, the main output written, exit 0
        err = finished(live, 30)
    finally:
        stop(sender)
    assert "SIGTERM: stopping" in err and "Traceback" not in err
    first, second = read_csv(tmp_path / "live.csv")
    assert first["path"] == f"tcp://127.0.0.1:{bad}" and first["status"].startswith("error: ")
    assert second["status"] == "ok" and second["ended"] == "stopped" and int(second["windows"]) >= 3
    assert {r["source"] for r in read_csv(tmp_path / "timeline.csv")} == {f"tcp://127.0.0.1:{good}"}
    assert read_csv(tmp_path / "events.csv")  # the open run closed as an event at the stop


@pytest.mark.slow
def test_serve_streams_live_rows_to_clients_and_the_page_scores_the_visitors_camera(trained, tmp_path_factory):
    from test_serve import CHROMIUM, Server

    port = free_port()
    source = f"tcp://127.0.0.1:{port}"
    sender = send(CLIP, f"{source}?listen=1", "mpegts")
    # (a short TMPDIR: the server's multiprocessing sockets live there, and their paths have a length limit)
    server = Server(trained / "checkpoints/best.ckpt", tmp_path_factory.mktemp("live"), "--streams", json.dumps([source]))
    try:
        info = json.loads(urllib.request.urlopen(f"{server.url}/info", timeout=10).read())
        assert info["streams"] == [source]
        rows, last_id = watch(f"{server.url}/streams/events", count=3)
        windows = [r for r in rows if r["kind"] == "window"]
        assert windows and all(r["source"] == source and r["label"] in info["classes"] for r in windows)
        later, _ = watch(f"{server.url}/streams/events", count=1, last_id=last_id)  # a reconnection goes on
        assert later[0]["start"] > windows[-1]["start"]
        if not Path(CHROMIUM).exists():
            pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=[
                "--no-sandbox", "--disable-gpu", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"])
            page = browser.new_page()
            page.goto(server.url)
            page.wait_for_function("document.querySelector('.source .now') && "
                                   "/%/.test(document.querySelector('.source .now').textContent)", timeout=60_000)
            assert page.text_content(".source .name") == source
            page.click("#camera-start")  # Chromium's fake camera: recordings of it go to /predict
            page.wait_for_function("document.getElementById('camera-label').textContent.length > 0", timeout=90_000)
            label = page.text_content("#camera-label")
            assert any(label.startswith(name + " ") for name in info["classes"]), label
            page.click("#camera-stop")
            browser.close()
    finally:
        stop(sender)
        code, output = server.stop()
    assert code == 0, output[-3000:]


def watch(url: str, count: int, last_id: str = "", timeout: float = 90) -> tuple[list[dict], str]:
    """The first `count` rows of a server-sent event stream (reconnecting with the last id, as a browser's
    EventSource does, when a connection ends), and the last event id seen."""
    rows, ident, deadline = [], last_id, time.time() + timeout
    while time.time() < deadline:
        request = urllib.request.Request(url, headers={"Last-Event-ID": ident} if ident else {})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            assert response.headers["Content-Type"].startswith("text/event-stream")
            for line in response:
                line = line.decode().rstrip("\n")
                if line.startswith("id: "):
                    ident = line[4:]
                elif line.startswith("data: "):
                    rows.append(json.loads(line[6:]))
                if len(rows) >= count and ident and not line:  # a whole event read
                    return rows, ident
    raise AssertionError(f"{len(rows)} rows from {url} in {timeout} s")


@pytest.mark.slow
def test_rtmp_and_srt_through_a_pipe(trained, tmp_path):
    """RTMP straight in; SRT, which PyAV's FFmpeg lacks, refused in one line that gives the pipe, which works."""
    ckpt = trained / "checkpoints/best.ckpt"
    reference = file_timeline(ckpt, CLIP, tmp_path)
    port = free_port()
    sender = send(CLIP, f"rtmp://127.0.0.1:{port}/live/cam", "flv", 4, "-listen", "1")
    try:
        finished(start_live(ckpt, [f"rtmp://127.0.0.1:{port}/live/cam"], tmp_path, "--reconnect", "0"))
    finally:
        stop(sender)
    assert_like_file(read_csv(tmp_path / "timeline.csv"), reference)
    port = free_port()
    url = f"srt://127.0.0.1:{port}"
    refused = subprocess.run([str(VIDCLF), "predict", *QUIET, "--ckpt_path", str(ckpt), "--data.predict", url,
                              "--output", str(tmp_path / "srt.csv")], capture_output=True, text=True, timeout=60)
    if refused.returncode == 0:  # a PyAV built with libsrt: nothing to refuse
        return
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert f"PyAV's FFmpeg has no srt; receive it with an ffmpeg that has and pipe it in: ffmpeg -i '{url}'" in refused.stderr
    sender = send(CLIP, f"{url}?mode=listener", "mpegts", 4)
    receiver = subprocess.Popen([FFMPEG, "-hide_banner", "-loglevel", "error", "-i", url, "-c", "copy", "-f", "mpegts",
                                 "-"], stdout=subprocess.PIPE)
    try:
        piped = subprocess.run([str(VIDCLF), "predict", *QUIET, "--ckpt_path", str(ckpt), "--data.predict", "-",
                                "--output", str(tmp_path / "srt.csv"), "--overwrite", "true", "--timeline",
                                str(tmp_path / "srt_timeline.csv")], stdin=receiver.stdout, capture_output=True,
                               text=True, timeout=60)
    finally:
        stop(sender)
        stop(receiver)
    assert piped.returncode == 0, piped.stderr
    assert_like_file(read_csv(tmp_path / "srt_timeline.csv"), reference)


@pytest.mark.slow
def test_a_multi_label_model_live(tagged_run, tmp_path):
    """Rows carry every label over its threshold and each class's probability, as the file timeline's;
    events come per label."""
    ckpt = tagged_run / "checkpoints/best.ckpt"
    video = next((SHARED_VIDEOS / "labeled_actions/clean_and_jerk").glob("*.mp4"))
    assert vidclf("predict", *QUIET, "--ckpt_path", ckpt, "--data.predict", video, "--output", tmp_path / "file.csv",
                  "--timeline", tmp_path / "file_timeline.csv", "--model.threshold", "0.45") == 0
    reference = {r["start"]: r for r in read_csv(tmp_path / "file_timeline.csv")}
    assert vidclf("predict", *QUIET, "--ckpt_path", ckpt, "--data.predict", video, "--live", "true", "--duration", "4",
                  "--output", tmp_path / "live.csv", "--timeline", tmp_path / "timeline.csv", "--events",
                  tmp_path / "events.csv", "--model.threshold", "0.45") == 0
    rows = read_csv(tmp_path / "timeline.csv")
    assert len(rows) == 5 and any(r["labels"] for r in rows)
    for row in rows:
        same = reference[row["start"]]
        assert row["labels"] == same["labels"]
        assert all(abs(float(row[k]) - float(same[k])) < 1e-4 for k in row if k.startswith("prob_"))
    shown = {label for r in rows for label in r["labels"].split(";") if label}
    events = read_csv(tmp_path / "events.csv")
    assert {e["label"] for e in events} == shown
