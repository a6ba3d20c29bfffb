"""The engine's audio mixer and devices: summing, pan, volume, exact consumption."""

from __future__ import annotations

import time

import numpy as np
import pytest

from engine.audio import Mixer, NullDevice, VirtualDevice, open_device, pan_gains
from engine.errors import EngineError


def pcm(values) -> bytes:
    return np.asarray(values, dtype="<i2").tobytes()


def test_sum_volume_and_pan():
    mixer = Mixer(16000)
    device = VirtualDevice(mixer).start()
    a = mixer.add_source(volume=0.5)
    b = mixer.add_source(pan=-1.0)
    a.write(pcm([8192] * 100))  # 0.25 full scale
    b.write(pcm([4096] * 50))  # 0.125, left only
    out = device.advance(120)
    assert out.shape == (120, 2)
    np.testing.assert_allclose(out[:50, 0], 0.125 + 0.125)
    np.testing.assert_allclose(out[:50, 1], 0.125)
    np.testing.assert_allclose(out[50:100], 0.125)
    np.testing.assert_allclose(out[100:], 0.0)
    assert pan_gains(0.0) == (1.0, 1.0) and pan_gains(1.0) == (0.0, 1.0)


def test_sum_clips_instead_of_wrapping():
    mixer = Mixer(16000)
    device = VirtualDevice(mixer).start()
    for _ in range(3):
        mixer.add_source().write(pcm([30000] * 10))
    assert device.advance(10).max() == pytest.approx(1.0)


def test_consumption_accounting_and_position():
    mixer = Mixer(16000)
    device = VirtualDevice(mixer).start()
    src = mixer.add_source()
    src.write(pcm(np.arange(1000)))
    device.advance(300)
    assert (src.consumed, src.queued, src.position()) == (300, 700, 300)
    src.paused = True  # paused: silence out, nothing consumed, clock frozen
    assert not device.advance(200).any()
    assert (src.consumed, src.position()) == (300, 300)
    src.paused = False
    out = device.advance(800)
    assert src.consumed == 1000 and src.position() == 1000
    # Nothing played twice or skipped: the output is the input, in order.
    np.testing.assert_allclose(out[:700, 0] * 32768, np.arange(300, 1000), atol=1e-3)
    assert src.clear() == 0 and src.written == 1000


def test_position_subtracts_device_latency():
    mixer = Mixer(16000)
    device = VirtualDevice(mixer).start()
    src = mixer.add_source()
    src.write(pcm([1] * 2000))
    device.advance(1000)
    mixer.latency_frames = 160  # 10 ms still in flight
    assert src.position() == 840
    device.advance(500)  # dry after 1000 more; position follows what is audible
    assert src.position() == 1340


def test_clear_drops_only_what_is_queued():
    mixer = Mixer(16000)
    device = VirtualDevice(mixer).start()
    src = mixer.add_source()
    src.write(pcm([5] * 1000))
    device.advance(400)
    assert src.clear() == 600
    assert (src.written, src.consumed, src.queued) == (400, 400, 0)
    assert not device.advance(100).any()


def test_video_frame_sample_counts_are_exact():
    device = VirtualDevice(Mixer(44100)).start()
    counts = [device.frames_for_video_frame(i, 30) for i in range(300)]
    assert sum(counts) == 44100 * 10 and set(counts) == {1470}
    device = VirtualDevice(Mixer(22050)).start()
    assert sum(device.frames_for_video_frame(i, 60) for i in range(600)) == 22050 * 10


@pytest.mark.timeout(10)
def test_null_device_consumes_at_real_time_rate():
    mixer = Mixer(16000)
    src = mixer.add_source()
    src.write(pcm([1] * 16000))
    with NullDevice(mixer) as device:
        assert mixer.device is device
        time.sleep(0.3)
        consumed = src.consumed
    assert 0.2 * 16000 <= consumed <= 0.6 * 16000


@pytest.mark.timeout(10)
def test_auto_device_falls_back_and_lost_device_falls_back():
    mixer = Mixer(16000)
    device = open_device(mixer, "auto")  # no sound card here: a NullDevice
    lost = []
    mixer.on_device_lost.append(lost.append)
    device.report_lost(OSError("unplugged"))
    assert isinstance(mixer.device, NullDevice) and mixer.device is not device
    assert lost and lost[0].code == "audioDeviceLost"
    mixer.device.stop()
    with pytest.raises(EngineError) as err:
        open_device(mixer, "speakers")
    assert err.value.code == "invalidArgument"


