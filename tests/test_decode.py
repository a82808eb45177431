"""PyAV decoding: the right frame for each timestamp, padding, rotation, odd files from the wild."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
import torch

from conftest import CONTAINERS, SHARED_VIDEOS
from vidclf.data.clips import clip_times, uniform_starts
from vidclf.data.decode import VideoReader
from vidclf.synthetic import render_motion, write_video


def numbered_frames(n: int, size: int = 32) -> np.ndarray:
    """Frame i is a flat image whose red channel is i % 256 and green channel i // 256."""
    frames = np.zeros((n, size, size, 3), dtype=np.uint8)
    frames[..., 0] = (np.arange(n) % 256)[:, None, None]
    frames[..., 1] = (np.arange(n) // 256)[:, None, None]
    return frames


def frame_ids(clips: np.ndarray) -> np.ndarray:
    centre = clips[..., clips.shape[-3] // 2, clips.shape[-2] // 2, :].astype(int)
    return centre[..., 0] + 256 * centre[..., 1]


def test_picks_frame_on_screen_at_each_time_across_seeks(tmp_path):
    path = str(tmp_path / "numbered.mkv")  # lossless, keyframe every 30 frames, 20 s at 30 fps
    write_video(path, numbered_frames(600), fps=30, codec="libx264rgb", qp="0", g="30")
    times = clip_times([0.0, 9.5, 19.0], frames=4, interval=0.2)
    with VideoReader(path) as video:
        assert video.info.duration == pytest.approx(20.0, abs=0.05)
        ids = frame_ids(video.clips(times, short_side=32))
    np.testing.assert_array_equal(ids, np.floor(times * 30 + 1e-6).astype(int))


def test_variable_frame_rate_is_sampled_by_timestamp(tmp_path):
    path = str(tmp_path / "vfr.mkv")
    shown_at = [0.0, 0.1, 0.5, 0.55, 0.6, 1.5]  # irregular gaps, like a phone recording
    with av.open(path, "w") as container:
        stream = container.add_stream("libx264rgb", rate=30, options={"qp": "0"})
        stream.width = stream.height = 32
        stream.pix_fmt = "rgb24"
        stream.codec_context.time_base = Fraction(1, 1000)
        for i, (t, image) in enumerate(zip(shown_at, numbered_frames(len(shown_at)))):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = int(t * 1000), Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    with VideoReader(path) as video:
        ids = frame_ids(video.clips(np.array([[0.05, 0.3, 0.52, 0.58, 1.0, 1.6]]), short_side=32))
    assert ids.tolist() == [[0, 1, 2, 3, 4, 5]]


def test_short_video_is_padded_with_its_last_frame(tmp_path):
    path = str(tmp_path / "three.mp4")
    write_video(path, numbered_frames(3), fps=30, codec="libx264rgb", qp="0")
    with VideoReader(path) as video:
        clips = video.clips(clip_times(uniform_starts(video.info.duration, 0.32, 2), 8, 0.04), 16)
    assert clips.shape == (2, 8, 16, 16, 3)
    assert frame_ids(clips)[0].tolist() == [0, 1, 2, 2, 2, 2, 2, 2]


@pytest.mark.parametrize("ext, codec", CONTAINERS)
def test_every_container_decodes_to_requested_size(tmp_path, ext, codec):
    path = str(tmp_path / f"clip{ext}")
    write_video(path, render_motion("rising", np.random.default_rng(0), 20, 48), codec=codec)
    with VideoReader(path) as video:
        clips = video.clips(clip_times([0.0, 0.3], 4, 0.1), short_side=24)
    assert clips.shape == (2, 4, 24, 24, 3) and clips.dtype == np.uint8 and clips.std() > 10


def test_rotation_metadata_is_applied():
    with VideoReader(str(SHARED_VIDEOS / "robustness/rotation/mov_rot90.mov")) as video:
        assert video.info.width > video.info.height  # coded landscape
        clip = video.clips(clip_times([0.0], 2, 0.03), short_side=32)
    assert clip.shape[2] > clip.shape[3]  # shown portrait


ROBUSTNESS = sorted(p for p in (SHARED_VIDEOS / "robustness").rglob("*") if p.is_file())


@pytest.mark.parametrize("path", ROBUSTNESS, ids=[p.name for p in ROBUSTNESS])
def test_odd_real_files_all_load(path):
    """Even the file with corrupt NAL units: its damaged packet is skipped, as players do."""
    with VideoReader(str(path)) as video:
        clips = video.clips(clip_times(uniform_starts(video.info.duration, 1.6, 3), 4, 0.4), 40)
        assert bool(video.warning()) == ("corrupt" in path.name)
    assert clips.shape[:2] == (3, 4) and min(clips.shape[2:4]) == 40


def test_frame_cache_serves_the_grid_frames_and_follows_the_file(tmp_path):
    from vidclf.data.cache import FrameCache

    path = tmp_path / "numbered.mp4"
    write_video(str(path), numbered_frames(90), fps=30, codec="libx264rgb", qp="0")  # 3 s
    cache = FrameCache(str(tmp_path / "cache"), interval=0.2, short_side=32)
    blob, offsets, warning = cache.frames(str(path))
    assert warning == ""
    assert len(offsets) - 1 == 15  # one frame every 0.2 s over 3 s
    frames = FrameCache.decode(blob, offsets, [0, 1, 7, 99])  # (T, C, H, W); past the end -> last
    ids = frames[:, 0, 16, 16].int() + 256 * frames[:, 1, 16, 16].int()
    assert (ids - torch.tensor([0, 6, 42, 84])).abs().max() <= 1  # JPEG: within one level
    entries = sorted(p.name for p in (tmp_path / "cache").iterdir())
    write_video(str(path), numbered_frames(60), fps=30, codec="libx264rgb", qp="0")  # the file changes
    assert len(cache.frames(str(path))[1]) - 1 == 10
    assert len(list((tmp_path / "cache").iterdir())) == 2 * len(entries)  # a new entry, none half-written


def test_cached_clip_never_starts_past_a_full_fit(tmp_path):
    from vidclf.data.cache import FrameCache
    from vidclf.data.clips import ClipSettings
    from vidclf.data.datasets import VideoClips

    path = tmp_path / "numbered.mp4"
    write_video(str(path), numbered_frames(90), fps=30, codec="libx264rgb", qp="0")  # 3 s: 15 cached frames
    clip = ClipSettings(frames=15, rate=6, crop=32, resize=32, train_resize=(32, 32))
    data = VideoClips([str(path)], [0], clip, train=True, hflip=False, cache=FrameCache(str(tmp_path / "c"), 0.2, 32))
    for epoch in range(6):
        frames = data[(epoch, 0, 0)]["video"][0, :, :, 16, 16].int()  # (C, T)
        ids = frames[0] + 256 * frames[1]
        assert (ids - torch.arange(0, 90, 6)).abs().max() <= 1  # frames 0, 6, ..., 84: no repeat at the end


@pytest.mark.parametrize("cached", [False, True])
def test_training_batch_holds_the_clip_frames_channels_last(tmp_path, cached):
    """A collated batch has each clip's frames in order, and its float version is already in the
    channels_last_3d layout the backbone runs in (no copy before the model)."""
    from vidclf.data.cache import FrameCache
    from vidclf.data.clips import ClipSettings
    from vidclf.data.collate import collate
    from vidclf.data.datasets import VideoClips
    from vidclf.data.sampler import EpochSampler

    path = tmp_path / "numbered.mp4"
    write_video(str(path), numbered_frames(90), fps=30, codec="libx264rgb", qp="0")
    clip = ClipSettings(frames=5, rate=6, crop=32, resize=32, train_resize=(32, 40))
    cache = FrameCache(str(tmp_path / "c"), 0.2, 40) if cached else None
    data = VideoClips([str(path)] * 3, [0, 1, 2], clip, train=True, cache=cache)
    batch = collate([data[key] for key in EpochSampler(3, seed=0, epoch=lambda: 0)])
    video = batch["video"]
    assert video.shape == (3, 1, 3, 5, 32, 32) and video.dtype == torch.uint8
    ids = video[:, 0, 0, :, 16, 16].int() + 256 * video[:, 0, 1, :, 16, 16].int()  # (B, T)
    steps = ids[:, 1:] - ids[:, :-1]
    assert (steps - 6).abs().max() <= 1  # one frame every 6th, in order, in every clip
    assert (video.float().flatten(0, 1)).is_contiguous(memory_format=torch.channels_last_3d)


@pytest.mark.parametrize("name", ["labeled_actions/waving_hand/imageio_test.webm",
                                  "unlabeled_human/mmaction2_demo_skeleton.mp4",
                                  "robustness/rotation/phone_rot180_vfr_fire2.mp4", None])
def test_skipping_non_reference_frames_never_changes_a_clip(name, tmp_path):
    """Clips decoded with non-reference frames skipped equal clips decoded frame by frame, on
    variable-frame-rate files and on x264's default B-frames (where frames are in fact skipped)."""
    path = str(SHARED_VIDEOS / name) if name else str(tmp_path / "bframes.mp4")
    if name is None:
        write_video(path, numbered_frames(300, 64), fps=30, codec="libx264rgb", qp="0")  # default GOP and B-frames
    rng = np.random.default_rng(0)
    skipped = 0
    for _ in range(4):
        with VideoReader(path) as reader:
            times = np.sort(rng.uniform(0, reader.info.duration, 13)).tolist()
            full = min(reader.info.width, reader.info.height)  # no resizing: compare decoded pixels
            fast = reader._frames_at(times, full)
            skipped += len(reader.skipped)
        with VideoReader(path) as reader:
            exact = reader._frames_at(times, full, skip=False)
        assert all(np.array_equal(a, b) for a, b in zip(fast, exact))
    if name is None:
        assert skipped > 0
