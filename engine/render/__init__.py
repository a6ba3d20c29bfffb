"""The moderngl renderer: render target, shaders, GPU uploads of glTF assets."""