def test_realtime_clock_interpolates_between_device_pulls():
    now = [0.0]
    mixer = Mixer(16000)
    mixer.realtime, mixer.clock = True, lambda: now[0]
    mixer.latency_frames = 320
    src = mixer.add_source()
    src.write(pcm([1] * 16000))
    mixer.mix(640)  # a device pull at t=0: these frames play from now on, 20 ms late
    assert src.position() == 0
    now[0] = 0.025
    assert mixer.audible_frame == 400 - 320 and src.position() == 80
    now[0] = 1.0  # long after: never beyond what was mixed
    assert src.position() == 640 - 320


@pytest.mark.timeout(10)
def test_null_device_clock_follows_real_time():
    mixer = Mixer(16000)
    src = mixer.add_source()
    src.write(pcm([1] * 32000))
    with NullDevice(mixer):
        start = time.perf_counter()
        time.sleep(0.25)
        expected = (time.perf_counter() - start) * 16000
        assert abs(src.position() - expected) < 0.03 * 16000


def test_pyaudio_without_a_sound_card_is_a_clear_error():
    pyaudio = pytest.importorskip("pyaudio")
    pa = pyaudio.PyAudio()
    try:
        pa.get_default_output_device_info()
        pytest.skip("this machine has a sound card")
    except OSError:
        pass
    finally:
        pa.terminate()
    with pytest.raises(EngineError) as err:
        open_device(Mixer(16000), "pyaudio")
    assert err.value.code == "playbackStartFailed"


def test_one_early_pull_moves_the_realtime_clock_a_tenth_as_much():
    """A PortAudio callback through PulseAudio can come 35 ms off the line the others lie
    on; taken at its word, the clock read that far ahead and faces moved early."""
    now = [0.0]
    mixer = Mixer(16000)
    mixer.realtime, mixer.clock = True, lambda: now[0]
    for k in range(10):  # steady 32 ms pulls
        now[0] = k * 0.032
        mixer.mix(512)
    now[0] = 10 * 0.032 - 0.030  # the next pull 30 ms early: frame 5120 "plays" now
    mixer.mix(512)
    honest = int(now[0] * 16000)  # what the steady line says plays now
    assert abs(mixer.audible_frame - (honest + 0.1 * 480)) <= 1
    now[0] = 1.0  # a jump beyond RESYNC_S (e.g. after an underrun) is taken at once
    mixer.mix(512)
    assert mixer.audible_frame == 5632


@pytest.mark.parametrize("ppm", [60.0, -200.0])
def test_realtime_clock_follows_a_device_off_its_nominal_rate(ppm):
    """No device plays at exactly its nominal rate on the system clock (PulseAudio's null
    sink runs about 60 ppm fast, a card's crystal is off by tens of ppm): ten simulated
    minutes of 32 ms pulls, each called up to 8 ms late, from a device that takes
    samples at 16000 * (1 + ppm) Hz. The audible frame keeps a constant offset from what
    the device plays (the callbacks' mean lateness), no drift, where a clock on the
    nominal rate would have drifted 36 / 120 ms by the end."""
    rng = np.random.default_rng(3)
    rate = 16000 * (1 + ppm * 1e-6)
    now = [0.0]
    mixer = Mixer(16000)
    mixer.realtime, mixer.clock = True, lambda: now[0]
    errors = []
    for k in range(int(600 / 0.032)):
        due = k * 512 / rate  # when the device starts playing this pull's first frame
        now[0] = due + rng.uniform(0.0, 0.008)  # the callback comes late, never early
        mixer.mix(512)
        if k % 100 == 50:  # halfway to the next pull: what plays then is known exactly
            now[0] = due + 256 / rate
            errors.append((k * 512 + 256 - mixer.audible_frame) / 16000)
    errors = np.array(errors[10:])  # after the first 30 s
    assert 0.002 < errors.mean() < 0.006  # behind by about the mean lateness, 4 ms
    assert errors.max() - errors.min() < 0.003  # and steady: the device's rate is followed
