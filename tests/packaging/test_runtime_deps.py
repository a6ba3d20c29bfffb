"""pygltflib is a build extra, not a runtime dependency: the product path runs with it
unimportable (the engine reads glTF with its own parser), and pyproject says so."""

from __future__ import annotations

import subprocess
import sys
import tomllib

from avatarkit.paths import AVATARS_DIR, REPO_ROOT

# Run in a fresh interpreter where importing pygltflib fails, as in an install without it.
RUNTIME_PATH = """
import asyncio, shutil, sys, tempfile
from pathlib import Path


class NoPygltflib:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "pygltflib":
            raise ImportError("pygltflib is not installed (blocked by the test)")


sys.meta_path.insert(0, NoPygltflib())
import aiohttp
import avatarkit, engine, avatarkit.server, avatarkit.cli.render, avatarkit.cli.inspect
import scenes.kiosk
from avatarkit.avatar import Avatar
from avatarkit.cli import main
from avatarkit.manager import AvatarManager
from avatarkit.server import EmbeddedServer

tmp = Path(tempfile.mkdtemp())
shutil.copy(Path(sys.argv[1]) / "kai" / "kai.glb", tmp / "Mine.glb")
assert Avatar.from_file(tmp / "Mine.glb").id == "mine"
assert AvatarManager(sys.argv[1], tmp / "c").load_blocking("ava").id == "ava"
assert main(["avatars"]) == 0


async def serve():
    with EmbeddedServer(avatars=tmp) as server:
        async with aiohttp.ClientSession() as http:
            async with http.get(server.assets_url + "/mine") as resp:
                assert resp.status == 200, await resp.text()
        return await AvatarManager(server.assets_url, tmp / "cache").load("mine")


assert asyncio.run(serve()).id == "mine"
assert "pygltflib" not in sys.modules
print("runtime ok")
"""


def test_the_runtime_path_never_imports_pygltflib():
    run = subprocess.run(
        [sys.executable, "-c", RUNTIME_PATH, str(AVATARS_DIR)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0 and "runtime ok" in run.stdout, run.stderr[-3000:]


def test_pygltflib_is_a_build_extra_only():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    runtime = " ".join(project["dependencies"])
    assert "pygltflib" not in runtime
    assert any(d.startswith("pygltflib") for d in project["optional-dependencies"]["build"])
