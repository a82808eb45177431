"""Live streams on 127.0.0.1 for the tests: ffmpeg sending a real clip in real time (MPEG-TS over TCP and
UDP, HLS), GStreamer's RTSP server, and a server that sends garbage; each stopped by the test."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

FFMPEG = shutil.which("ffmpeg")
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's, where GStreamer's Python bindings are installed

RTSP_SERVER = """
import sys, gi
gi.require_version("Gst", "1.0"); gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer
Gst.init(None)
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1"); server.set_service(sys.argv[1])
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch('( filesrc location="%s" ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1 )'
                   % sys.argv[2])
server.get_mount_points().add_factory("/clip", factory)
server.attach(None)
print("ready", flush=True)
GLib.MainLoop().run()
"""


def need_ffmpeg() -> None:
    if FFMPEG is None:
        if os.environ.get("VIDCLF_REQUIRE_STREAMS"):
            pytest.fail("ffmpeg is not installed (CI installs Debian's ffmpeg: .ci/run)")
        pytest.skip("ffmpeg is not installed (apt-get install ffmpeg)")


def need_rtsp_server() -> None:
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0')"],
                           capture_output=True) if os.path.exists(SYSTEM_PYTHON) else None
    if probe is None or probe.returncode:
        if os.environ.get("VIDCLF_REQUIRE_STREAMS"):
            pytest.fail("GStreamer's RTSP server is not installed (.ci/run installs gir1.2-gst-rtsp-server-1.0)")
        pytest.skip("GStreamer's RTSP server is not installed (apt-get install gir1.2-gst-rtsp-server-1.0 python3-gi)")


def send(video: Path, url: str, fmt: str = "mpegts", seconds: float | None = None, *extra: str) -> subprocess.Popen:
    """ffmpeg sending `video` in real time (its packets as they are: no re-encoding) to `url`."""
    need_ffmpeg()
    cut = ["-t", str(seconds)] if seconds else []
    return subprocess.Popen([FFMPEG, "-hide_banner", "-loglevel", "error", "-re", "-i", str(video), *cut, "-c", "copy",
                             "-an", *extra, "-f", fmt, url], stdin=subprocess.DEVNULL)


def rtsp_server(video: Path, port: int) -> subprocess.Popen:
    """GStreamer's RTSP server on 127.0.0.1:`port`, serving `video` at /clip from its start to each client."""
    need_rtsp_server()
    server = subprocess.Popen([SYSTEM_PYTHON, "-c", RTSP_SERVER, str(port), str(video)], stdout=subprocess.PIPE,
                              text=True)
    assert server.stdout.readline().strip() == "ready"
    return server


def hls(video: Path, folder: Path) -> tuple[subprocess.Popen, str]:
    """ffmpeg writing `video` as a live HLS playlist (1 s segments) into `folder` in real time, and the
    playlist's URL on a local HTTP server (stopped when the process ends: a daemon thread)."""
    folder.mkdir(parents=True, exist_ok=True)
    sender = send(video, str(folder / "live.m3u8"), "hls", None, "-hls_time", "1", "-hls_list_size", "0",
                  "-hls_flags", "independent_segments")
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    deadline = time.time() + 20
    while not (folder / "live.m3u8").exists():  # two segments before the playlist is opened
        assert time.time() < deadline, "ffmpeg wrote no HLS playlist"
        time.sleep(0.1)
    return sender, f"http://127.0.0.1:{server.server_address[1]}/live.m3u8"


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def garbage_server(port: int) -> threading.Thread:
    """A TCP server on 127.0.0.1:`port` that answers every connection with bytes that are no video."""
    listener = socket.create_server(("127.0.0.1", port))

    def serve() -> None:
        while True:
            conn, _ = listener.accept()
            try:
                conn.sendall(os.urandom(1 << 20))
            except OSError:
                pass
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def udp_bound(port: int) -> bool:
    """Whether something (vidclf's reader) has bound UDP 127.0.0.1:`port`."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
