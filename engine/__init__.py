"""A small real-time 3D runtime on moderngl: app and frame loop, clocks, scene graph,
glTF 2.0 with GPU morph targets, three-point lighting, capture. Knows nothing about avatars.

Typical use::

    from engine import App, ModelRenderer, load_gltf

    with App.headless(size=(1280, 720), fps=30) as app:
        asset = load_gltf("head.glb")
        model = app.scene.create_entity("head").add_component(ModelRenderer(asset))
        app.scene.camera.frame_bounds(*asset.bounds(), aspect=app.aspect)
        model.set_weight("jawOpen", 0.6)
        app.step()
        app.save_png("frame.png")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # what ``__getattr__`` hands out, spelled out for type checkers
    from engine.app import App
    from engine.backends.headless import HeadlessBackend
    from engine.backends.window import WindowBackend
    from engine.camera import Camera
    from engine.capture import VideoWriter, png_bytes, read_pixels, save_png, straight_alpha
    from engine.clock import Clock, HeadlessClock, ManualClock, RealtimeClock, Schedule
    from engine.errors import EngineError
    from engine.events import Event
    from engine.gltf import load_gltf
    from engine.gltf_asset import (
        GltfAsset,
        GltfMaterial,
        GltfMesh,
        GltfNode,
        GltfPrimitive,
        MorphTarget,
    )
    from engine.gltf_validate import GltfLimits
    from engine.lighting import DirectionalLight, Lighting
    from engine.model import ModelRenderer
    from engine.render.frame import Frame
    from engine.scene import Component, Entity, Scene, System
    from engine.stats import FrameStats
    from engine.transform import Transform, quat_from_euler

# Each name is imported on first use (PEP 562): ``import engine.render.quality`` (the
# CLI's argument choices) or ``engine.errors`` must not load moderngl, numpy and the
# renderer, which ``avatarkit --help`` never needs.
_EXPORTS = {
    "engine.app": ("App",),
    "engine.backends.headless": ("HeadlessBackend",),
    "engine.backends.window": ("WindowBackend",),
    "engine.camera": ("Camera",),
    "engine.capture": ("VideoWriter", "png_bytes", "read_pixels", "save_png", "straight_alpha"),
    "engine.clock": ("Clock", "HeadlessClock", "ManualClock", "RealtimeClock", "Schedule"),
    "engine.errors": ("EngineError",),
    "engine.events": ("Event",),
    "engine.gltf": ("load_gltf",),
    "engine.gltf_asset": (
        "GltfAsset",
        "GltfMaterial",
        "GltfMesh",
        "GltfNode",
        "GltfPrimitive",
        "MorphTarget",
    ),
    "engine.gltf_validate": ("GltfLimits",),
    "engine.lighting": ("DirectionalLight", "Lighting"),
    "engine.model": ("ModelRenderer",),
    "engine.render.frame": ("Frame",),
    "engine.scene": ("Component", "Entity", "Scene", "System"),
    "engine.stats": ("FrameStats",),
    "engine.transform": ("Transform", "quat_from_euler"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str) -> object:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once: later lookups find it without this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "App",
    "Camera",
    "Clock",
    "Component",
    "DirectionalLight",
    "EngineError",
    "Entity",
    "Event",
    "Frame",
    "FrameStats",
    "GltfAsset",
    "GltfLimits",
    "GltfMaterial",
    "GltfMesh",
    "GltfNode",
    "GltfPrimitive",
    "HeadlessBackend",
    "Lighting",
    "HeadlessClock",
    "ManualClock",
    "ModelRenderer",
    "MorphTarget",
    "RealtimeClock",
    "Schedule",
    "Scene",
    "System",
    "Transform",
    "VideoWriter",
    "WindowBackend",
    "load_gltf",
    "quat_from_euler",
    "png_bytes",
    "read_pixels",
    "save_png",
    "straight_alpha",
]
