"""Decode just the frames a clip needs, with PyAV, straight to the size the model wants.

Frames are picked by timestamp (the frame on screen at each wanted time), so variable frame rate
video samples correctly; only kept frames are colour-converted and resized (by libswscale, in one
step), audio is never decoded, and several clips of one video come from a single pass that seeks
only across long gaps.

Damaged files decode as far as they can, as players show them: a packet the decoder rejects is
skipped (FFmpeg conceals the damage in the frames that follow), data that ends early ends the
video there, and what was met is reported (`warning`, `cut_at`) rather than refusing the file.
Files whose seeks are unreliable (WebM/MKV without cues, damaged indexes) are decoded front to back.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from typing import Optional

import av
import numpy as np

from vidclf.data.duration import VideoInfo, demuxed_duration, stream_duration
from vidclf.data.failures import DecodeError, reason
from vidclf.data.rgb import RGBFrames
from vidclf.io import storage
from vidclf.io.remote_video import open_video
from vidclf.io.sniff import missing, not_regular

SEEK_GAP = 1.0  # seconds; nearer wanted frames are reached by decoding on rather than seeking


class _SeekFailed(Exception):
    """A seek landed after the wanted time, or decoding after it failed: decode front to back instead."""


class VideoReader:
    """An open video file. Use as a context manager.

    Example:
        >>> with VideoReader("a.mp4") as video:
        ...     times = clip_times([0.0, 2.0], frames=8, interval=8 / 30)
        ...     clips = video.clips(times, short_side=182)  # (2, 8, 182, W, 3) uint8
    """

    def __init__(self, path: str):
        self.path, self.container, self.file = path, None, None
        self.seekable = True  # False once a seek went wrong in this file: it is then decoded front to back
        self.damaged: list[float] = []  # times of packets the decoder rejected (skipped)
        self.damage = ""  # FFmpeg's reason for the first of them, or for data ending early
        self.cut_at: Optional[float] = None  # last frame's time when the video ended well before `duration`
        self._held: tuple = (None, 0.0)  # the last decoded frame and its time, where decoding stands
        self.rgb = RGBFrames()  # keeps its libswscale context and frame size across the file's frames
        try:
            refused = "" if storage.is_remote(path) else missing(path) or not_regular(path)
            if refused:
                raise DecodeError(refused)
            self._open()
            self.info = VideoInfo(self._duration(), self.stream.codec_context.width,
                                  self.stream.codec_context.height)
        except Exception as err:  # a damaged header can trip any step of opening: the file gets a row
            self.__exit__()
            if isinstance(err, DecodeError):
                raise err
            raise DecodeError(storage.reason(err) if self.file is None and storage.is_remote(path)
                              else f"cannot open: {reason(err)}") from None

    def _open(self) -> None:
        self.close()
        if storage.is_remote(self.path):  # fetched once; a reopen starts the same bytes again
            self.file = self.file or open_video(self.path)
            self.file.seek(0)
        # Probing decodes the first frames only to learn what the headers and parsers already say
        # (size, rate, duration: the same for all 110 files in ../shared/videos and every
        # container tested): told to skip them, opening takes 0.8 ms instead of 3 (~8% of a
        # training clip). Decoding itself is unaffected.
        self.container = av.open(self.file or self.path, metadata_errors="ignore", options={"skip_frame": "all"})
        if not self.container.streams.video:
            raise DecodeError("no video stream")
        self.stream = self.container.streams.video[0]
        if self.stream.codec_context is None:
            raise DecodeError("unknown video codec (FFmpeg has no decoder for it, or its header is damaged)")
        # One thread: parallelism comes from DataLoader workers. Frame threads cost more CPU per
        # clip than they save (seeks flush them), and would oversubscribe the workers' cores.
        self.stream.thread_type, self.stream.codec_context.thread_count = "SLICE", 1
        self.tb = float(self.stream.time_base or 0)  # Fraction arithmetic per packet costs ~5% of a clip
        self.start = self.stream.start_time * self.tb if self.stream.start_time is not None else 0.0
        self._held, self._need_key = (None, 0.0), None

    def close(self) -> None:
        if self.container is not None:
            self.container.close()
            self.container = None

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
        if self.file is not None:  # a remote object's bytes or block cache
            self.file.close()

    def _duration(self) -> float:
        duration = stream_duration(self.container, self.stream, self.start)
        if duration is None:  # read packet timestamps, then back to the start without a seek
            duration = demuxed_duration(self.container, self.stream, self.start)
            self._open()  # (such files often have no index to seek with)
        return duration

    @property
    def frame_step(self) -> float:
        return 1.0 / float(self.stream.average_rate or self.stream.guessed_rate or 30)

    @property
    def is_damaged(self) -> bool:
        """Whether decoding so far met rejected packets or data ending in an error."""
        return bool(self.damaged or self.damage)

    def warning(self) -> str:
        """What decoding met in a damaged file, in words ("" for a sound file)."""
        parts = []
        if self.damaged:
            known = [t for t in self.damaged if t == t] or [0.0]  # NaN: a packet without a timestamp
            where = f"{min(known):.2f}" + (f"-{max(known):.2f}" if max(known) > min(known) else "")
            parts.append(f"{len(self.damaged)} damaged packet(s) skipped at {where} s ({self.damage})")
        elif self.damage:
            parts.append(f"data ends early ({self.damage})")
        if parts and self.cut_at is not None:
            parts.append(f"video decodes to {max(0.0, self.cut_at + self.frame_step):.2f} s of "
                         f"{self.info.duration:.2f} s")
        return "partly decoded: " + "; ".join(parts) if parts else ""

    def decodable_end(self, clip_seconds: float) -> float:
        """Where the video read so far really ends: its duration, or for a file found to end early the
        end of its last frame. A damaged file with too little left for a `clip_seconds` clip is refused."""
        if self.cut_at is None:
            return self.info.duration
        end = max(0.0, self.cut_at + self.frame_step)
        if self.is_damaged and end < 0.5 * min(clip_seconds, self.info.duration):
            raise DecodeError(f"damaged: only {end:.2f} s of {self.info.duration:.2f} s decode, too little "
                              f"for a {clip_seconds:.2f} s clip ({self.damage})")
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
        try:
            try:
                out, times = self._pick(wanted, short_side, skip)
            except _SeekFailed:  # seeking cannot be trusted in this file: decode it front to back
                self.seekable = False
                self._open()
                out, times = self._pick(wanted, short_side, skip)
        except av.error.FFmpegError as err:
            raise DecodeError(f"decoding failed: {reason(err)}") from None
        finally:
            if self.container is not None:
                self.stream.codec_context.skip_frame = "DEFAULT"
        if skip and self.skipped:
            skipped = np.asarray(self.skipped)[:, None]
            if ((np.asarray(times) < skipped) & (skipped <= np.asarray(wanted) + 1e-6)).any():
                self._held = (None, math.inf)  # start again from before the first wanted time
                return self._frames_at(wanted, short_side, skip=False)
        return out

    def _pick(self, wanted: list[float], short_side: int, skip: bool) -> tuple[list, list[float]]:
        """(images, the time of the frame each was taken from) for the sorted `wanted` times."""
        out: list[np.ndarray] = []
        times: list[float] = []  # time of each frame in `out`
        self.skipped: list[float] = []  # times of packets decoded with non-reference frames skipped
        prev, prev_t = self._held  # decoding goes on from where the last call stopped, if it can
        aimed = prev_t  # the time the last seek went for
        picked = (None, None)  # the last frame picked and its image

        def pick(frame, t: float) -> None:
            nonlocal picked
            if picked[0] is not frame:
                picked = (frame, self.rgb(frame, short_side))
            out.append(picked[1])
            times.append(t)

        while len(out) < len(wanted):
            target = wanted[len(out)]
            if target < prev_t - 1e-6 or (self.seekable and target - prev_t > SEEK_GAP):
                prev, prev_t, aimed = self._restart(target)  # behind us, or far ahead
            for frame in self._decode(wanted, out, skip):
                t = self._time(frame, prev_t if prev is not None else None)
                while len(out) < len(wanted) and t > wanted[len(out)] + 1e-6:
                    pick(frame if prev is None else prev, t if prev is None else prev_t)
                prev, prev_t = frame, t
                if len(out) == len(wanted):
                    break
                if self.seekable and wanted[len(out)] > aimed and wanted[len(out)] - t > SEEK_GAP:
                    break  # a long gap: seeking beats decoding through it
            else:  # end of stream: pad with the last frame
                if self._need_key is not None:
                    raise _SeekFailed  # the seek went past the last keyframe, or found none
                if prev is None:
                    raise DecodeError(self.damage and f"decoding failed: {self.damage}" or "no decodable video frames")
                if prev_t < self.info.duration - max(0.25, 2 * self.frame_step):
                    self.cut_at = prev_t
                while len(out) < len(wanted):
                    pick(prev, prev_t)
        self._held = (prev, prev_t)  # where decoding stands, for the next call on this file
        return out, times

    def _restart(self, target: float) -> tuple[None, float, float]:
        """Get ready to decode the frame on screen at `target`: seek, or near the start (where a seek
        may land on a first frame stamped after the target) and in a file that cannot be sought
        reliably, open it again to decode from the start. Returns (prev, prev_t, aimed)."""
        if self.seekable and target > SEEK_GAP:
            try:
                self.container.seek(int((target + self.start) / self.stream.time_base), stream=self.stream,
                                    backward=True, any_frame=False)
            except av.error.FFmpegError:
                raise _SeekFailed from None
            self._need_key = target  # decoding must begin at a keyframe at or before it
            return None, target, target
        self._open()
        return None, 0.0, 0.0

    def _decode(self, wanted: list[float], out: list, skip: bool):
        """Decoded frames from the current position; with `skip`, non-reference frames that cannot
        be on screen at a wanted time still pending (wanted[len(out):]) are skipped.

        After a seek, packets before the first keyframe are dropped (a file without an index can
        land anywhere); a keyframe later than the seek's target, or any error in a file being read
        with seeks, raises _SeekFailed. Front to back, a rejected packet is skipped and counted,
        and an error in the container ends the video there."""
        context, tb = self.stream.codec_context, self.tb
        packets = self.container.demux(self.stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except av.error.FFmpegError as err:
                if self.seekable:
                    raise _SeekFailed from None
                self.damage = self.damage or reason(err)
                yield from self._flush()  # frames still held by the decoder
                return
            t = packet.pts * tb - self.start if packet.pts is not None and tb else None
            if self._need_key is not None and packet.size:
                if not packet.is_keyframe:
                    continue
                if t is not None and t > self._need_key + 1e-3:
                    raise _SeekFailed
                self._need_key = None
            shown = True
            if skip and t is not None and packet.duration:
                i = bisect_left(wanted, t - 1e-6, len(out))
                shown = i < len(wanted) and wanted[i] < t + 1.5 * packet.duration * tb
                if not shown:
                    self.skipped.append(t)
            context.skip_frame = "DEFAULT" if shown else "NONREF"
            try:
                frames = packet.decode()
            except av.error.FFmpegError as err:
                if self.seekable:
                    raise _SeekFailed from None
                self.damaged.append(t if t is not None else float("nan"))
                self.damage = self.damage or reason(err)
                continue
            yield from frames

    def _flush(self):
        try:
            return self.stream.codec_context.decode(None)
        except av.error.FFmpegError:
            return []

    def _time(self, frame, prev_t) -> float:
        if frame.pts is not None and self.tb:
            return frame.pts * self.tb - self.start
        return 0.0 if prev_t is None else prev_t + self.frame_step  # no timestamp: assume constant rate
