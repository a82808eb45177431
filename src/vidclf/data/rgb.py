"""Decoded frames to RGB arrays at the size the model wants, upright, in one libswscale step."""

from __future__ import annotations

import numpy as np
from av.video.reformatter import VideoReformatter


class RGBFrames:
    """Converts one file's frames: (H, W, 3) uint8 with the short side at the size asked for.

    One reformatter keeps its libswscale context across a clip's frames (all one size);
    frame.to_ndarray(width=...) builds a new one, with its own threads, for every frame (5x slower).
    """

    def __init__(self):
        self.reformatter = VideoReformatter()
        self.sizes: dict[int, tuple[int, int]] = {}  # short side -> (width, height) of converted frames

    def __call__(self, frame, short_side: int) -> np.ndarray:
        # every frame of a file comes out the size of its first, even if the stream changes size
        # midway (as recordings of adaptive streams do): the clips of one video stack into one array
        if short_side not in self.sizes:
            scale = short_side / min(frame.width, frame.height)
            self.sizes[short_side] = max(1, round(frame.width * scale)), max(1, round(frame.height * scale))
        width, height = self.sizes[short_side]
        image = self.reformatter.reformat(frame, width, height, "rgb24", interpolation="BILINEAR", threads=1).to_ndarray()
        turns = (round((frame.rotation or 0) / 90)) % 4
        return np.ascontiguousarray(np.rot90(image, turns)) if turns else image
