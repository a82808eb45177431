"""Live sources (cameras, network streams, a pipe): frames decoded in their own thread into a ring buffer.

A `LiveSource` keeps the last few seconds of a stream as small RGB frames with their stream time (seconds
since vidclf began reading it, continuous across reconnections), the source's own timestamp and the
wall-clock time each arrived. Memory is bounded by time, not by how far behind the reader of the frames
is. A dropped connection is opened again with backoff; the gap is recorded for the rows.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Optional
from urllib.parse import urlsplit

import av
import numpy as np

from vidclf.data.failures import reason
from vidclf.data.rgb import RGBFrames
from vidclf.io.secrets import redact_url

SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "srt", "udp", "tcp", "rtp")  # always live
OPEN_TIMEOUT, READ_TIMEOUT = 10.0, 5.0  # seconds: a connection, then a stall, is given up after these
MAX_FPS = 240  # frames held per second of the ring at most, whatever a broken stream claims


def is_live(source: str) -> bool:
    """A stream rather than a file: `-` (standard input), a capture device, a streaming scheme, or HLS."""
    if source == "-" or source.startswith("/dev/video"):
        return True
    parts = urlsplit(source)
    scheme = parts.scheme.lower()
    return scheme in SCHEMES or (scheme in ("http", "https") and parts.path.lower().endswith(".m3u8"))


@dataclass
class Frame:
    time: float  # stream seconds since vidclf began reading the source
    pts: Optional[float]  # the source's own timestamp, seconds
    arrived: float  # time.time() when it was decoded
    image: np.ndarray  # (H, W, 3) uint8, short side as asked


@dataclass
class Gap:
    at: float  # stream time where the source was lost
    seconds: float  # wall-clock seconds until frames came again
    why: str


class LiveSource:
    """Reads `source` in a daemon thread from `start()` until it ends, fails for good, or `stop()`.

    `keep` seconds of frames are held (the newest frame's time minus `keep`); `reconnect` further
    attempts follow a lost or refused connection, 0.5 s apart and doubling (10 s at most). `paced`: a file
    read as a live source is read in real time, as a camera would send it. `transport`: RTSP's.
    """

    def __init__(self, source: str, short_side: int, keep: float, reconnect: int = 5, transport: str = "tcp",
                 paced: bool = False):
        self.source, self.name = source, redact_url(source)
        self.short_side, self.keep, self.reconnect = short_side, keep, reconnect
        self.transport, self.paced = transport, paced
        self.frames: deque[Frame] = deque(maxlen=max(16, int(keep * MAX_FPS)))
        self.changed = threading.Condition()
        self.gaps: list[Gap] = []  # appended by the reader; the scorer reads them in order
        self.ended = False
        self.connected = False  # ever
        self.error = ""  # why it ended, when not at the stream's end
        self.epoch = 0  # bumped by each reconnection: windows do not span a gap
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"vidclf-live-{self.name}", daemon=True)

    def start(self) -> "LiveSource":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with self.changed:
            self.changed.notify_all()

    def newest(self) -> Optional[Frame]:
        with self.changed:
            return self.frames[-1] if self.frames else None

    def wait(self, until: float, epoch: int, timeout: float = 0.5) -> None:
        """Block until a frame at or after stream time `until` arrived, the epoch changed, or the source ended."""
        with self.changed:
            self.changed.wait_for(lambda: self.ended or self.epoch != epoch
                                  or (self.frames and self.frames[-1].time >= until), timeout)

    def pick(self, times: np.ndarray, due: float) -> tuple[np.ndarray, Frame]:
        """The frame on screen at each of `times` (T,) as (T, H, W, 3), and the first frame at or after `due`
        (the window's end: its arrival completed the window)."""
        with self.changed:
            held = list(self.frames)
        stamps = np.array([f.time for f in held])
        at = np.clip(np.searchsorted(stamps, times, side="right") - 1, 0, len(held) - 1)
        after = held[min(int(np.searchsorted(stamps, due - 1e-6, side="left")), len(held) - 1)]
        return np.stack([held[i].image for i in at]), after

    def _run(self) -> None:
        offset, lost_at, why = 0.0, None, ""
        attempts = 0
        while not self._stop.is_set():
            try:
                container = self._open()
            except Exception as err:  # refused, unreachable, not a video: try again, then give up
                refused = f"cannot open {self.name}: {reason(err)}"
                attempts += 1
                if "Protocol not found" in refused:  # PyAV's FFmpeg lacks it (srt): no retry will help
                    scheme = urlsplit(self.source).scheme
                    return self._end(f"{refused}: PyAV's FFmpeg has no {scheme}; receive it with an ffmpeg that has and "
                                     f"pipe it in: ffmpeg -i '{self.name}' -c copy -f mpegts - | vidclf predict "
                                     f"--data.predict - ...")
                if attempts > self.reconnect or self.source == "-":
                    return self._end(refused if not self.connected else
                                     f"{why or 'the stream ended'}; {attempts - 1} reconnection attempt(s) failed "
                                     f"({reason(err)})")
                self._stop.wait(min(10.0, 0.5 * 2 ** (attempts - 1)))
                continue
            if lost_at is not None:  # back after a drop: the stream clock goes on by the wall-clock gap
                gap = time.time() - lost_at
                offset = (self.frames[-1].time if self.frames else offset) + gap
                with self.changed:
                    self.gaps.append(Gap(offset - gap, gap, why))
                    self.frames.clear()
                    self.epoch += 1
                    self.changed.notify_all()
            attempts = 0
            why = self._read(container, offset)
            container.close()
            if self._stop.is_set() or self.source == "-" or (self.paced and not why):
                return self._end(why)
            lost_at = time.time()
            if self.frames:
                offset = self.frames[-1].time
            if attempts >= self.reconnect:
                return self._end(why)
        self._end("")

    def _open(self):
        parts = urlsplit(self.source)
        options = {}
        if parts.scheme.lower() in ("rtsp", "rtsps"):
            options["rtsp_transport"] = self.transport
        if parts.scheme.lower() == "udp":  # a late reader loses datagrams rather than stopping
            options.update(overrun_nonfatal="1", fifo_size="100000")
        target = sys.stdin.buffer if self.source == "-" else self.source
        container = av.open(target, format="v4l2" if self.source.startswith("/dev/video") else None,
                            options=options, timeout=(OPEN_TIMEOUT, READ_TIMEOUT), metadata_errors="ignore")
        if not container.streams.video:
            container.close()
            raise ValueError("no video stream")
        self.connected = True
        return container

    def _read(self, container, offset: float) -> str:
        """Decode frames into the ring until the stream ends ("") or fails (why)."""
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rgb, first, began = RGBFrames(), None, time.time()
        step = 1 / float(stream.average_rate or stream.guessed_rate or 25)
        last = None
        try:
            for frame in container.decode(stream):
                if self._stop.is_set():
                    return ""
                pts = frame.time
                if pts is None:  # no timestamp: one frame on from the last
                    pts = (last or 0.0) + step
                first = pts if first is None else first
                if last is not None and pts <= last:  # a backwards jump (a restarted sender): keep the clock going
                    first -= last - pts + step
                last = pts
                now = offset + pts - first
                if self.paced:  # a file as a camera: frames at their own pace
                    self._stop.wait(max(0.0, began + (pts - first) - time.time()))
                item = Frame(now, pts, time.time(), rgb(frame, self.short_side))
                with self.changed:
                    self.frames.append(item)
                    while self.frames[0].time < now - self.keep:
                        self.frames.popleft()
                    self.changed.notify_all()
        except Exception as err:  # a dropped connection, a stall past READ_TIMEOUT, data that does not decode
            return reason(err)
        return ""

    def _end(self, why: str) -> None:
        with self.changed:
            self.ended, self.error = True, why
            self.changed.notify_all()
