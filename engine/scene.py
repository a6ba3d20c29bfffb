"""Scene graph: entities with transforms and components, plus ordered systems.

- ``Entity``: a named node with a ``Transform``, children, and components.
- ``Component``: behaviour attached to one entity. Hooks, all optional:
  ``attach()`` (after ``self.entity`` is set), ``update(dt)``, ``render(frame)``
  (render thread, GL allowed), ``post_render(frame)`` (after the frame is complete on
  the GPU and presented: the moment "the first frame is really drawn"),
  ``on_event(event) -> bool`` (True = handled, stop propagation), ``dispose()``.
- ``System``: scene-wide logic with ``process(scene, dt)``; systems run in ascending
  ``order`` (ties: insertion order). Component updates are themselves a system at
  order 0, so a system can run before (<0) or after (>0) them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, TypeVar, overload

import numpy as np

from engine.camera import Camera
from engine.lighting import Lighting
from engine.transform import Transform

if TYPE_CHECKING:
    from engine.events import Event
    from engine.render.frame import Frame

C = TypeVar("C", bound="Component")


class Component:
    """Base class for behaviour on an entity. Override only the hooks you need."""

    entity: Entity | None = None
    enabled: bool = True

    def attach(self) -> None:
        """Called once when added to an entity (``self.entity`` is set)."""

    def update(self, dt: float) -> None:
        """Called once per frame, before rendering."""

    def render(self, frame: Frame) -> None:
        """Draw. Render thread only."""

    def post_render(self, frame: Frame) -> None:
        """Called after the frame is finished on the GPU and presented."""

    def on_event(self, event: Event) -> bool:
        """Return True to mark the event handled."""
        return False

    def dispose(self) -> None:
        """Release resources (GL objects, threads). Called once."""


class Entity:
    """A node in the scene graph. Create with ``scene.create_entity`` or ``entity.create_child``."""

    def __init__(self, name: str = "", transform: Transform | None = None) -> None:
        self.name = name
        self.transform = transform or Transform()
        self.parent: Entity | None = None
        self.children: list[Entity] = []
        self.components: list[Component] = []
        self.visible = True
        self.scene: Scene | None = None

    # -- hierarchy -------------------------------------------------------------
    def add_child(self, child: Entity) -> Entity:
        if child.parent is not None:
            child.parent.children.remove(child)
        child.parent = self
        self.children.append(child)
        child._set_scene(self.scene)
        self._structure_changed()
        return child

    def create_child(self, name: str = "", transform: Transform | None = None) -> Entity:
        return self.add_child(Entity(name, transform))

    def _structure_changed(self, removed: bool = False) -> None:
        if self.scene is not None:  # the App collects garbage after loads (engine.load_gc)
            self.scene.structure_version += 1
            self.scene.removals += removed

    def _set_scene(self, scene: Scene | None) -> None:
        self.scene = scene
        for child in self.children:
            child._set_scene(scene)

    def walk(self) -> Iterator[Entity]:
        """This entity and all descendants, depth first, parents before children."""
        yield self
        for child in self.children:
            yield from child.walk()

    def find(self, name: str) -> Entity | None:
        return next((e for e in self.walk() if e.name == name), None)

    def world_matrix(self) -> np.ndarray:
        local = self.transform.local_matrix()
        return local if self.parent is None else self.parent.world_matrix() @ local

    # -- components ------------------------------------------------------------
    def add_component(self, component: C) -> C:
        if component.entity is not None:
            raise ValueError(
                f"{type(component).__name__} is already attached to {component.entity.name!r}"
            )
        component.entity = self
        self.components.append(component)
        component.attach()
        self._structure_changed()
        return component

    def get_component(self, kind: type[C]) -> C | None:
        return next((c for c in self.components if isinstance(c, kind)), None)

    def remove_component(self, component: Component) -> None:
        self.components.remove(component)
        component.dispose()
        component.entity = None
        self._structure_changed(removed=True)

    def destroy(self) -> None:
        """Dispose every component of this subtree and detach it from its parent."""
        for child in list(self.children):
            child.destroy()
        for component in reversed(self.components):
            component.dispose()
            component.entity = None
        self.components.clear()
        self._structure_changed(removed=True)
        if self.parent is not None:
            self.parent.children.remove(self)
            self.parent = None
        self._set_scene(None)

    def __repr__(self) -> str:
        return f"Entity({self.name!r}, components={[type(c).__name__ for c in self.components]})"


class System:
    """Scene-wide logic run once per frame in ascending ``order``."""

    order: int = 0

    def process(self, scene: Scene, dt: float) -> None:
        raise NotImplementedError


class FunctionSystem(System):
    """Wraps a plain ``fn(scene, dt)``."""

    def __init__(self, fn: Callable[[Scene, float], None], order: int = 0) -> None:
        self.fn = fn
        self.order = order

    def process(self, scene: Scene, dt: float) -> None:
        self.fn(scene, dt)


class ComponentUpdateSystem(System):
    """Calls ``update(dt)`` on every enabled component (parents before children)."""

    order = 0

    def process(self, scene: Scene, dt: float) -> None:
        for component in list(scene.components()):
            if component.enabled:
                component.update(dt)


class Scene:
    """The root entity, camera, lighting and systems of one world."""

    def __init__(self) -> None:
        self.root = Entity("root")
        self.root.scene = self
        self.camera = Camera()
        self.lighting = Lighting()
        self._systems: list[System] = [ComponentUpdateSystem()]
        self.time = 0.0
        # Seconds from this update to its frame being presented, as the App measures it
        # (0 on a virtual clock, where a frame is shown at its own timestamp). Something
        # timed by another clock (speech by the audio clock) poses for now + this.
        self.present_lead = 0.0
        # Bumped whenever an entity or a component is added or removed anywhere.
        self.structure_version = 0
        self.removals = 0  # bumped by removals alone (an unload: engine.load_gc)
        # A render quality name (engine.render.quality) something in the scene asks for;
        # the App switches to it before the next frame is drawn. None: the App's own.
        self.render_quality: str | None = None

    # -- entities --------------------------------------------------------------
    def create_entity(
        self, name: str = "", transform: Transform | None = None, parent: Entity | None = None
    ) -> Entity:
        return (parent or self.root).create_child(name, transform)

    def entities(self) -> Iterator[Entity]:
        it = self.root.walk()
        next(it)  # the root itself is not a user entity
        return it

    def find(self, name: str) -> Entity | None:
        return next((e for e in self.entities() if e.name == name), None)

    @overload
    def components(self) -> Iterator[Component]: ...
    @overload
    def components(self, kind: type[C]) -> Iterator[C]: ...
    def components(self, kind: type[Component] = Component) -> Iterator[Component]:
        for entity in self.root.walk():
            for component in entity.components:
                if isinstance(component, kind):
                    yield component

    # -- systems ---------------------------------------------------------------
    def add_system(
        self, system: System | Callable[[Scene, float], None], order: int | None = None
    ) -> System:
        if not isinstance(system, System):
            system = FunctionSystem(system, order or 0)
        elif order is not None:
            system.order = order
        self._systems.append(system)
        # sorted() is stable: equal orders keep insertion order.
        self._systems = sorted(self._systems, key=lambda s: s.order)
        return system

    def remove_system(self, system: System) -> None:
        self._systems.remove(system)

    @property
    def systems(self) -> list[System]:
        return list(self._systems)

    # -- frame -----------------------------------------------------------------
    def update(self, dt: float) -> None:
        self.time += dt
        for system in list(self._systems):
            system.process(self, dt)

    def _visible_components(self) -> Iterator[Component]:
        stack = [self.root]
        while stack:
            entity = stack.pop()
            if not entity.visible:
                continue
            yield from (c for c in entity.components if c.enabled)
            stack.extend(reversed(entity.children))

    def render(self, frame: Frame) -> None:
        for component in list(self._visible_components()):
            component.render(frame)

    def post_render(self, frame: Frame) -> None:
        for component in list(self._visible_components()):
            component.post_render(frame)

    def dispatch_event(self, event: Event) -> bool:
        """Offer the event to components, children first (topmost first); True if handled."""
        for component in reversed(list(self.components())):
            if component.enabled and component.on_event(event):
                return True
        return False

    def dispose(self) -> None:
        for child in list(self.root.children):
            child.destroy()
