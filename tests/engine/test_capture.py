from __future__ import annotations

import numpy as np
import pytest

from engine import EngineError, ModelRenderer, VideoWriter, load_gltf

FPS = 30
RATE = 48000


def _tone(seconds: float, freq: float = 440.0) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    return (np.sin(2 * np.pi * freq * t) * 12000).astype(np.int16)


def test_png_roundtrip(app, sphere_scene_path, tmp_path):
    from PIL import Image

    asset = load_gltf(sphere_scene_path)
    app.scene.create_entity("m").add_component(ModelRenderer(asset))
    app.scene.camera.frame_bounds(*asset.bounds(), aspect=app.aspect)
    app.step()
    path = app.save_png(tmp_path / "out" / "frame.png")
    np.testing.assert_array_equal(np.asarray(Image.open(path)), app.read_pixels())


@pytest.mark.timeout(60)
def test_mp4_from_the_render_loop_with_audio(app, sphere_scene_path, tmp_path):
    import av

    asset = load_gltf(sphere_scene_path)
    model = app.scene.create_entity("m").add_component(ModelRenderer(asset))
    app.scene.camera.frame_bounds(*asset.bounds(), aspect=app.aspect)
    audio = _tone(2.0)
    per_frame = RATE // FPS
    frames = 2 * FPS
    path = tmp_path / "clip.mp4"
    with VideoWriter(path, app.size, fps=FPS, sample_rate=RATE) as writer:

        def record(app_, frame):
            model.set_weight("bulge", (frame.index % 10) / 10)
            writer.write_frame(app_.read_pixels())
            start = frame.index * per_frame
            writer.write_audio(audio[start : start + per_frame].tobytes())  # as it "plays"

        app.add_frame_listener(record)
        app.run(frames=frames)
    assert writer.frames == frames and writer.samples == len(audio)

    with av.open(str(path)) as container:
        video = container.streams.video[0]
        audio_stream = container.streams.audio[0]
        assert video.codec_context.name == "h264"
        assert audio_stream.codec_context.name == "aac"
        assert (video.codec_context.width, video.codec_context.height) == app.size
        assert audio_stream.codec_context.sample_rate == RATE
        # The container's edit list trims AAC padding: both streams last exactly 2 s.
        assert float(video.duration * video.time_base) == pytest.approx(frames / FPS, abs=1e-3)
        assert float(audio_stream.duration * audio_stream.time_base) == pytest.approx(
            frames / FPS, abs=1e-3
        )
        decoded = [f for f in container.decode(video=0)]
    assert len(decoded) == frames
    last = decoded[-1]
    assert float(last.pts * last.time_base) == pytest.approx((frames - 1) / FPS, abs=1e-6)
    with av.open(str(path)) as container:
        samples = sum(f.samples for f in container.decode(audio=0))
        duration = container.duration / av.time_base
    # AAC works in 1024-sample frames: what we decode is the input rounded up to one.
    assert len(audio) <= samples <= len(audio) + 1024
    assert duration == pytest.approx(frames / FPS, abs=1024 / RATE + 1e-3)
    # The picture changed along with the morph weight.
    first, fifth = decoded[0].to_ndarray(format="rgb24"), decoded[5].to_ndarray(format="rgb24")
    assert np.abs(first.astype(int) - fifth.astype(int)).mean() > 0.5


def test_short_audio_is_padded_to_the_video(tmp_path):
    import av

    path = tmp_path / "pad.mp4"
    with VideoWriter(path, (64, 48), fps=FPS, sample_rate=RATE) as writer:
        for i in range(15):
            writer.write_frame(np.full((48, 64, 3), i * 10, np.uint8))
        writer.write_audio(_tone(0.1))
    assert writer.samples == RATE // 2
    with av.open(str(path)) as container:
        samples = sum(f.samples for f in container.decode(audio=0))
    assert RATE // 2 <= samples <= RATE // 2 + 1024


def test_video_only_and_bad_input(tmp_path):
    import av

    with VideoWriter(tmp_path / "v.mp4", (32, 32), fps=25, sample_rate=None) as writer:
        for _ in range(5):
            writer.write_frame(np.zeros((32, 32, 3), np.uint8))
        with pytest.raises(EngineError):
            writer.write_audio(b"\0\0")
        with pytest.raises(EngineError):
            writer.write_frame(np.zeros((16, 32, 3), np.uint8))
    with av.open(str(tmp_path / "v.mp4")) as container:
        assert len(container.streams.audio) == 0
        assert sum(1 for _ in container.decode(video=0)) == 5
    with pytest.raises(EngineError) as info:
        VideoWriter(tmp_path / "odd.mp4", (33, 32))
    assert info.value.code == "invalidArgument"
    with pytest.raises(EngineError):
        with VideoWriter(tmp_path / "stereo.mp4", (32, 32), channels=2) as writer:
            writer.write_audio(b"\0\0\0\0\0\0")  # 1.5 stereo sample frames


