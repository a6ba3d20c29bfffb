"""What becomes of each glTF extension an avatar file uses: one table for the warning an
avatar logs when it is opened and for ``avatarkit inspect``."""

from __future__ import annotations

from engine.gltf import DECODERS

# Extensions the engine or the SDK reads (the engine refuses a file that *requires* any
# other; see ``engine.gltf.SUPPORTED_REQUIRED_EXTENSIONS``).
KNOWN: dict[str, str] = {
    "KHR_mesh_quantization": "supported",
    "KHR_texture_transform": "supported: offset, scale, rotation and texCoord",
    "KHR_materials_unlit": "supported",
    "KHR_materials_emissive_strength": "supported",
    "KHR_materials_pbrSpecularGlossiness": "read: the diffuse colour and texture as the base "
    "colour (specular and glossiness drawn as the default)",
    "VRMC_materials_mtoon": "drawn as a toon approximation (lit/shade step, rim, matcap, outline)",
    "VRMC_vrm": "read: expressions, humanoid bones and lookAt ranges",
    "VRM": "read: blend shape groups, humanoid bones, lookAt ranges, MToon materials and "
    "spring bones (secondaryAnimation)",
    "VRMC_springBone": "simulated: hair and cloth swing (spheres and capsules collide)",
    "VRMC_node_constraint": "applied: rotation, roll and aim constraints",
}
# The decoders, known where their package is installed (the ``compressed`` extra).
_DECODED = {
    "KHR_draco_mesh_compression": "supported: decoded with DracoPy",
    "EXT_meshopt_compression": "supported: decoded with meshopt",
    "KHR_texture_basisu": "supported: KTX2 transcoded with opengl_basisu",
    "EXT_texture_webp": "supported: WebP decoded with Pillow",
    "EXT_texture_avif": "supported: AVIF decoded with Pillow",
}
KNOWN.update({name: why for name, why in _DECODED.items() if DECODERS.get(name)})
# What a picture lacks when an extension is ignored; any other is "not implemented".
_MISSING = "(pip install 'avatarkit[compressed]')"
IGNORED_BECAUSE: dict[str, str] = {
    "KHR_draco_mesh_compression": f"Draco-compressed geometry is not decoded {_MISSING}",
    "EXT_meshopt_compression": f"meshopt-compressed buffers are not decoded {_MISSING}",
    "KHR_texture_basisu": f"KTX2 / Basis textures are not decoded {_MISSING}",
    "EXT_texture_webp": "WebP textures are not decoded (this Pillow has no WebP support)",
    "EXT_texture_avif": "AVIF textures are not decoded (this Pillow has no AVIF support)",
    "KHR_materials_clearcoat": "no clear coat layer",
    "KHR_materials_transmission": "drawn opaque",
    "KHR_materials_volume": "drawn without volume",
    "KHR_materials_sheen": "no sheen",
    "KHR_materials_specular": "default specular",
    "KHR_materials_ior": "default index of refraction",
    "KHR_lights_punctual": "the scene's own lights are used instead",
    "EXT_mesh_gpu_instancing": "instances drawn once",
}


def ignored(used: list[str]) -> list[tuple[str, str]]:
    """(extension, what is lost) for each of ``used`` that nothing here reads."""
    return [(name, IGNORED_BECAUSE.get(name, "not implemented")) for name in used
            if name not in KNOWN]  # fmt: skip
