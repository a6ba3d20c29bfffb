"""Garbage collection at load time (engine.load_gc): a real-time loop collects fully once
the scene is loaded and freezes the survivors, so no automatic full collection walks the
loaded avatars mid-speech (one such pass stalled a frame by 15-27 ms)."""

from __future__ import annotations

import gc
import weakref

import pytest

from engine import App, ModelRenderer, load_gltf
from engine.clock import ManualClock, RealtimeClock
from engine.load_gc import LoadTimeGC


@pytest.fixture(autouse=True)
def _unfreeze():
    yield
    gc.unfreeze()  # leave the test process as it was


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_settles_once_per_change_in_real_time_only():
    collector = LoadTimeGC(min_interval_s=0.0)
    collector.before_frame(1, realtime=False)
    assert collector.settles == 0  # a virtual clock: nobody watches the frame times
    collector.before_frame(1, realtime=True)
    assert collector.settles == 1 and gc.get_freeze_count() > 0
    collector.before_frame(1, realtime=True)
    assert collector.settles == 1  # nothing loaded since
    collector.before_frame(2, realtime=True)
    assert collector.settles == 2


def test_a_burst_of_changes_settles_at_most_once_per_interval():
    collector = LoadTimeGC(min_interval_s=60.0)
    collector.before_frame(1, realtime=True)
    for version in range(2, 50):  # entities churning every frame
        collector.before_frame(version, realtime=True)
    assert collector.settles == 1
    collector.enabled = False
    collector.min_interval_s = 0.0
    collector.before_frame(99, realtime=True)
    assert collector.settles == 1


def test_cycles_frozen_earlier_are_freed_at_the_next_unload():
    """An unload's settle walks everything again: what the unloaded avatar left in cycles
    was frozen with the rest. A load's walks only what is new (an avatar joining a busy
    scene: 0.2 ms, not 11-19), and leaves frozen cycles for the next unload."""
    collector = LoadTimeGC(min_interval_s=0.0)
    cycle = _Cycle()
    alive = weakref.ref(cycle)
    collector.before_frame(1, realtime=True)  # the cycle is frozen with everything else
    del cycle
    gc.collect()
    assert alive() is not None  # frozen: a plain collection does not see it
    young = _Cycle()
    young_alive = weakref.ref(young)
    del young
    collector.before_frame(2, realtime=True, removals=0)  # a load
    assert collector.settles == 2 and young_alive() is None  # what is new: walked
    assert alive() is not None  # what was frozen: not
    collector.before_frame(3, realtime=True, removals=1)  # an unload
    assert alive() is None


def test_a_real_time_app_collects_after_its_avatar_loads(egl, tmp_path):
    from tests.engine.conftest import write_morph_cube

    asset = load_gltf(write_morph_cube(tmp_path / "cube.glb"))
    app = App.headless((64, 48), clock=RealtimeClock(30.0))
    try:
        app.load_gc.min_interval_s = 0.0
        app.step()
        assert app.load_gc.settles == 1
        app.step()
        assert app.load_gc.settles == 1  # nothing changed
        entity = app.scene.create_entity("head")
        entity.add_component(ModelRenderer(asset))
        app.step()
        assert app.load_gc.settles == 2
        # What a later automatic full collection walks: only what came after the settle.
        assert len(gc.get_objects(generation=2)) < 0.05 * gc.get_freeze_count()
        entity.destroy()  # an unload settles too
        app.step()
        assert app.load_gc.settles == 3
    finally:
        app.close()


def test_a_virtual_clock_never_collects(egl):
    app = App.headless((64, 48), clock=ManualClock(30.0))
    try:
        app.scene.create_entity("x")
        for _ in range(3):
            app.step()
        assert app.load_gc.settles == 0
    finally:
        app.close()


def test_the_scene_counts_removals_apart_from_additions():
    from engine.scene import Component, Scene

    scene = Scene()
    entity = scene.create_entity("a")
    part = entity.add_component(Component())
    assert scene.removals == 0 and scene.structure_version == 2
    entity.remove_component(part)
    assert scene.removals == 1
    entity.add_component(Component())
    scene.create_entity("b").destroy()
    assert scene.removals == 2 and scene.structure_version == 6
