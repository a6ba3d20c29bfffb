"""What becomes of each glTF extension an avatar file uses: one table for the warning an
avatar logs when it is opened and for ``avatarkit inspect``."""

from __future__ import annotations

# Extensions the engine or the SDK reads (the engine refuses a file that *requires* any
# other; see ``engine.gltf.SUPPORTED_REQUIRED_EXTENSIONS``).
KNOWN: dict[str, str] = {
    "KHR_mesh_quantization": "supported",
    "VRMC_vrm": "read: expressions and humanoid bones",
    "VRM": "read: blend shape groups and humanoid bones",
}
# What a picture lacks when an extension is ignored; any other is "not implemented".
IGNORED_BECAUSE: dict[str, str] = {
    "KHR_materials_unlit": "drawn lit",
    "KHR_texture_transform": "textures drawn without their offset, scale and rotation",
    "KHR_materials_emissive_strength": "no emission",
    "VRMC_materials_mtoon": "drawn with the standard material, not toon-shaded",
    "VRMC_springBone": "hair and cloth do not swing",
    "VRMC_node_constraint": "constraints not applied",
    "KHR_draco_mesh_compression": "Draco-compressed geometry is not decoded",
    "EXT_meshopt_compression": "meshopt-compressed buffers are not decoded",
    "KHR_texture_basisu": "KTX2 / Basis textures are not decoded",
}


def ignored(used: list[str]) -> list[tuple[str, str]]:
    """(extension, what is lost) for each of ``used`` that nothing here reads."""
    return [(name, IGNORED_BECAUSE.get(name, "not implemented")) for name in used
            if name not in KNOWN]  # fmt: skip
