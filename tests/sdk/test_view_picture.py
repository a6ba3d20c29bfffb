"""The view's picture: export_bitmap() (PNG of the frame, read on the render thread), a
transparent background with correct alpha, the avatar's position/scale in the view, and
videos with alpha. Real EGL pixels in headless Apps."""

from __future__ import annotations

import io
import threading
import wave

import numpy as np
import pytest
from PIL import Image

from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.manager import AvatarManager
from avatarkit.paths import AVATARS_DIR
from avatarkit.view import AvatarView
from engine import App, ManualClock

pytestmark = pytest.mark.timeout(90)

SIZE = (160, 120)


@pytest.fixture(scope="module")
def ava():
    return AvatarManager(str(AVATARS_DIR)).load_blocking("ava")


@pytest.fixture
def stage(sdk, rig, ava):
    apps: list[App] = []

    def make(**view_options) -> tuple[App, AvatarView]:
        sdk(driving_mode="backend")
        app = App.headless(size=SIZE, clock=ManualClock(30), samples=4)
        apps.append(app)
        view = app.scene.create_entity("ava").add_component(
            AvatarView(ava, mixer=rig.mixer, idle=False, **view_options)
        )
        view.frame(app.scene.camera, distance_scale=1.6)
        return app, view

    yield make
    for app in apps:
        app.close()


def decode_png(data: bytes) -> np.ndarray:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return np.asarray(Image.open(io.BytesIO(data)))


def test_export_bitmap_is_the_frame_as_png_from_any_thread(stage):
    app, view = stage()
    with pytest.raises(AvatarKitError) as info:
        view.export_bitmap()  # nothing drawn yet
    assert info.value.code == ErrorCode.INVALID_REQUEST
    app.step()
    here = decode_png(view.export_bitmap())  # on the render thread: the last frame
    assert here.shape == (SIZE[1], SIZE[0], 3)
    np.testing.assert_array_equal(here, app.read_pixels())

    got: list[bytes] = []
    caller = threading.Thread(target=lambda: got.append(view.export_bitmap()))
    caller.start()
    view.set_expression({"jawOpen": 1.0}, fade_s=0)  # the next frame differs
    while caller.is_alive():
        app.step()  # the render thread reads the pixels after its next frame
        caller.join(0.01)
    there = decode_png(got[0])
    np.testing.assert_array_equal(there, app.read_pixels())
    assert np.abs(there.astype(int) - here).max() > 30  # the later frame: mouth open


def test_export_bitmap_from_another_thread_gives_up_when_no_frame_comes(stage, monkeypatch):
    import avatarkit.view as view_module

    app, view = stage()
    app.step()
    monkeypatch.setattr(view_module, "EXPORT_WAIT_S", 0.2)
    errors = []

    def call() -> None:
        try:
            view.export_bitmap()
        except AvatarKitError as exc:
            errors.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    caller.join(5)
    assert errors and "no frame rendered" in errors[0].message


def test_transparent_background_gives_the_avatar_alone_with_alpha(stage):
    app, view = stage(background="transparent")
    app.step()
    rgba = decode_png(view.export_bitmap())
    assert rgba.shape == (SIZE[1], SIZE[0], 4)
    alpha = rgba[..., 3]
    assert alpha[0, 0] == 0 and alpha[-1, -1] == 0 and (alpha == 0).mean() > 0.3
    assert (alpha == 255).mean() > 0.2  # the head, opaque
    edges = (alpha > 0) & (alpha < 255)
    assert edges.any()  # antialiased silhouette, partially covered
    # Straight alpha (PNG's): the frame holds colour scaled by coverage; the PNG undoes it.
    raw = app.read_pixels(alpha=True).astype(float)
    partial = edges & (alpha < 200)
    restored = rgba[partial, :3].astype(float) * alpha[partial, None] / 255.0
    assert np.abs(restored - raw[partial, :3]).max() <= 2.0
    assert (rgba[partial, :3].astype(float) > raw[partial, :3] + 10).any()
    assert (rgba[alpha == 0, :3] == 0).all()
    # The scene background stays opaque everywhere.
    app2, view2 = stage()
    app2.step()
    assert decode_png(view2.export_bitmap()).shape[2] == 3
    assert (app2.read_pixels(alpha=True)[..., 3] == 255).all()


