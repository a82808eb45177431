"""Decode just the frames a clip needs, with PyAV, straight to the size the model wants.

Frames are picked by timestamp (the frame on screen at each wanted time), so variable frame rate
video samples correctly; only kept frames are colour-converted and resized (by libswscale, in one
step), audio is never decoded, and several clips of one video come from a single pass that seeks
only across long gaps.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass

import av
import numpy as np
from av.video.reformatter import VideoReformatter

SEEK_GAP = 1.0  # seconds; nearer wanted frames are reached by decoding on rather than seeking


class DecodeError(Exception):
    """The file could not be opened or decoded as video; the message says why."""


@dataclass(frozen=True)
class VideoInfo:
    duration: float  # seconds, from the first frame's timestamp to the end of the last
    width: int  # as coded; frames are turned upright per their rotation metadata when converted
    height: int


class VideoReader:
    """An open video file. Use as a context manager.

    Example:
        >>> with VideoReader("a.mp4") as video:
        ...     times = clip_times([0.0, 2.0], frames=8, interval=8 / 30)
        ...     clips = video.clips(times, short_side=182)  # (2, 8, 182, W, 3) uint8
    """

    def __init__(self, path: str):
        self.path = path
        try:
            # Probing decodes the first frames only to learn what the headers and parsers already say
            # (size, rate, duration: the same for all 110 files in ../shared/videos and every
            # container tested): told to skip them, opening takes 0.8 ms instead of 3 (~8% of a
            # training clip). Decoding itself is unaffected.
            self.container = av.open(path, metadata_errors="ignore", options={"skip_frame": "all"})
        except (av.error.FFmpegError, OSError, UnicodeDecodeError) as err:
            raise DecodeError(f"cannot open: {_reason(err)}") from None
        if not self.container.streams.video:
            self.container.close()
            raise DecodeError("no video stream")
        self.stream = self.container.streams.video[0]
        # One thread: parallelism comes from DataLoader workers. Frame threads cost more CPU per
        # clip than they save (seeks flush them), and would oversubscribe the workers' cores.
        self.stream.thread_type, self.stream.codec_context.thread_count = "SLICE", 1
        self.tb = float(self.stream.time_base or 0)  # Fraction arithmetic per packet costs ~5% of a clip
        self.start = self.stream.start_time * self.tb if self.stream.start_time is not None else 0.0
        # One reformatter keeps its libswscale context across a clip's frames (all one size);
        # frame.to_ndarray(width=...) builds a new one, with its own threads, for every frame (5x slower).
        self.reformatter = VideoReformatter()
        self.info = VideoInfo(self._duration(), self.stream.codec_context.width, self.stream.codec_context.height)

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.container.close()

    def _duration(self) -> float:
        s = self.stream
        if s.duration and s.time_base:
            return float(s.duration * s.time_base)
        if self.container.duration:
            return self.container.duration / av.time_base - self.start
        # WebM from a browser may carry no duration: read packet timestamps (no decoding)
        end = 0.0
        for packet in self.container.demux(s):
            if packet.pts is not None:
                end = max(end, float((packet.pts + (packet.duration or 0)) * packet.time_base) - self.start)
        self.container.seek(0)
        return end

    def clips(self, times: np.ndarray, short_side: int) -> np.ndarray:
        """Frames shown at `times` (N, T seconds from the start), short side resized to `short_side`.

        Returns uint8 (N, T, H, W, 3), upright. Times past the end repeat the last frame, so
        videos shorter than a clip are padded.
        """
        flat = times.reshape(-1)
        order = np.argsort(flat, kind="stable")
        out = [None] * len(flat)
        for slot, image in zip(order, self._frames_at(flat[order].tolist(), short_side)):
            out[slot] = image
        return np.stack(out).reshape(*times.shape, *out[0].shape)

    def _frames_at(self, wanted: list[float], short_side: int, skip: bool = True) -> list[np.ndarray]:
        """The frame on screen at each of the sorted `wanted` times, as RGB with `short_side`.

        Each frame is converted as soon as it is picked (once, however many times it is picked), so
        only the small images are held: not a full-size decoded frame per wanted time.

        With `skip`, frames no other frame depends on (non-reference B-frames) are not decoded unless
        one of them may be on screen at a wanted time: ~40% of the frames between the keyframe and
        a clip's end. If a skipped frame turns out to be the one on screen (a variable-rate gap),
        the clip is decoded again without skipping, so the result is always exact.
        """
        out: list[np.ndarray] = []
        times: list[float] = []  # time of each frame in `out`
        self.skipped: list[float] = []  # times of packets decoded with non-reference frames skipped
        prev, prev_t, aimed = None, 0.0, 0.0  # aimed: the time the last seek went for
        picked = (None, None)  # the last frame picked and its image

        def pick(frame, t: float) -> None:
            nonlocal picked
            if picked[0] is not frame:
                picked = (frame, self._to_rgb(frame, short_side))
            out.append(picked[1])
            times.append(t)

        try:
            while len(out) < len(wanted):
                target = wanted[len(out)]
                if target - prev_t > SEEK_GAP or not skip and not out:
                    self._seek(target)
                    prev, aimed = None, target
                for frame in self._decode(wanted, out, skip):
                    t = self._time(frame, prev_t if prev is not None else None)
                    while len(out) < len(wanted) and t > wanted[len(out)] + 1e-6:
                        if prev is None:  # wanted before the first frame: the first frame
                            pick(frame, t)
                        else:
                            pick(prev, prev_t)
                    prev, prev_t = frame, t
                    if len(out) == len(wanted):
                        break
                    if wanted[len(out)] > aimed and wanted[len(out)] - t > SEEK_GAP:
                        break  # a long gap: seeking beats decoding through it
                else:  # end of stream: pad with the last frame
                    if prev is None:
                        raise DecodeError("no decodable video frames")
                    while len(out) < len(wanted):
                        pick(prev, prev_t)
        except av.error.FFmpegError as err:
            raise DecodeError(f"decoding failed: {_reason(err)}") from None
        finally:
            self.stream.codec_context.skip_frame = "DEFAULT"
        if skip and self.skipped:
            skipped = np.asarray(self.skipped)[:, None]
            if ((np.asarray(times) < skipped) & (skipped <= np.asarray(wanted) + 1e-6)).any():
                return self._frames_at(wanted, short_side, skip=False)
        return out

    def _decode(self, wanted: list[float], out: list, skip: bool):
        """Decoded frames from the current position; with `skip`, non-reference frames that cannot
        be on screen at a wanted time still pending (wanted[len(out):]) are skipped."""
        context, tb = self.stream.codec_context, self.tb
        for packet in self.container.demux(self.stream):
            shown = True
            if skip and packet.pts is not None and packet.duration and tb:
                t = packet.pts * tb - self.start
                i = bisect_left(wanted, t - 1e-6, len(out))
                shown = i < len(wanted) and wanted[i] < t + 1.5 * packet.duration * tb
                if not shown:
                    self.skipped.append(t)
            context.skip_frame = "DEFAULT" if shown else "NONREF"
            yield from packet.decode()

    def _time(self, frame, prev_t) -> float:
        if frame.pts is not None and self.tb:
            return frame.pts * self.tb - self.start
        step = 1.0 / float(self.stream.average_rate or 30)  # no timestamp: assume constant rate
        return 0.0 if prev_t is None else prev_t + step

    def _seek(self, t: float) -> None:
        self.container.seek(int((t + self.start) / self.stream.time_base), stream=self.stream,
                            backward=True, any_frame=False)

    def _to_rgb(self, frame, short_side: int) -> np.ndarray:
        scale = short_side / min(frame.width, frame.height)
        width, height = max(1, round(frame.width * scale)), max(1, round(frame.height * scale))
        image = self.reformatter.reformat(frame, width, height, "rgb24", interpolation="BILINEAR", threads=1).to_ndarray()
        turns = (round((frame.rotation or 0) / 90)) % 4
        return np.ascontiguousarray(np.rot90(image, turns)) if turns else image


def clip_times(starts, frames: int, interval: float) -> np.ndarray:
    """(N, frames) timestamps: clip n starts at starts[n], frames `interval` seconds apart."""
    return np.asarray(starts, dtype=np.float64)[:, None] + np.arange(frames) * interval


def uniform_starts(duration: float, clip_seconds: float, num_clips: int) -> list[float]:
    """`num_clips` clip starts spread evenly so the clips cover the whole video."""
    last = max(0.0, duration - clip_seconds)
    if num_clips == 1:
        return [last / 2]
    return [last * i / (num_clips - 1) for i in range(num_clips)]


def _reason(err: Exception) -> str:
    text = getattr(err, "strerror", None) or str(err)
    return " ".join(str(text).split()) or type(err).__name__

