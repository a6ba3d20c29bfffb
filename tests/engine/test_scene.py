from __future__ import annotations

import numpy as np
import pytest

from engine import Component, Entity, Event, Scene, System, Transform, quat_from_euler
from engine import events as ev


class Recorder(Component):
    def __init__(self, log: list, name: str, handles: str | None = None) -> None:
        self.log = log
        self.name = name
        self.handles = handles

    def attach(self):
        self.log.append(("attach", self.name, self.entity.name))

    def update(self, dt):
        self.log.append(("update", self.name, round(dt, 6)))

    def render(self, frame):
        self.log.append(("render", self.name, frame.index))

    def post_render(self, frame):
        self.log.append(("post_render", self.name, frame.index))

    def on_event(self, event):
        self.log.append(("event", self.name, event.type))
        return event.type == self.handles

    def dispose(self):
        self.log.append(("dispose", self.name))


class OrderSystem(System):
    def __init__(self, log, name, order):
        self.log, self.name, self.order = log, name, order

    def process(self, scene, dt):
        self.log.append(("system", self.name))


def test_world_matrix_composes_parent_and_child():
    scene = Scene()
    parent = scene.create_entity("parent", Transform(translation=(1, 0, 0), scale=(2, 2, 2)))
    child = parent.create_child(
        "child", Transform(translation=(0, 1, 0), rotation=quat_from_euler(yaw=np.pi / 2))
    )
    point = child.world_matrix() @ np.array([1, 0, 0, 1], np.float32)
    # child: rotate +x to -z, move up 1; parent: scale 2, move +x 1.
    np.testing.assert_allclose(point[:3], [1, 2, -2], atol=1e-5)
    assert scene.find("child") is child
    assert [e.name for e in scene.entities()] == ["parent", "child"]


def test_reparenting_moves_the_subtree():
    scene = Scene()
    a, b = scene.create_entity("a"), scene.create_entity("b")
    c = a.create_child("c")
    b.add_child(c)
    assert c.parent is b and c not in a.children and c.scene is scene


def test_lifecycle_order_systems_and_dispose(app):
    log: list = []
    scene = app.scene
    parent = scene.create_entity("parent")
    parent.add_component(Recorder(log, "p"))
    parent.create_child("child").add_component(Recorder(log, "c"))
    scene.add_system(OrderSystem(log, "late", 10))
    scene.add_system(OrderSystem(log, "early", -10))
    scene.add_system(lambda s, dt: log.append(("system", "fn")), order=5)
    assert log == [("attach", "p", "parent"), ("attach", "c", "child")]
    log.clear()
    app.step()
    dt = round(1 / 30, 6)
    assert log == [
        ("system", "early"),
        ("update", "p", dt),
        ("update", "c", dt),
        ("system", "fn"),
        ("system", "late"),
        ("render", "p", 0),
        ("render", "c", 0),
        ("post_render", "p", 0),
        ("post_render", "c", 0),
    ]
    log.clear()
    parent.destroy()
    assert log == [("dispose", "c"), ("dispose", "p")]
    assert scene.find("parent") is None
    log.clear()
    app.step()
    assert [e for e in log if e[0] != "system"] == []  # gone from the loop


def test_advance_updates_like_step_and_draws_nothing(app):
    """``App.advance``: a render helper's frames drawn elsewhere (``render_workers``)."""
    log: list = []
    app.scene.create_entity("e").add_component(Recorder(log, "e"))
    heard: list = []
    app.add_frame_listener(lambda _app, frame: heard.append(frame.index))
    log.clear()
    app.advance()
    assert log == [("update", "e", round(1 / 30, 6))] and heard == []
    assert app.frame_index == 1 and abs(app.clock.time - 1 / 30) < 1e-9
    app.step()
    assert [entry[0] for entry in log[1:]] == ["update", "render", "post_render"]
    assert heard == [1]  # the next step draws the next frame


def test_hidden_and_disabled_components_are_not_rendered(app):
    log: list = []
    hidden = app.scene.create_entity("hidden")
    hidden.add_component(Recorder(log, "h"))
    hidden.visible = False
    off = app.scene.create_entity("off").add_component(Recorder(log, "o"))
    off.enabled = False
    log.clear()
    app.step()
    assert [entry[0] for entry in log] == ["update"]  # only the hidden-but-enabled one updates


def test_component_attaches_only_once():
    comp = Component()
    Entity("a").add_component(comp)
    with pytest.raises(ValueError):
        Entity("b").add_component(comp)


def test_synthetic_events_reach_handlers_then_components(app):
    log: list = []
    app.scene.create_entity("e").add_component(Recorder(log, "r", handles=ev.KEY_DOWN))
    seen = []
    app.add_event_handler(lambda e: seen.append(e.type) or e.type == ev.MOUSE_DOWN)
    app.post_event(Event(ev.KEY_DOWN, key="space"))
    app.post_event(Event(ev.MOUSE_DOWN, button=1, pos=(3, 4)))
    app.step()
    assert seen == [ev.KEY_DOWN, ev.MOUSE_DOWN]
    assert [e for e in log if e[0] == "event"] == [
        ("event", "r", ev.KEY_DOWN)
    ]  # mouse consumed by the handler


def test_quit_event_stops_run(app):
    app.post_event(Event(ev.QUIT))
    assert app.run(frames=10) == 1  # the frame that saw QUIT completes, then the loop ends


def test_run_by_frames_and_by_seconds(app):
    assert app.run(frames=3) == 3
    assert app.run(seconds=0.5) == 15  # virtual clock: exactly 1/30 s per frame
    assert app.clock.time == pytest.approx(0.6)
    assert app.frame_index == 18


def test_stop_from_a_component(app):
    class Stopper(Component):
        def update(self, dt):
            if app.frame_index == 4:
                app.stop()

    app.scene.create_entity("s").add_component(Stopper())
    assert app.run(frames=100) == 5