def agreement(shown: np.ndarray, base: np.ndarray, x: float, y: float, scale: float) -> float:
    """IoU of ``shown`` with ``base`` moved by (x, y) of the half-view and scaled about the
    centre, over the pixels whose source lies inside ``base`` (the body runs off the bottom)."""
    h, w = base.shape
    rows, cols = np.mgrid[0:h, 0:w]
    cx, cy = (w - 1) / 2, (h - 1) / 2
    src_c = np.round((cols - cx - x * w / 2) / scale + cx).astype(int)
    src_r = np.round((rows - cy + y * h / 2) / scale + cy).astype(int)
    inside = (src_c >= 0) & (src_c < w) & (src_r >= 0) & (src_r < h)
    expected = np.zeros_like(base)
    expected[inside] = base[src_r[inside], src_c[inside]]
    a, b = shown & inside, expected & inside
    return float((a & b).sum() / max((a | b).sum(), 1))


def test_position_and_scale_in_the_view(stage):
    app, view = stage(background="transparent")
    app.step()
    base = app.read_pixels(alpha=True)[..., 3] > 127
    for x, y, scale in ((0.5, -0.25, 1.0), (0.0, 0.0, 0.5), (-0.3, 0.2, 1.5)):
        view.set_transform(x=x, y=y, scale=scale)
        assert view.transform == (x, y, scale)
        app.step()
        shown = app.read_pixels(alpha=True)[..., 3] > 127
        assert agreement(shown, base, x, y, scale) > 0.9, (x, y, scale)
        assert agreement(shown, base, 0.0, 0.0, 1.0) < 0.8  # it really moved
    for bad in ({"x": 1.5}, {"scale": 0}, {"scale": float("nan")}, {"y": "up"}):
        with pytest.raises(AvatarKitError) as info:
            view.set_transform(**bad)
        assert info.value.code == ErrorCode.INVALID_REQUEST
    assert view.transform == (-0.3, 0.2, 1.5)  # unchanged by the refused calls
    view.set_transform()
    app.step()
    np.testing.assert_array_equal(app.read_pixels(alpha=True)[..., 3] > 127, base)


def test_a_bad_background_is_refused(sdk, rig, ava):
    sdk(driving_mode="backend")
    with pytest.raises(AvatarKitError) as info:
        AvatarView(ava, mixer=rig.mixer, background="green")
    assert info.value.code == ErrorCode.INVALID_REQUEST


@pytest.fixture(scope="module")
def short_wav(tmp_path_factory):
    from avatarkit.testing import speech_like_pcm

    path = tmp_path_factory.mktemp("wav") / "short.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(speech_like_pcm(0.6))
    return path


def decode_alpha_video(path) -> tuple[list[np.ndarray], int]:
    import av

    frames = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        # FFmpeg's own VP9 decoder drops the alpha layer; libvpx reads it.
        decoder = (
            av.CodecContext.create("libvpx-vp9", "r")
            if stream.codec_context.name == "vp9"
            else stream.codec_context
        )
        for packet in container.demux(stream):
            for frame in decoder.decode(packet):
                frames.append(frame.to_ndarray(format="rgba"))
        audio = sum(1 for s in container.streams if s.type == "audio")
    return frames, audio


@pytest.mark.parametrize("suffix", [".webm", ".mov"])
def test_render_with_a_transparent_background_keeps_alpha_in_the_video(tmp_path, short_wav, suffix):
    from avatarkit.cli import main

    out = tmp_path / f"alpha{suffix}"
    args = ["render", "--audio", str(short_wav), "-o", str(out), "--size", "96x64"]
    assert main([*args, "--background", "transparent"]) == 0
    frames, audio_streams = decode_alpha_video(out)
    assert len(frames) == 18 and audio_streams == 1  # 0.6 s at 30 fps, with its sound
    alpha = frames[-1][..., 3].astype(int)
    assert alpha[0, 0] < 8 and alpha.max() > 247  # clear around, opaque head
    assert 0.05 < (alpha > 127).mean() < 0.9


def test_transparent_render_into_an_mp4_is_refused(tmp_path, short_wav, capsys):
    from avatarkit.cli import main

    out = tmp_path / "alpha.mp4"
    args = ["render", "--audio", str(short_wav), "-o", str(out), "--background", "transparent"]
    assert main(args) == 2
    assert "[invalidRequest]" in capsys.readouterr().err and not out.exists()
