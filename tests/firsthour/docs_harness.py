"""Runs one docs code block with the stand-ins ``docs_blocks.py`` documents.

python docs_harness.py BLOCK.py ID        (cwd: the block's scratch folder)
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import os
import re
import shutil
import sys
from pathlib import Path


def stage_files(scratch: Path) -> None:
    from avatarkit.paths import AVATARS_DIR, SPEECH_DIR

    model = AVATARS_DIR / "ava" / "ava.glb"
    for name in ("model.glb", "my_avatar.glb", "path/to/file.glb"):
        (scratch / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(model, scratch / name)
    shutil.copyfile(SPEECH_DIR / "quiz_timeout.wav", scratch / "speech.wav")


def one_envelope() -> bytes:
    from avatarkit.motion.frame import MotionFrame
    from avatarkit.protocol import encode_animation

    return encode_animation(
        "conn", "req", [MotionFrame(index=i, fps=30) for i in range(3)], end=True
    )


def main(source: Path, block_id: str) -> int:
    from avatarkit.motion.wav import read_wav
    from avatarkit.paths import SPEECH_DIR
    from avatarkit.sdk import AvatarSDK
    from avatarkit.server.embedded import EmbeddedServer
    from engine import App

    scratch = Path.cwd()
    stage_files(scratch)
    pcm = read_wav(SPEECH_DIR / "quiz_timeout.wav").pcm.tobytes()  # 1.9 s: short keeps CI short
    if not os.environ.get("DISPLAY"):
        # no virtual display here: a window becomes an off-screen app of the same size
        def window(
            size=(1280, 720),
            title="",
            fps=60.0,
            samples=None,
            clock=None,
            vsync=True,
            fullscreen=False,
        ):
            from engine.clock import RealtimeClock

            return App.headless(
                size=size, fps=fps, samples=samples, clock=clock or RealtimeClock(fps)
            )

        App.window = staticmethod(window)
    apps: list[App] = []
    frames: list[bytes] = []
    with EmbeddedServer() as server:
        code = source.read_text(encoding="utf-8").replace(
            "127.0.0.1:8765", f"127.0.0.1:{server.port}"
        )
        namespace: dict[str, object] = {
            "__name__": "__main__",
            "app_id": server.app_id,
            "APP_ID": server.app_id,
            "api_key": server.api_key,
            "API_KEY": server.api_key,
            "server_ws_url": server.ingress_url,
            "console_url": server.console_url,
            "token_from_your_backend": server.issue_token(),
            "pcm": pcm,
            "pcm_s16le_16k": pcm,
            "pcm_chunk": pcm,
            "on_frames": lambda envelope, last=False: frames.append(envelope),
            "envelope_bytes": one_envelope(),
            "data": one_envelope(),
        }
        if re.search(r"(?<![\w.])scene\b", code):
            apps.append(App.headless(size=(320, 240)))
            namespace["scene"] = apps[0].scene
        try:
            compiled = compile(code, block_id, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
            result = eval(compiled, namespace)  # noqa: S307 - the repository's own docs
            if inspect.iscoroutine(result):
                asyncio.run(result)
        finally:
            AvatarSDK.cleanup()
            for app in apps:
                app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), sys.argv[2]))