def test_threaded_writer_writes_the_same_video_and_reports_encoder_errors(tmp_path):
    """The encoder thread keeps frame order and timestamps: the decoded frames equal the
    ones a plain writer makes; an error inside the thread surfaces as captureFailed."""
    import av

    frames = [np.full((48, 64, 3), i * 12, np.uint8) for i in range(20)]
    decoded = {}
    for threaded in (False, True):
        path = tmp_path / f"t{threaded}.mp4"
        with VideoWriter(path, (64, 48), fps=FPS, sample_rate=RATE, threaded=threaded) as w:
            for i, frame in enumerate(frames):
                w.write_frame(frame)
                w.write_audio(_tone(1 / FPS, 200 + i * 20))
        with av.open(str(path)) as container:
            decoded[threaded] = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(decoded[True]) == len(frames)
    for a, b in zip(decoded[False], decoded[True], strict=True):
        assert np.array_equal(a, b)

    writer = VideoWriter(tmp_path / "broken.mp4", (64, 48), fps=FPS, threaded=True)
    writer.write_frame(np.zeros((48, 64, 2), np.uint8))  # two channels: PyAV refuses it
    with pytest.raises(EngineError) as info:
        for _ in range(50):  # a later call raises it
            writer.write_frame(frames[0])
    assert info.value.code == "captureFailed"
    with pytest.raises(EngineError, match="captureFailed|encoding broken.mp4 failed"):
        writer.close()  # and so does close (the file is incomplete) ...
    writer.close()  # ... once: closing again is quiet


def test_frame_reader_returns_the_frames_in_order_a_frame_late(app, sphere_scene_path):
    from engine.render.readback import FrameReader

    asset = load_gltf(sphere_scene_path)
    model = app.scene.create_entity("m").add_component(ModelRenderer(asset))
    app.scene.camera.frame_bounds(*asset.bounds(), aspect=app.aspect)
    expected, got = [], []
    with app.ctx:
        reader = FrameReader(app.ctx, app.size)
    for k in range(4):
        model.set_weight("bulge", k / 4)
        app.step()
        expected.append(app.read_pixels())
        with app.ctx:
            ready = reader.push(app.target.resolved)
        assert (ready is None) == (k == 0)
        if ready is not None:
            got.append(ready)
    with app.ctx:
        got.extend(reader.drain())
        reader.release()
    assert len(got) == 4
    for a, b in zip(expected, got, strict=True):
        assert np.array_equal(a, b)
    assert not np.array_equal(got[0], got[3])


def test_a_frame_shows_nothing_of_the_next_one(tmp_path):
    """Still frames stay still up to the frame where motion starts: no B-frames, which are
    predicted from the following frame and ghost the next mouth shape into the one before
    (a render test or a sync measurement would see the face move a frame early)."""
    import av

    rng = np.random.default_rng(0)
    still = (rng.random((180, 320, 3)) * 60 + 100).astype(np.uint8)
    path = tmp_path / "onset.mp4"
    with VideoWriter(path, (320, 180), fps=FPS, sample_rate=None) as writer:
        for k in range(30):
            frame = still.copy()
            if k >= 15:  # a mouth that opens from frame 15 on and keeps moving
                frame[80 : 84 + 3 * (k - 15), 140:180] = 20
            writer.write_frame(frame)
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    change = [np.abs(b.astype(int) - a).mean() for a, b in zip(frames, frames[1:], strict=False)]
    # (the first P-frame may still settle the I-frame's quantisation)
    assert max(change[2:14]) == 0.0, change[:15]
    assert change[14] > 0.1


@pytest.mark.parametrize(
    ("layout", "pix_fmt", "channels"),
    [("rgb24", "yuv420p", 3), ("rgba", "yuva420p", 4), ("rgba", "yuva444p10le", 4)],
)
def test_the_same_image_always_converts_to_the_same_picture(layout, pix_fmt, channels):
    """``encoder_frame`` converts on one thread (PyAV's default, a swscale thread per CPU,
    gave a new yuva444p10le picture in about one conversion in five here) into a frame of
    its own with zeroed line padding."""
    from engine.capture import encoder_frame

    w, h = 1282, 722
    image = np.random.default_rng(w).integers(0, 256, (h, w, channels), np.uint8)

    def picture(frame) -> list[bytes]:  # the planes' pixels, without the lines' padding
        sample = 2 if pix_fmt.endswith("10le") else 1
        return [
            np.frombuffer(memoryview(p), np.uint8)
            .reshape(-1, p.line_size)[: p.height, : p.width * sample]
            .tobytes()
            for p in frame.planes
        ]

    first = encoder_frame(image, layout, pix_fmt)
    assert (first.width, first.height, first.format.name) == (w, h, pix_fmt)
    expected = picture(first)
    assert all(picture(encoder_frame(image, layout, pix_fmt)) == expected for _ in range(40))
    # Whole buffers too: the lines' padding is zeroed, not whatever the allocation held.
    again = encoder_frame(image, layout, pix_fmt)
    assert [bytes(p) for p in again.planes] == [bytes(p) for p in first.planes]
