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
