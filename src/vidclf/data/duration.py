"""What a video is (VideoInfo) and how long it lasts: from its headers, else from its packets' timestamps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import av


def stream_duration(container, stream, start: float) -> Optional[float]:
    """Seconds from the headers (the stream's, else the container's less the start), or None."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base - start
    return None


def demuxed_duration(container, stream, start: float) -> float:
    """Seconds to the end of the last packet, read without decoding (WebM from a browser may carry no
    duration); a file damaged further on lasts as far as it can be read. Leaves the container at its end."""
    end = 0.0
    try:
        for packet in container.demux(stream):
            if packet.pts is not None:
                end = max(end, float((packet.pts + (packet.duration or 0)) * packet.time_base) - start)
    except av.error.FFmpegError:
        pass
    return end


@dataclass(frozen=True)
class VideoInfo:
    duration: float  # seconds, from the first frame's timestamp to the end of the last
    width: int  # as coded; frames are turned upright per their rotation metadata when converted
    height: int
